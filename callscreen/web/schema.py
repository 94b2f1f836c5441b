"""The shapes of request bodies and query strings, as JSON Schema, and the checker for them.

One schema serves twice: the OpenAPI document publishes it and :func:`check` enforces it, so
the document cannot promise what the server does not check. Only the part of JSON Schema we
use is understood (object with ``properties``/``required``/``additionalProperties: false``,
string, boolean, integer with bounds, array of strings with a length).

What this refuses is the shape (unknown field, wrong type, too long, not JSON); what a value
means (a phone number, a treatment, a duration) is refused by ops, in the CLI's own words.
Every refusal is :class:`InvalidInput` with one line naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..ops.errors import InvalidInput

Schema = dict[str, Any]

#: Longer strings are refused before ops sees them (a number is at most ~30 characters).
MAX_STRING = 1000
#: The most numbers one request may add or remove.
MAX_BATCH = 10_000


def string(max_length: int = MAX_STRING, description: str = "") -> Schema:
    out: Schema = {"type": "string", "maxLength": max_length}
    if description:
        out["description"] = description
    return out


def choice(*values: str) -> Schema:
    # Published for clients; the value itself is checked by ops (the CLI's message).
    return {"type": "string", "enum": list(values)}


def integer(minimum: int, maximum: int, description: str = "") -> Schema:
    out: Schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if description:
        out["description"] = description
    return out


# ASCII digits only: int() alone also reads " 12" and Arabic-Indic digits.
_WHOLE = re.compile(r"-?[0-9]{1,12}\Z")

BOOLEAN: Schema = {"type": "boolean"}
NUMBERS: Schema = {
    "type": "array",
    "items": string(64),
    "minItems": 1,
    "maxItems": MAX_BATCH,
    "description": "numbers in any accepted form (+13035550100, (303) 555-0100, +1303555*)",
}

NAMES: Schema = {
    "type": "array",
    "items": string(100),
    "minItems": 1,
    "maxItems": 100,
    "description": "caller-name rules: Scam Likely (whole name), V*, *likely, *spam*",
}


def obj(properties: Mapping[str, Schema], required: Sequence[str] = ()) -> Schema:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field {key!r} given twice")
        out[key] = value
    return out


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no repeated keys; any failure is one line."""
    try:
        return json.loads(
            raw.decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except UnicodeDecodeError:
        raise InvalidInput("request body: not UTF-8") from None
    except RecursionError:
        raise InvalidInput("request body: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"request body: not JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError as exc:
        raise InvalidInput(f"request body: {exc}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _check_string(value: str, schema: Schema, where: str) -> str:
    if len(value) > schema.get("maxLength", MAX_STRING):
        raise InvalidInput(f"{where}: longer than {schema.get('maxLength', MAX_STRING)} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800): valid JSON, not valid text
        raise InvalidInput(f"{where}: not valid Unicode text") from None
    return value


def check(schema: Schema, value: Any, where: str) -> Any:
    """``value`` if it has the shape ``schema`` describes, else :class:`InvalidInput`."""
    kind = schema["type"]
    if kind == "object":
        if not isinstance(value, dict):
            raise InvalidInput(f"{where}: expected a JSON object, got {_kind(value)}")
        props: dict[str, Schema] = schema["properties"]
        unknown = sorted(k for k in value if k not in props)
        if unknown:
            known = ", ".join(props) or "none"
            raise InvalidInput(f"unknown field {unknown[0]!r} (known: {known})")
        for name in schema.get("required", []):
            if name not in value:
                raise InvalidInput(f"{name}: required")
        return {k: check(props[k], v, k) for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: expected a string, got {_kind(value)}")
        return _check_string(value, schema, where)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"{where}: expected true or false, got {_kind(value)}")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{where}: expected a whole number, got {_kind(value)}")
        return _bounded(value, schema, where)
    if kind == "array":
        if not isinstance(value, list):
            raise InvalidInput(f"{where}: expected an array, got {_kind(value)}")
        if len(value) < schema.get("minItems", 0):
            raise InvalidInput(f"{where}: expected at least {schema['minItems']} item(s)")
        if len(value) > schema.get("maxItems", MAX_BATCH):
            raise InvalidInput(f"{where}: more than {schema['maxItems']} items")
        return [check(schema["items"], v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise AssertionError(f"schema type {kind!r} not understood")  # a bug in our table


def _bounded(value: int, schema: Schema, where: str) -> int:
    low, high = schema.get("minimum"), schema.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidInput(f"{where}: expected a number from {low} to {high}")
    return value


def check_query(params: Mapping[str, Schema], items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A query string's ``(name, value)`` pairs against ``params``: unknown or repeated names,
    and values of the wrong kind, are refused."""
    out: dict[str, Any] = {}
    for name, raw in items:
        schema = params.get(name)
        if schema is None:
            known = ", ".join(params) or "none"
            raise InvalidInput(f"unknown query parameter {name!r} (known: {known})")
        if name in out:
            raise InvalidInput(f"query parameter {name!r} given twice")
        if schema["type"] == "integer":
            if not _WHOLE.match(raw):
                raise InvalidInput(f"{name}: expected a whole number")
            out[name] = _bounded(int(raw), schema, name)
        else:
            out[name] = _check_string(raw, schema, name)
    return out
