"""Parameters: DD, resolve, flatten/expand, make, parse and format_d."""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbdict_celery import (
    DD,
    ResolveError,
    UnstorableValue,
    UsageError,
    expand,
    flatten,
    format_d,
    format_help,
    make,
    parse,
    realize,
    resolve,
)
from dbdict_celery.experiment.params import parse_lines


class Point:
    """An object that knows how to describe itself, so flatten can store it."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def state(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y}


def test_dd_is_a_dict_reachable_by_attribute() -> None:
    state = DD({"model": {"kind": "cnn"}})
    state.lr = 0.1
    assert state["lr"] == 0.1
    assert state.model.kind == "cnn"
    assert isinstance(state.model, DD)
    state.update(extra={"deep": 1})
    assert state.extra.deep == 1
    assert isinstance(state.setdefault("other", {}), DD)
    del state.lr
    assert "lr" not in state
    with pytest.raises(AttributeError):
        _ = state.missing


def test_resolve_imports_modules_on_the_way() -> None:
    assert resolve("os.path.join") is os.path.join
    assert resolve("re.compile") is re.compile


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz.f", "no module named 'no_such_module_xyz'"),
        ("os.path.no_such_function", "module 'os.path' has no attribute 'no_such_function'"),
        ("re.compile.nothing", "function 're.compile' has no attribute 'nothing'"),
        ("not a name", "not a dotted Python name"),
        ("", "not a dotted Python name"),
    ],
)
def test_resolve_names_the_symbol_that_failed(name: str, message: str) -> None:
    with pytest.raises(ResolveError, match=re.escape(message)):
        resolve(name)


def test_resolve_reports_a_missing_dependency_of_an_existing_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "needs_dep.py").write_text("import dependency_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ResolveError) as caught:
        resolve("needs_dep.experiment")
    assert "importing 'needs_dep' failed" in str(caught.value)
    assert "dependency_not_installed" in str(caught.value)


def test_flatten_and_expand_are_inverse() -> None:
    state = {"a": 1, "model": {"kind": "cnn", "layers": [64, 32], "opt": {"lr": 0.1}}, "e": {}}
    flat = flatten(state)
    assert flat == {
        "a": 1,
        "model.kind": "cnn",
        "model.layers": [64, 32],
        "model.opt.lr": 0.1,
        "e": {},
    }
    assert expand(flat) == state


def test_flatten_records_the_builder_of_objects_with_state() -> None:
    flat = flatten({"p": Point(1, 2)})
    assert flat == {"p.x": 1, "p.y": 2, "p.__builder__": f"{__name__}.Point"}
    rebuilt = make(expand(flat).p)
    assert isinstance(rebuilt, Point)
    assert (rebuilt.x, rebuilt.y) == (1, 2)


def test_flatten_refuses_what_it_cannot_write_back() -> None:
    with pytest.raises(UnstorableValue, match="Fraction"):
        flatten({"f": Fraction(1, 3)})
    for bad_key in ("", "a..b", ".a", 3):
        with pytest.raises(UnstorableValue, match="keys are names"):
            flatten({"sub": {bad_key: 1}})


def test_flatten_writes_number_subclasses_as_plain_literals() -> None:
    class Metric(float):
        pass

    flat = flatten({"error": Metric(0.25)})
    assert type(flat["error"]) is float
    assert parse(format_d(flat)) == {"error": 0.25}


def test_expand_refuses_a_key_that_is_both_leaf_and_parent() -> None:
    with pytest.raises(UsageError, match="conflicts"):
        expand({"a": 1, "a.b": 2})
    with pytest.raises(UsageError, match="conflicts"):
        expand({"a.b": 2, "a": 1})


def test_realize_builds_nested_builders_innermost_first() -> None:
    state = expand(
        parse("outer::builtins.dict", "outer.inner::re.compile", "outer.inner.pattern='b+'")
    )
    built = realize(state.outer)
    assert built["inner"].sub("-", "abbbc") == "a-c"


def test_make_runs_the_original_regexp_example() -> None:
    state = expand(parse("regexp::re.compile", "regexp.pattern='a.*c'"))
    assert make(state.regexp).sub("blahblah", "hello abbbbc there") == "hello blahblah there"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=hello", {"a": "hello"}),
        ("a=1", {"a": 1}),
        ("a=[1,2]", {"a": [1, 2]}),
        ("a = 2.5", {"a": 2.5}),
        ("a  =  'spaced'", {"a": "spaced"}),
        ("c.d='hello'", {"c.d": "hello"}),
        ("b=True", {"b": True}),
        ("n=None", {"n": None}),
        ("t=(1, 'x')", {"t": (1, "x")}),
        ("d={'k': 1}", {"d": {"k": 1}}),
        ("e=a=b", {"e": "a=b"}),
        ("lr=1e-3", {"lr": 0.001}),
        ("s=hello world", {"s": "hello world"}),
        ("empty=", {"empty": ""}),
        ("r::re.compile", {"r.__builder__": "re.compile"}),
        ("r :: re.compile", {"r.__builder__": "re.compile"}),
        ("x=a::b", {"x": "a::b"}),
    ],
)
def test_parse_reads_keys_and_values_like_the_original(text: str, expected: dict[str, Any]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["foo", "=1", "a..b=1", ".a=1", "::re.compile"])
def test_parse_rejects_malformed_parameters(text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('touch {marker}')",
        "open('{marker}', 'w')",
        "(lambda: open('{marker}', 'w'))()",
        "[open('{marker}', 'w')]",
    ],
)
def test_parse_never_executes_code(
    expression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "CREATED"
    text = expression.format(marker=marker)
    assert parse(f"a={text}") == {"a": text}
    assert not marker.exists()


def test_format_d_writes_sorted_key_equals_repr_lines() -> None:
    text = format_d({"b": "x", "a": {"z": 1, "y": [1, 2]}})
    assert text.splitlines() == ["a.y = [1, 2]", "a.z = 1", "b = 'x'"]
    assert format_d({"b": 1, "a": 2}, sep=",", space=False) == "a=2,b=1"


def test_non_finite_floats_survive_the_text_form() -> None:
    back = expand(
        parse(*format_d({"a": float("nan"), "b": float("inf"), "c": -math.inf}).splitlines())
    )
    assert math.isnan(back.a)
    assert back.b == math.inf
    assert back.c == -math.inf


def test_parse_lines_skips_blank_lines_and_comments() -> None:
    assert parse_lines(["# a comment", "", "  a = 1  ", "b=2\n"]) == {"a": 1, "b": 2}


keys = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
scalars = st.text() | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
literals = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
leaves = scalars | st.lists(literals, max_size=3) | st.lists(literals, max_size=3).map(tuple)
states = st.recursive(
    st.dictionaries(keys, leaves, max_size=4),
    lambda inner: st.dictionaries(keys, inner | leaves, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(states)
def test_format_d_round_trips_through_parse_and_expand(state: dict[str, Any]) -> None:
    assert expand(parse(*format_d(state).splitlines())) == state


def test_format_help_dedents_and_collapses_blank_lines() -> None:
    def documented() -> None:
        """First line.

            Indented example.



        Last paragraph.
        """

    assert format_help(documented) == "First line.\n\n    Indented example.\n\nLast paragraph."
    assert format_help("\n   one\n   two\n") == "one\ntwo"
    assert format_help(None) == "No help."
