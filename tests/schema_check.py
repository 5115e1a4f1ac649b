"""A small structural JSON-schema validator for the keywords our schemas use."""

from __future__ import annotations

import re
from typing import Any


def check(
    schema: dict[str, Any], value: Any, path: str = "$", root: dict[str, Any] | None = None
) -> list[str]:
    """A small structural validator for the keywords above, and local `$ref`s (no
    jsonschema dependency)."""
    root = schema if root is None else root
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return check(root["$defs"][name], value, path, root)
    errors: list[str] = []
    if "anyOf" in schema:
        if not any(not check(option, value, path, root) for option in schema["anyOf"]):
            errors.append(f"{path}: matches no anyOf option")
        return errors
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        props = schema["properties"]
        errors += [f"{path}.{k}: required" for k in schema["required"] if k not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{path}.{k}: not allowed" for k in value if k not in props]
        for key, sub in props.items():
            if key in value:
                errors += check(sub, value[key], f"{path}.{key}", root)
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            errors.append(f"{path}: {len(value)} items")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items", {})
            errors += check(sub, item, f"{path}[{i}]", root)
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: not an integer"]
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            errors.append(f"{path}: {value} out of bounds")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: not a string"]
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{path}: does not match {schema['pattern']}")
    elif kind == "null" and value is not None:
        errors.append(f"{path}: not null")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    return errors
