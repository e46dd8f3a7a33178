"""The lab file schema (each block kind brings its own part) and its errors turned into plain sentences."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from labctl import kinds
from labctl.model.yamlsource import FieldPath

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

META_KEYS = ("title", "summary", "notes", "bind")


def block_kinds() -> tuple[str, ...]:
    """The names of every registered block kind."""
    return kinds.names()


def block_schema(kind: str) -> dict[str, Any] | None:
    """The JSON schema of one block of `kind`, or None for a kind nobody registered."""
    found = kinds.REGISTRY.get(kind)
    return None if found is None else found.schema()


META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "summary"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "summary": {"type": "string", "minLength": 1},
        "notes": {"type": "string", "description": "the notes section this lab teaches"},
        "bind": {
            "type": "string",
            "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$",
            "description": "an IPv4 address like 127.0.0.1",
        },
    },
}


def schema_errors(schema: dict[str, Any], data: Any) -> list[tuple[FieldPath, str]]:
    """Validate `data` and return (field path, sentence) for every problem, deduplicated."""
    found: dict[FieldPath, str] = {}
    from jsonschema import Draft202012Validator  # validation only: `labctl list` and --help skip it

    validator = Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        for path, sentence in _explain(error):
            found.setdefault(path, sentence)
    return list(found.items())


def _explain(error: ValidationError) -> Iterable[tuple[FieldPath, str]]:
    path: FieldPath = tuple(error.absolute_path)
    schema: dict[str, Any] = dict(error.schema) if isinstance(error.schema, dict) else {}
    instance: Any = error.instance
    if error.validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for key in sorted(set(instance) - set(allowed)):
            yield (*path, key), unknown_key_sentence(key, allowed)
    elif error.validator == "required":
        present = instance if isinstance(instance, dict) else {}
        required: Any = error.validator_value
        for key in required:
            if key not in present:
                yield path, f"missing required key '{key}'"
    else:
        yield path, f"expected {describe(schema)}, got {shown(instance)}"


def unknown_key_sentence(key: str, allowed: Iterable[str]) -> str:
    """'unknown key' with a did-you-mean when a known key is close enough."""
    options = sorted(allowed)
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}', did you mean '{close[0]}'?"
    return f"unknown key '{key}' (known keys: {', '.join(options)})"


def describe(schema: dict[str, Any]) -> str:
    """What a schema expects, in words."""
    if "description" in schema and "properties" not in schema:
        return str(schema["description"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema:
        return " or ".join(describe(sub) for sub in schema["anyOf"])
    return _describe_type(schema)


def _describe_type(schema: dict[str, Any]) -> str:
    json_type = schema.get("type")
    if json_type in ("integer", "number"):
        noun = "an integer" if json_type == "integer" else "a number"
        return noun + _bounds(schema)
    if json_type == "array":
        return "a list of " + _plural(describe(schema.get("items", {})))
    return {"string": "a string", "boolean": "true or false", "object": "a mapping"}.get(
        str(json_type), "a valid value"
    )


def _bounds(schema: dict[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if "exclusiveMinimum" in schema:
        text = f" > {schema['exclusiveMinimum']}"
        return text + (f" and <= {high}" if high is not None else "")
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            return text[len(article):] + "s"
    return text


def shown(value: Any) -> str:
    """A value as it appears in an error: strings quoted, containers named."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def with_defaults(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """A block's parameters with every default filled in (one level of nesting deep)."""
    merged: dict[str, Any] = {}
    for key, default in kinds.kind_of(kind).defaults.items():
        given = params.get(key)
        if isinstance(default, dict) and isinstance(given, dict):
            merged[key] = {**default, **given}
        else:
            merged[key] = default if given is None else given
    return {**params, **merged}
