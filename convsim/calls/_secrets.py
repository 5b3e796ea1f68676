"""Keep API keys out of logs, stores and reports."""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from pydantic import JsonValue

# \b: "task-management" holds "sk-management", which is not a key.
_KEY_PATTERNS = re.compile(
    r"(\bsk-[A-Za-z0-9_\-]{8,}|\bsk-ant-[A-Za-z0-9_\-]{8,}|\bAIza[0-9A-Za-z_\-]{20,}"
    r"|\b(?i:bearer)\s+[A-Za-z0-9._\-]{8,})"
)
_SECRET_ENV = re.compile(r"(API_KEY|_TOKEN|_SECRET|_PASSWORD)$")
# user:password@ in a URL; the user name stays, the password goes.
# Neither part may cross a quote, bracket or comma: in JSON or prose the "@" of a later
# e-mail address must not make "http://host", "...": "a@b" look like credentials.
_URL_CREDENTIALS = re.compile(
    r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@\"'<>{}\[\],]*):([^/\s@\"'<>{}\[\],\\]+)@"
)

_named: set[str] = set()
_values: set[str] = set()


def register_secret_value(value: str | None) -> None:
    """Treat a literal value as a secret from now on (a password found in a URL)."""
    if value and len(value) >= 4:
        _values.add(value)


def register_url_credentials(url: str | None) -> None:
    """Register the password of a ``scheme://user:password@host`` URL as a secret."""
    if url:
        for match in _URL_CREDENTIALS.finditer(url):
            register_secret_value(unquote(match.group(2)))
            register_secret_value(match.group(2))


def register_secret_env(name: str | None) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on.

    Called for every ``api_key_env`` convsim is given, whatever the variable's name, so
    a provider error that echoes the key back never reaches a log, a store or a report.
    """
    if name:
        _named.add(name)


def redact_secrets(text: str) -> str:
    """Replace API keys and credentials in ``text``.

    Known key shapes, the values of ``*_API_KEY``-like variables and of every variable
    registered with :func:`register_secret_env`, and the password part of credentials in
    URLs (``http://user:KEY@host``).
    """
    for name, value in os.environ.items():
        if (name in _named or _SECRET_ENV.search(name)) and len(value) >= 8 and value in text:
            text = text.replace(value, f"[redacted {name}]")
    for value in _values:
        if value in text:
            text = text.replace(value, "[redacted]")
    text = _URL_CREDENTIALS.sub(r"\1:[redacted]@", text)
    return _KEY_PATTERNS.sub("[redacted key]", text)


def redact_json(value: JsonValue) -> JsonValue:
    """``value`` with every string in it redacted, keys and structure untouched.

    Redacting the serialised text instead could let a pattern run across the quotes
    between two values and break the JSON.
    """
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    return value
