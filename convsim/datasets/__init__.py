"""JSONL datasets: streamed reading with per-line error reports, and evaluation cases."""

from ._case import CaseProvenance, EvalCase, EvalCaseAdapter, append_cases
from ._conversations import ConversationAdapter, read_conversations
from ._jsonl import (
    DEFAULT_MAX_LINE_BYTES,
    JsonlReader,
    ReadReport,
    RecordError,
    RecordIssue,
    RejectSink,
    check_input_file,
    describe_parse_error,
    describe_validation_error,
    dump_line,
    open_input,
    write_jsonl,
)
from ._stats import conversation_stats

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "CaseProvenance",
    "ConversationAdapter",
    "EvalCase",
    "EvalCaseAdapter",
    "JsonlReader",
    "ReadReport",
    "RecordError",
    "RecordIssue",
    "RejectSink",
    "append_cases",
    "check_input_file",
    "conversation_stats",
    "describe_parse_error",
    "describe_validation_error",
    "dump_line",
    "open_input",
    "read_conversations",
    "write_jsonl",
]
