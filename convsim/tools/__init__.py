"""Tools with JSON Schemas, toolsets that validate every call, and stateful environments."""

from ._env import ToolEnvironment, hash_state
from ._tool import Tool, ToolFunction, Toolset, render_result, schema_from_signature, tool

__all__ = [
    "Tool",
    "ToolEnvironment",
    "ToolFunction",
    "Toolset",
    "hash_state",
    "render_result",
    "schema_from_signature",
    "tool",
]
