"""Keep API keys out of logs, stores and reports."""

from __future__ import annotations

import os
import re

_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})"
)
_SECRET_ENV = re.compile(r"(API_KEY|_TOKEN|_SECRET)$")


def redact_secrets(text: str) -> str:
    """Replace API keys (known key shapes and the values of ``*_API_KEY`` variables)."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8 and value in text:
            text = text.replace(value, f"[redacted {name}]")
    return _KEY_PATTERNS.sub("[redacted key]", text)
