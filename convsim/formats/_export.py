"""What an exporter writes for one conversation, and which canonical fields it left out.

Loss reports name canonical field paths: ``scores`` is a conversation field,
``messages[].usage`` the ``usage`` of some message, ``messages[].parts[reasoning].signature``
the signature of some reasoning part. Two paths describe the message list rather than a
field: ``messages`` (a message is dropped or split into several) and
``messages[].content`` (text moves between ``content`` and a text part, or an empty
``parts`` list is dropped, with no text lost). A path is reported only when the
conversation sets the field, so an empty report means the records hold all of it.
``provenance`` is never written and never reported: a re-import records its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..trace import (
    Conversation,
    Message,
    OtherPart,
    Part,
    ToolCall,
    ToolDefinition,
    UserSignals,
)
from ._tools import tool_definition

MESSAGES = "messages"
"""Path reported when a message is dropped or split into several."""

LAYOUT = "messages[].content"
"""Path reported when text moves between ``content`` and parts (nothing is lost)."""

ARGUMENTS = "messages[].tool_calls[].arguments"
"""Path reported when a tool call's arguments do not read back as they were."""


@dataclass(frozen=True, slots=True)
class Export:
    """One conversation in an export format, and what the format could not carry."""

    records: list[dict[str, Any]]
    """The format's records for the conversation, one JSONL line each."""
    lost: list[str]
    """Sorted canonical field paths, set on the conversation, that the records lack."""


def is_set(value: object) -> bool:
    """Whether a canonical field holds something a reader would not restore by default."""
    # Defaults (None, False, empty collections, no signals) are what any re-import
    # produces, so leaving them out loses nothing.
    if value is None or value is False:
        return False
    if isinstance(value, UserSignals):
        return value != UserSignals()
    if isinstance(value, dict | list):
        return bool(value)
    return True


def message_path(field: str) -> str:
    """The path of a message field, e.g. ``messages[].usage``."""
    return f"{MESSAGES}[].{field}"


def part_path(part: Part, field: str | None = None) -> str:
    """The path of a part kind (``messages[].parts[media]``) or of one of its fields."""
    path = f"{MESSAGES}[].parts[{part.type}]"
    return f"{path}.{field}" if field is not None else path


def verbatim_block(part: OtherPart) -> bool:
    """Whether an other part holds a whole block of its own type, which writers emit as is."""
    return isinstance(part.data, dict) and part.data.get("type") == part.source_type


class Losses:
    """The field paths an exporter could not carry for one conversation, each once."""

    def __init__(self) -> None:
        """Start with nothing lost."""
        self._paths: set[str] = set()

    def add(self, path: str) -> None:
        """Report one path."""
        self._paths.add(path)

    def fields(self, conversation: Conversation, *names: str) -> None:
        """Report each named conversation field the conversation sets."""
        for name in names:
            if is_set(getattr(conversation, name)):
                self.add(name)

    def message_fields(self, message: Message, *names: str) -> None:
        """Report each named field ``message`` sets (fields its role lacks are skipped)."""
        for name in names:
            if is_set(getattr(message, name, None)):
                self.add(message_path(name))

    def arguments(self, call: ToolCall, written: str | dict[str, Any]) -> None:
        """Report the call's arguments unless ``written`` reads back as the same call."""
        if ToolCall.from_raw(call.id, call.name, written) != call:
            self.add(ARGUMENTS)

    def tools(self, tools: list[ToolDefinition], written: list[dict[str, Any]]) -> None:
        """Report ``tools`` unless every written definition parses back as it was.

        The check uses the shared tool-definition parser, so it agrees with any reader
        that parses definitions with it. Definitions sharing a name count as lost: a
        reader keeps the first definition of each name.
        """
        names = [t.name for t in tools]
        parsed = [tool_definition(w)[0] for w in written]
        if parsed != tools or len(set(names)) != len(names):
            self.add("tools")

    def sorted(self) -> list[str]:
        """The reported paths, sorted."""
        return sorted(self._paths)
