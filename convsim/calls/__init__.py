"""What surrounds every outgoing call: retries, rate limits, the response cache, secrets."""

from ._cache import DEFAULT_CACHE_PATH, ResponseCache
from ._rate import LimitRegistry, ProviderLimits, TokenBucket
from ._retry import RetryPolicy, TransientError, with_retries
from ._secrets import redact_secrets

__all__ = [
    "DEFAULT_CACHE_PATH",
    "LimitRegistry",
    "ProviderLimits",
    "ResponseCache",
    "RetryPolicy",
    "TokenBucket",
    "TransientError",
    "redact_secrets",
    "with_retries",
]
