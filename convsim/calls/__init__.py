"""What surrounds every outgoing call: retries, rate limits, the response cache, secrets."""

from ._cache import DEFAULT_CACHE_PATH, ResponseCache
from ._rate import LimitRegistry, ProviderLimits, TokenBucket
from ._retry import ATTEMPT_TIMEOUT_S, RetryPolicy, TransientError, with_retries
from ._secrets import (
    redact_json,
    redact_secrets,
    register_secret_env,
    register_secret_value,
    register_url_credentials,
)

__all__ = [
    "ATTEMPT_TIMEOUT_S",
    "DEFAULT_CACHE_PATH",
    "LimitRegistry",
    "ProviderLimits",
    "ResponseCache",
    "RetryPolicy",
    "TokenBucket",
    "TransientError",
    "redact_json",
    "redact_secrets",
    "register_secret_env",
    "register_secret_value",
    "register_url_credentials",
    "with_retries",
]
