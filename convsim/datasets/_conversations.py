"""Reading canonical conversation files."""

from __future__ import annotations

import os

from pydantic import TypeAdapter

from ..trace import Conversation
from ._jsonl import JsonlReader, ReadReport, RejectSink

ConversationAdapter: TypeAdapter[Conversation] = TypeAdapter(Conversation)
"""Validates one canonical conversation."""


def read_conversations(
    path: str | os.PathLike[str],
    *,
    rejects: RejectSink | None = None,
    max_line_bytes: int | None = None,
    report: ReadReport | None = None,
) -> JsonlReader[Conversation]:
    """Stream the valid conversations of a canonical JSONL file (see :class:`JsonlReader`)."""
    return JsonlReader(
        path, ConversationAdapter, rejects=rejects, max_line_bytes=max_line_bytes, report=report
    )
