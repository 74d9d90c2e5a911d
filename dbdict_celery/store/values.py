"""How a job's values are kept in the row's JSON: NaN and infinities included, nothing lost.

JSON has no NaN or infinity, and Postgres's JSONB refuses them, yet a
diverged loss is an ordinary result. In the `params` and `state` columns a
non-finite float is kept as the object `{"__float__": "NaN"}` (or
`"Infinity"`, `"-Infinity"`: the spellings Postgres's float8 reads), wherever
it is, inside lists too; it reads back as the float. Filters, sorting, export
and views treat it as a number (NaN matches `KEY=nan` and sorts after every
number; infinities compare as numbers).

Everything else must be a JSON value: None, booleans, integers, finite
floats, strings, lists (tuples become lists) and dicts with string keys.
Anything else (bytes, sets, numpy arrays, other objects) is refused with
`UnstorableValue`, naming the key and the type, before anything is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from dbdict_celery.config import max_state_bytes
from dbdict_celery.errors import UnstorableValue

FLOAT_TAG = "__float__"
_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
NON_FINITE = tuple(_FLOATS)  # the tag's spellings


def encode(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A flat state (or params) as the row keeps it; UnstorableValue for a value it cannot,
    or for a state larger than `DBDICT_MAX_STATE_MB` (default 16) as JSON."""
    return _encoded(flat)[0]


def encode_json(flat: Mapping[str, Any]) -> str:
    """`encode(flat)` as JSON text, for a writer that sends text (COPY): encoded once."""
    return _encoded(flat)[1]


def _encoded(flat: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    for key in flat:
        _check_text(key, key)
    encoded = {key: encode_value(value, key) for key, value in flat.items()}
    text = json.dumps(encoded, separators=(",", ":"))
    if len(text) > (limit := max_state_bytes()):
        largest = max(encoded, key=lambda key: len(json.dumps(encoded[key])))
        raise UnstorableValue(
            f"cannot store a state of {len(text) / 2**20:.1f} MB (its largest value: "
            f"{largest!r}): the limit is {limit / 2**20:g} MB (DBDICT_MAX_STATE_MB); keep "
            "large results in files of the working directory"
        )
    return encoded, text


def encode_value(value: Any, key: str = "the value") -> Any:
    """One value as the row keeps it (see the module's docstring)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        _check_text(value, key)
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {FLOAT_TAG: "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, (list, tuple)):
        return [encode_value(item, key) for item in value]
    if isinstance(value, dict):
        for name in value:
            if isinstance(name, str):
                _check_text(name, key)
            else:
                raise UnstorableValue(
                    f"cannot store {key!r}: it holds a dict with a {type(name).__name__} key "
                    f"({name!r}); the table keeps dicts with string keys only"
                )
        return {name: encode_value(item, key) for name, item in value.items()}
    raise UnstorableValue(
        f"cannot store {key!r}: a {UnstorableValue.type_name(value)} is not a number, string, "
        f"boolean, None, list or dict ({UnstorableValue.ADVICE})"
    )


def _check_text(text: str, key: str) -> None:
    """Text that every database keeps: valid UTF-8, and no NUL (JSONB refuses it)."""
    if "\x00" in text:
        raise UnstorableValue(f"cannot store {key!r}: its text holds a NUL character (\\x00)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnstorableValue(
            f"cannot store {key!r}: its text {text!r} is not valid UTF-8"
        ) from None


def decode(value: Any) -> Any:
    """A value read from the row, with its non-finite floats back as floats."""
    if isinstance(value, dict):
        if len(value) == 1 and value.get(FLOAT_TAG) in _FLOATS:
            return _FLOATS[value[FLOAT_TAG]]
        return {name: decode(item) for name, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value
