"""Readers and writers for the trace formats teams already have."""

from collections.abc import Callable
from typing import Any

from ..trace import Conversation as _Conversation
from ._base import Importer, content_id, read_json_records
from ._convert import import_files
from ._detect import classify, detect_format, read_auto
from .anthropic import (
    conversation_from_anthropic,
    message_from_anthropic,
    read_anthropic,
    to_anthropic_record,
    to_anthropic_request,
)
from .langfuse import read_langfuse
from .langsmith import read_langsmith
from .openai import (
    conversation_from_openai,
    message_from_openai,
    read_openai,
    to_openai_messages,
    to_openai_record,
)
from .openinference import read_openinference
from .otel import message_from_otel, message_to_otel, read_otel, to_otel_request
from .responses import read_responses
from .tau_bench import conversation_from_tau_bench, guess_domain, read_tau_bench

IMPORTERS: dict[str, Importer] = {
    "openai": read_openai,
    "tau-bench": read_tau_bench,
    "responses": read_responses,
    "anthropic": read_anthropic,
    "otel": read_otel,
    "openinference": read_openinference,
    "langsmith": read_langsmith,
    "langfuse": read_langfuse,
    "auto": read_auto,
}
"""Importers by the FORMAT name used on the command line."""

EXPORTERS: dict[str, Callable[[_Conversation], dict[str, Any]]] = {
    "openai": to_openai_record,
    "anthropic": to_anthropic_record,
    "otel": to_otel_request,
}
"""Exporters by FORMAT name: each turns one conversation into one JSONL record."""

__all__ = [
    "EXPORTERS",
    "IMPORTERS",
    "Importer",
    "classify",
    "content_id",
    "conversation_from_anthropic",
    "conversation_from_openai",
    "conversation_from_tau_bench",
    "detect_format",
    "guess_domain",
    "import_files",
    "message_from_anthropic",
    "message_from_openai",
    "message_from_otel",
    "message_to_otel",
    "read_anthropic",
    "read_auto",
    "read_json_records",
    "read_langfuse",
    "read_langsmith",
    "read_openai",
    "read_openinference",
    "read_otel",
    "read_responses",
    "read_tau_bench",
    "to_anthropic_record",
    "to_anthropic_request",
    "to_openai_messages",
    "to_openai_record",
    "to_otel_request",
]
