"""Experiment parameters: the state dictionary, its flat text form, and builders.

A state is a tree of dictionaries (`DD`, reachable by attribute) whose
leaves are plain Python literals. On disk, on the command line and in the
job table it is *flat*: one dotted key per leaf (`model.layers.0 = 64`).
`flatten` and `expand` convert between the two; `parse` and `format_d` read
and write the text form, and guarantee `expand(parse(*format_d(s).splitlines())) == s`.

A key whose `__builder__` names a callable (`regexp::re.compile`) describes an
object: `make(state.regexp)` calls the builder with the sibling keys as
keyword arguments. User text is never evaluated as code: values go through
`ast.literal_eval` and fall back to the plain string.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from dbdict_celery.errors import (
    ModuleMissing,
    NameMissing,
    ResolveError,
    UnstorableValue,
    UsageError,
)

BUILDER = "__builder__"

_LEAF_TYPES = (str, bytes, int, float, bool, list, tuple, type(None))
_SEPARATOR = re.compile(r"\s*(=|::)\s*")
_NON_FINITE = {"nan": float("nan"), "inf": float("inf")}


class DD(dict):  # type: ignore[type-arg]
    """A dict whose keys are also attributes, and whose nested dicts are DDs too.

    Experiments read their parameters as `state.lr` or `state.model.kind`,
    as in the original dbdict.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _as_dd(value))

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> DD:
        return DD(self)

    def __repr__(self) -> str:
        return f"DD({dict.__repr__(self)})"


def _as_dd(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, DD):
        return DD(value)
    return value


def resolve(name: str) -> Any:
    """Return the object named by a dotted path, importing modules as needed.

    `resolve("re.compile")` is `re.compile`; `resolve("pkg.mod.Class.method")`
    imports `pkg` and `pkg.mod` on the way. The error names the part that failed.
    """
    parts = name.split(".") if isinstance(name, str) else []
    if not parts or not all(part.isidentifier() for part in parts):
        raise ResolveError(f"cannot resolve {name!r}: not a dotted Python name")
    found: Any = _import(parts[0], name)
    if found is None:
        raise ModuleMissing(f"cannot resolve {name!r}: no module named {parts[0]!r}")
    path = parts[0]
    for part in parts[1:]:
        parent, path = path, f"{path}.{part}"
        try:
            found = getattr(found, part)
            continue
        except AttributeError:
            submodule = _import(path, name) if isinstance(found, ModuleType) else None
        if submodule is None:
            kind = "module" if isinstance(found, ModuleType) else type(found).__name__
            raise NameMissing(
                f"cannot resolve {name!r}: {kind} {parent!r} has no attribute {part!r}"
            )
        found = submodule
    return found


def _import(module: str, wanted: str) -> ModuleType | None:
    """Import `module`; None if it does not exist, a ResolveError if importing it fails."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name == module:
            return None
        raise ModuleMissing(
            f"cannot resolve {wanted!r}: importing {module!r} failed: {error}"
        ) from None
    except Exception as error:
        raise ResolveError(
            f"cannot resolve {wanted!r}: importing {module!r} raised "
            f"{type(error).__name__}: {error}"
        ) from None


def flatten(obj: Any) -> dict[str, Any]:
    """Flatten nested dicts (and objects with a `state()` method) into dotted keys.

    An object contributes its `state()` plus `__builder__ = 'module.Class'`, so
    that `make` can rebuild it. An empty nested dict is kept as the leaf `{}`,
    so that nothing is lost on the way back.
    """
    flat: dict[str, Any] = {}

    def visit(prefix: str, value: Any) -> None:
        value = _plain(value)
        if isinstance(value, _LEAF_TYPES):
            if not prefix:
                raise UsageError(f"cannot flatten a bare {type(value).__name__}: expected a dict")
            flat[prefix] = value
            return
        if isinstance(value, Mapping):
            items = dict(value)
        elif callable(getattr(value, "state", None)):
            items = dict(value.state())
            items[BUILDER] = f"{type(value).__module__}.{type(value).__qualname__}"
        else:
            raise UnstorableValue(
                f"cannot store {prefix or 'the state'!r}: a {UnstorableValue.type_name(value)} "
                "is neither a literal, a dict, nor an object with a state() method "
                f"({UnstorableValue.ADVICE})"
            )
        if not items and prefix:
            flat[prefix] = {}
        for key, item in items.items():
            if not isinstance(key, str) or not all(key.split(".")):
                where = prefix or "the state"
                raise UnstorableValue(
                    f"cannot store {where!r}: it has the key {key!r}, and keys are names "
                    "(dotted paths at most)"
                )
            visit(f"{prefix}.{key}" if prefix else key, item)

    visit("", obj)
    return flat


def _plain(value: Any) -> Any:
    """Numbers as the builtin types, so that `repr` writes a literal (numpy scalars included)."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return value.item()  # a numpy scalar, not an array: arrays are not literals
    if isinstance(value, float) and type(value) is not float:
        return float(value)
    if isinstance(value, int) and type(value) not in (int, bool):
        return int(value)
    return value


def expand(flat: Mapping[str, Any]) -> DD:
    """Turn dotted keys back into nested DDs: the inverse of `flatten`.

    Values that are themselves dicts are merged in as subtrees. A key that is
    both a leaf and a parent (`a=1` with `a.b=2`) is an error, not a silent loss.
    """
    tree = DD()
    for key, value in flatten(flat).items():
        *parents, leaf = _split_key(key)
        node = tree
        for part in parents:
            node = node.setdefault(part, DD())
            if not isinstance(node, DD):
                raise UsageError(f"parameter {key!r} conflicts with a value given for {part!r}")
        if value == {}:
            node.setdefault(leaf, DD())
        elif isinstance(node.get(leaf), DD):
            raise UsageError(f"parameter {key!r} conflicts with the keys given under it")
        else:
            node[leaf] = value
    return tree


def _split_key(key: str) -> list[str]:
    parts = key.split(".")
    if not key or not all(parts):
        raise UsageError(f"malformed parameter key {key!r}: empty name in a dotted key")
    return parts


def realize(value: Any) -> Any:
    """Build the objects described by `__builder__` keys, innermost first."""
    if not isinstance(value, Mapping):
        return value
    built = {key: realize(item) for key, item in value.items()}
    if BUILDER not in built:
        return DD(built)
    builder = resolve(built.pop(BUILDER))
    return builder(**built)


def make(value: Any) -> Any:
    """Build the object a (sub)state describes: `make(state.regexp)`."""
    return realize(expand(value) if isinstance(value, Mapping) else value)


def parse(*strings: str) -> dict[str, Any]:
    """Parse `key=value` and `key::builder` strings into a flat dict.

    Spaces around `=` and `::` are allowed; whichever comes first separates
    the key. Values are Python literals when they parse as one, else strings.
    """
    flat: dict[str, Any] = {}
    for string in strings:
        key, separator, raw = split(string)
        if separator == "::":
            flat[f"{key}.{BUILDER}"] = raw.strip()
        else:
            flat[key] = convert(raw)
    return flat


def split(string: str) -> tuple[str, str, str]:
    """`key=value` -> (key, '=', value text); `key::builder` -> (key, '::', builder text)."""
    match = _SEPARATOR.search(string)
    if match is None:
        raise UsageError(f"malformed parameter {string!r}: expected key=value or key::builder")
    key = string[: match.start()].strip()
    _split_key(key)
    return key, match.group(1), string[match.end() :]


def convert(text: str) -> Any:
    """A Python literal if `text` is one (plus `nan`/`inf`, as `repr` writes them), else `text`."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return ast.literal_eval(_NonFiniteFloats().visit(tree))
    except Exception:
        return text


class _NonFiniteFloats(ast.NodeTransformer):
    """Reads the names `nan` and `inf` as floats, so `format_d` output parses back."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _NON_FINITE:
            return ast.copy_location(ast.Constant(_NON_FINITE[node.id]), node)
        return node


def format_d(state: Any, sep: str = "\n", space: bool = True) -> str:
    """Write a state as `key = repr(value)` lines, sorted so files are stable."""
    pattern = "{} = {!r}" if space else "{}={!r}"
    return sep.join(pattern.format(key, value) for key, value in sorted(flatten(state).items()))


def parse_lines(lines: Iterable[str]) -> dict[str, Any]:
    """Parse a parameter file's lines, skipping blank lines and `#` comments."""
    kept = (line.strip() for line in lines)
    return parse(*(line for line in kept if line and not line.startswith("#")))


def format_help(topic: Any) -> str:
    """Help text of a topic (a string, an object with `help()`, or a docstring), dedented."""
    if isinstance(topic, str):
        text: str | None = topic
    elif callable(getattr(topic, "help", None)):
        text = topic.help()
    else:
        text = getattr(topic, "__doc__", None)
    if not text or not text.strip():
        return "No help."
    text = inspect.cleandoc(text)
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
