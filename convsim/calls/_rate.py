"""Per-provider limits: concurrency, requests per minute and tokens per minute."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio


class TokenBucket:
    """A token bucket on anyio's clock: ``capacity`` units, refilled at ``rate`` per second.

    Waiters are served in arrival order, so a large request cannot be starved by a
    stream of small ones.
    """

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.capacity = per_minute
        self.rate = per_minute / 60.0
        self.level = per_minute
        self.updated = anyio.current_time()
        self._lock = anyio.Lock()

    async def take(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units are available, then take them."""
        amount = min(amount, self.capacity)
        async with self._lock:
            while True:
                now = anyio.current_time()
                self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
                self.updated = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await anyio.sleep((amount - self.level) / self.rate)


@dataclass(slots=True)
class ProviderLimits:
    """Limits for one provider; build with :meth:`create` inside an event loop."""

    concurrency: anyio.CapacityLimiter
    """Calls in flight at once."""
    requests: TokenBucket | None = None
    """Requests per minute."""
    tokens: TokenBucket | None = None
    """Tokens per minute (estimated before the call)."""

    @classmethod
    def create(
        cls, *, concurrency: int = 64, rpm: float | None = None, tpm: float | None = None
    ) -> ProviderLimits:
        """Limits with the given caps; None means unlimited."""
        return cls(
            concurrency=anyio.CapacityLimiter(concurrency),
            requests=TokenBucket(rpm) if rpm else None,
            tokens=TokenBucket(tpm) if tpm else None,
        )

    @asynccontextmanager
    async def slot(self, estimated_tokens: int = 0) -> AsyncIterator[None]:
        """Hold a concurrency slot after waiting for request and token budget."""
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None and estimated_tokens:
            await self.tokens.take(estimated_tokens)
        async with self.concurrency:
            yield


@dataclass(slots=True)
class LimitRegistry:
    """Limits per provider name, created on first use from per-provider settings."""

    settings: dict[str, dict[str, float]] = field(default_factory=dict)
    """Provider name → ``{"concurrency": n, "rpm": r, "tpm": t}``; ``"*"`` is the default."""
    _limits: dict[str, ProviderLimits] = field(default_factory=dict)

    def for_provider(self, provider: str) -> ProviderLimits:
        """The limits for ``provider``."""
        limits = self._limits.get(provider)
        if limits is None:
            s = self.settings.get(provider) or self.settings.get("*") or {}
            limits = ProviderLimits.create(
                concurrency=int(s.get("concurrency", 64)), rpm=s.get("rpm"), tpm=s.get("tpm")
            )
            self._limits[provider] = limits
        return limits
