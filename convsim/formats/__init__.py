"""Readers and writers for the trace formats teams already have."""

from ._base import Importer, content_id, read_json_records
from ._convert import import_files
from .openai import (
    conversation_from_openai,
    message_from_openai,
    read_openai,
    to_openai_messages,
    to_openai_record,
)
from .tau_bench import conversation_from_tau_bench, guess_domain, read_tau_bench

IMPORTERS: dict[str, Importer] = {
    "openai": read_openai,
    "tau-bench": read_tau_bench,
}
"""Importers by the FORMAT name used on the command line."""

__all__ = [
    "IMPORTERS",
    "Importer",
    "content_id",
    "conversation_from_openai",
    "conversation_from_tau_bench",
    "guess_domain",
    "import_files",
    "message_from_openai",
    "read_json_records",
    "read_openai",
    "read_tau_bench",
    "to_openai_messages",
    "to_openai_record",
]
