"""Retries with jittered exponential backoff that honour Retry-After."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

T = TypeVar("T")


ATTEMPT_TIMEOUT_S = 45.0
"""Seconds one attempt at a model call may take before it is abandoned and retried.

It must stay well under the call budget (``SessionConfig.call_timeout``, 120 s): an
attempt that hangs is then retried twice before the call gives up, rather than the
budget expiring on the first one."""


class TransientError(Exception):
    """A failure worth retrying: rate limits, 5xx, timeouts, dropped connections, bad bodies."""

    def __init__(self, message: str, *, retry_after: float | None = None, kind: str = "transient"):
        super().__init__(message)
        self.retry_after = retry_after
        self.kind = kind


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures."""

    max_attempts: int = 6
    """Attempts in total, the first included."""
    base_delay: float = 0.5
    """Backoff before the second attempt, in seconds; doubles each time."""
    max_delay: float = 30.0
    """Longest single wait, Retry-After included."""

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        "Full jitter" spreads retries of many concurrent conversations so they do not
        hit the provider again in lockstep; a server's Retry-After is a floor.
        """
        backoff = rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        if retry_after is not None:
            return min(self.max_delay, max(retry_after, backoff))
        return backoff


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    on_retry: Callable[[int, TransientError], None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, raises a non-transient error, or attempts run out.

    Only :class:`TransientError` is retried; the last one is re-raised when attempts run
    out. Cancellation is never caught.
    """
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            return await call()
        except TransientError as e:
            if attempt >= policy.max_attempts:
                raise
            if on_retry is not None:
                on_retry(attempt, e)
            await anyio.sleep(policy.delay(attempt, e.retry_after, rng))
            attempt += 1
