"""Tool definitions in the shapes the sources write them, to :class:`ToolDefinition`.

OpenAI Chat Completions nests the function (``{"type": "function", "function": {...}}``);
the Responses API, the OpenTelemetry GenAI conventions and Traceloop flatten it
(``{"type": "function", "name": ..., "parameters": ...}``); Anthropic calls the schema
``input_schema``. Everything a definition holds besides name, description and schema is
kept verbatim in ``extra``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import JsonValue

from ..trace import ToolDefinition

_SCHEMA_KEYS = ("parameters", "input_schema", "json_schema", "schema")


def tool_definition(raw: Any) -> tuple[ToolDefinition | None, str | None]:
    """One definition from its source form; ``(None, why)`` when it has no name.

    A JSON string is decoded first (OpenInference and some SDKs store definitions as
    strings).
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None, "tool definition is not JSON"
    if not isinstance(raw, dict):
        return None, "tool definition is not an object"
    body: dict[str, Any] = dict(raw)
    outer_type = body.pop("type", None)
    if isinstance(body.get("function"), dict) and "name" not in body:
        body = {**body.pop("function"), **body}
    name = body.pop("name", None)
    if not isinstance(name, str) or not name:
        return None, "tool definition without a name"
    description = body.pop("description", None)
    schema: Any = None
    for key in _SCHEMA_KEYS:
        if key in body:
            schema = body.pop(key)
            break
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            body["parameters_raw"] = schema
            schema = None
    if schema is not None and not isinstance(schema, dict):
        body["parameters_raw"] = schema
        schema = None
    if outer_type not in (None, "function"):
        body["type"] = outer_type
    return (
        ToolDefinition(
            name=name,
            description=description if isinstance(description, str) else None,
            parameters=schema,
            extra={k: _json(v) for k, v in body.items()},
        ),
        None,
    )


def merge_tools(known: list[ToolDefinition], offered: Iterable[ToolDefinition]) -> list[str]:
    """Add the definitions not yet known (by name) to ``known``, in order.

    Returns:
        The names offered again with a different definition (the first one is kept).
    """
    by_name = {t.name: t for t in known}
    changed: list[str] = []
    for tool in offered:
        first = by_name.get(tool.name)
        if first is None:
            known.append(tool)
            by_name[tool.name] = tool
        elif first != tool and tool.name not in changed:
            changed.append(tool.name)
    return changed


def _json(value: Any) -> JsonValue:
    # Definitions come from parsed JSON; anything else is stringified rather than lost.
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value  # type: ignore[no-any-return]
