"""Tools: Python functions with JSON Schemas, validated before every call.

An invalid call is not an exception: it goes back to the agent as a tool error, as real
agent runtimes do, and so does anything the tool itself raises. Tool errors are data.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, get_type_hints, overload

from jsonschema import Draft202012Validator
from pydantic import ConfigDict, create_model

from ..errors import ConfigError
from ..trace import ToolCall, ToolMessage

ToolFunction = Callable[..., Any] | Callable[..., Awaitable[Any]]
"""A sync or async function implementing a tool."""


@dataclass(slots=True)
class Tool:
    """A callable tool with its JSON Schema.

    Build one with :func:`tool` (schema from type hints and the docstring) or directly,
    giving ``parameters`` yourself.
    """

    name: str
    """Name the agent calls the tool by."""
    description: str
    """What the tool does, shown to the agent."""
    parameters: dict[str, Any]
    """JSON Schema of the arguments object."""
    fn: ToolFunction
    """The implementation, called with the validated arguments as keywords."""
    terminal: bool = False
    """Calling this tool ends the conversation (for example a transfer to a human)."""
    _validator: Draft202012Validator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            Draft202012Validator.check_schema(self.parameters)
        except Exception as e:
            raise ConfigError(f"tool {self.name!r}: invalid parameters schema: {e}") from None
        self._validator = Draft202012Validator(self.parameters)

    def validation_errors(self, arguments: dict[str, Any]) -> list[str]:
        """Human-readable problems with ``arguments``; empty when they are valid."""
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
        out = []
        for e in errors:
            where = ".".join(str(p) for p in e.path)
            out.append(f"{where}: {e.message}" if where else e.message)
        return out

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI ``tools=[...]`` form."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@overload
def tool(
    fn: ToolFunction,
    *,
    name: str | None = None,
    description: str | None = None,
    terminal: bool = False,
) -> Tool: ...


@overload
def tool(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    terminal: bool = False,
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    fn: ToolFunction | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    terminal: bool = False,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a :class:`Tool` from a typed function; usable bare or with arguments.

    The schema comes from the type hints (via pydantic), the description from the
    docstring's first paragraph.
    """

    def wrap(f: ToolFunction) -> Tool:
        return Tool(
            name=name or f.__name__,
            description=description or _first_paragraph(inspect.getdoc(f) or ""),
            parameters=schema_from_signature(f),
            fn=f,
            terminal=terminal,
        )

    return wrap if fn is None else wrap(fn)


def schema_from_signature(fn: ToolFunction) -> dict[str, Any]:
    """JSON Schema of a function's keyword arguments, from its type hints."""
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is param.empty else param.default
        fields[pname] = (annotation, default)
    model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def _first_paragraph(doc: str) -> str:
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


def render_result(value: Any) -> str:
    """A tool's return value as the text the agent sees."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class Toolset:
    """Tools by name, with validation and error capture around every call."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if t.name in self.tools:
                raise ConfigError(f"two tools are named {t.name!r}; tool names must be unique")
            self.tools[t.name] = t

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def openai_schemas(self) -> list[dict[str, Any]]:
        """Every tool in OpenAI ``tools=[...]`` form, in registration order."""
        return [t.openai_schema() for t in self.tools.values()]

    def is_terminal(self, name: str) -> bool:
        """True when calling ``name`` ends the conversation."""
        t = self.tools.get(name)
        return t is not None and t.terminal

    async def call(self, call: ToolCall) -> ToolMessage:
        """Run one tool call and return its result message (errors included)."""
        t = self.tools.get(call.name)
        if t is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return _error(call, f"Error: unknown tool {call.name!r}; available tools: {known}")
        if call.arguments is None:
            return _error(call, f"Error: arguments for {call.name!r} are not a valid JSON object")
        problems = t.validation_errors(call.arguments)
        if problems:
            return _error(
                call, f"Error: invalid arguments for {call.name!r}: {'; '.join(problems)}"
            )
        try:
            # A deep copy, so a stateful tool that stores its arguments never aliases the
            # transcript's ToolCall (later writes would rewrite history).
            value = t.fn(**copy.deepcopy(call.arguments))
            if inspect.isawaitable(value):
                value = await value
        except Exception as e:
            return _error(call, f"Error: {e}")
        return ToolMessage(tool_call_id=call.id, name=call.name, content=render_result(value))

    async def call_all(self, calls: Iterable[ToolCall]) -> list[ToolMessage]:
        """Run parallel calls one after another, in order, so stateful tools stay deterministic."""
        return [await self.call(c) for c in calls]


def _error(call: ToolCall, message: str) -> ToolMessage:
    return ToolMessage(tool_call_id=call.id, name=call.name, content=message, is_error=True)
