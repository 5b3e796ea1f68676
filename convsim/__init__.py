"""convsim: simulate, replay and grade whole LLM-agent conversations.

The public API is re-exported here; subpackages (``convsim.trace``, ``convsim.datasets``,
``convsim.formats``, ``convsim.store``) hold the rest.
"""

from ._version import __version__
from .datasets import EvalCase, JsonlReader, ReadReport, read_conversations, write_jsonl
from .errors import ConfigError, ConvsimError, TraceImportError
from .store import SQLiteStore, store_writer
from .trace import (
    AssistantMessage,
    Conversation,
    Score,
    ScoreFailure,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Turn,
    UserMessage,
)

__all__ = [
    "AssistantMessage",
    "ConfigError",
    "Conversation",
    "ConvsimError",
    "EvalCase",
    "JsonlReader",
    "ReadReport",
    "SQLiteStore",
    "Score",
    "ScoreFailure",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "TraceImportError",
    "Turn",
    "UserMessage",
    "__version__",
    "read_conversations",
    "store_writer",
    "write_jsonl",
]
