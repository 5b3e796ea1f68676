"""Exceptions raised by convsim.

The tree::

    ConvsimError
    ├── ConfigError(ConvsimError, ValueError)       bad persona, rubric, policy or run config
    ├── TraceImportError(ConvsimError, ValueError)  input that cannot be read at all
    ├── AgentError                                  the agent under test failed
    │   ├── AgentTimeout
    │   ├── AgentHTTPError(status_code, body, retry_after)
    │   └── AgentUnavailable(+InfrastructureFailure) endpoint down after every retry
    ├── ModelCallError                              our own model calls (user simulator, judge)
    │   ├── RateLimited(+InfrastructureFailure)     still rate-limited after every retry
    │   └── ProviderUnavailable(+InfrastructureFailure)
    ├── InfrastructureFailure                       mixin: a provider stayed unavailable
    └── StoreError                                  the SQLite store
        ├── ResumeMismatch                          --resume with a changed run config
        └── RunBusy                                 another process is running the run

Only configuration errors abort a run. Failures inside one conversation are recorded as
data (a termination reason, a score failure), never raised past the runner.
"""

from __future__ import annotations


class ConvsimError(Exception):
    """Base class of every error convsim raises on purpose."""


class ConfigError(ConvsimError, ValueError):
    """A configuration or usage mistake; the message names the file, field and fix."""


class TraceImportError(ConvsimError, ValueError):
    """Input that cannot be read at all (missing file, a directory, an empty file)."""


class AgentError(ConvsimError):
    """The agent under test failed to produce a reply."""


class InfrastructureFailure(ConvsimError):
    """A provider or endpoint stayed unavailable after every retry.

    Conversations that end this way are recorded as infrastructure errors and excluded
    from pass rates, since they say nothing about the agent.
    """


class AgentTimeout(AgentError):
    """The agent did not reply within its time limit."""


class AgentHTTPError(AgentError):
    """An HTTP agent endpoint answered with an error status."""

    def __init__(self, status_code: int, body: str, retry_after: float | None = None) -> None:
        super().__init__(f"agent endpoint returned HTTP {status_code}: {body[:200]}")
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after


class AgentUnavailable(AgentError, InfrastructureFailure):
    """The agent's endpoint kept failing (429, 5xx, timeouts) after every retry."""


class ModelCallError(ConvsimError):
    """A model call failed (a permanent error, or a transient one after every retry)."""


class RateLimited(ModelCallError, InfrastructureFailure):
    """The provider was still rate-limiting after every retry."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(ModelCallError, InfrastructureFailure):
    """The provider kept failing (5xx, timeouts, malformed bodies) after every retry."""


class StoreError(ConvsimError):
    """The result store could not be read or written."""


class ResumeMismatch(StoreError):
    """``--resume`` was asked for a run whose stored config differs from the current one."""


class RunBusy(StoreError):
    """Another live process is running the run this one was asked to run or resume."""
