"""The one place convsim talks to litellm.

litellm is imported lazily, on the first real call: importing it costs seconds and, by
default, fetches a price map over the network. Everything else in convsim sees only
:class:`ModelRequest`, :class:`ModelResult` and the :class:`ModelClient` protocol.
convsim owns retries, rate limits and the response cache instead of using litellm's
Router and cache, which have known defects.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import anyio

from .calls import (
    ATTEMPT_TIMEOUT_S,
    LimitRegistry,
    ResponseCache,
    RetryPolicy,
    TransientError,
    register_secret_env,
    register_url_credentials,
    with_retries,
)
from .calls import redact_secrets as _redact
from .errors import ModelCallError, ProviderUnavailable, RateLimited
from .trace import AssistantMessage, ToolCall, Usage


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One chat-completion request, in OpenAI message form."""

    model: str
    """litellm model name, e.g. ``openai/gpt-4o-mini`` or ``anthropic/claude-sonnet-4-5``."""
    messages: list[dict[str, Any]]
    """The messages to send."""
    tools: list[dict[str, Any]] | None = None
    """Tools in OpenAI ``tools=[...]`` form."""
    response_format: dict[str, Any] | None = None
    """Structured-output request (``{"type": "json_schema", ...}``)."""
    temperature: float | None = None
    """Sampling temperature."""
    seed: int | None = None
    """Provider-side seed, where supported."""
    max_tokens: int | None = None
    """Output token cap."""
    api_base: str | None = None
    """Endpoint override, e.g. a local OpenAI-compatible server."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key. The key itself never enters
    a request object, so it cannot leak into caches, stores or logs."""
    party: str = "agent"
    """Who is calling (``agent``, ``user``, ``judge``), for cost accounting."""

    def cache_key(self) -> str:
        """Hash of everything that determines the answer (never the API key)."""
        payload = {
            "model": self.model,
            "messages": self.messages,
            "tools": self.tools,
            "response_format": self.response_format,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "api_base": self.api_base,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def provider(self) -> str:
        """Provider prefix of the model name, used to pick rate limits."""
        return self.model.split("/", 1)[0] if "/" in self.model else "openai"


@dataclass(frozen=True, slots=True)
class ModelResult:
    """A completed model call."""

    message: AssistantMessage
    """The reply, with tool calls, usage and model filled in."""
    cost_usd: float | None = None
    """Cost of the call; None when the provider's price is unknown."""
    cached: bool = False
    """True when served from the response cache (no call was made)."""
    attempts: int = 1
    """Attempts made, retries included."""


class ModelClient(Protocol):
    """Anything that completes a :class:`ModelRequest`."""

    async def complete(self, request: ModelRequest) -> ModelResult:
        """Return the model's reply or raise :class:`ModelCallError`."""
        ...


@dataclass(slots=True)
class CallStats:
    """Counters kept by a client, split by party."""

    calls: dict[str, int] = field(default_factory=dict)
    """Model calls made, by party (cache hits excluded)."""
    retries: int = 0
    """Retries after transient failures."""
    cost_usd: dict[str, float] = field(default_factory=dict)
    """Cost by party."""
    input_tokens: dict[str, int] = field(default_factory=dict)
    """Input tokens by party."""
    output_tokens: dict[str, int] = field(default_factory=dict)
    """Output tokens by party."""

    def add(self, party: str, result: ModelResult) -> None:
        """Account one completed call."""
        if result.cached:
            return
        self.calls[party] = self.calls.get(party, 0) + 1
        usage = result.message.usage
        if usage is not None:
            self.input_tokens[party] = self.input_tokens.get(party, 0) + (usage.input_tokens or 0)
            self.output_tokens[party] = self.output_tokens.get(party, 0) + (
                usage.output_tokens or 0
            )
        if result.cost_usd is not None:
            self.cost_usd[party] = self.cost_usd.get(party, 0.0) + result.cost_usd


_litellm: Any = None


def _import_litellm() -> Any:
    global _litellm
    if _litellm is None:
        # The bundled price map is enough and avoids a network fetch at import time.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        _litellm = litellm
    return _litellm


def message_from_openai_reply(message: Any, finish_reason: str | None) -> AssistantMessage:
    """Convert an OpenAI-shaped reply message (dict or object) to canonical."""
    get = message.get if isinstance(message, dict) else lambda k, d=None: getattr(message, k, d)
    calls: list[ToolCall] = []
    for raw in get("tool_calls") or []:
        rget = raw.get if isinstance(raw, dict) else lambda k, d=None, r=raw: getattr(r, k, d)
        fn = rget("function")
        fget = fn.get if isinstance(fn, dict) else lambda k, d=None, f=fn: getattr(f, k, d)
        calls.append(ToolCall.from_raw(str(rget("id")), str(fget("name")), fget("arguments")))
    content = get("content")
    return AssistantMessage(
        content=content if isinstance(content, str) else None,
        tool_calls=calls,
        finish_reason=finish_reason,
    )


class LiteLLMClient:
    """Model calls through litellm, with convsim's retries, limits and cache.

    ``timeout`` bounds each attempt (:data:`ATTEMPT_TIMEOUT_S`); the caller's budget for
    the whole call, retries included, is the session's ``call_timeout``.
    """

    def __init__(
        self,
        *,
        timeout: float = ATTEMPT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        limits: LimitRegistry | None = None,
        cache: ResponseCache | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.limits = limits or LimitRegistry()
        self.cache = cache
        self.stats = CallStats()
        self._rng = rng or random.Random()

    async def complete(self, request: ModelRequest) -> ModelResult:
        """Complete ``request``; transient failures are retried with backoff."""
        key = request.cache_key() if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return _result_from_cache(hit)
        attempts = 0

        async def attempt() -> ModelResult:
            nonlocal attempts
            attempts += 1
            async with self.limits.for_provider(request.provider).slot(_estimate_tokens(request)):
                return await self._call(request)

        def count_retry(_: int, __: TransientError) -> None:
            self.stats.retries += 1

        try:
            result = await with_retries(attempt, self.retry, rng=self._rng, on_retry=count_retry)
        except TransientError as e:
            if e.kind == "rate_limit":
                raise RateLimited(f"{request.model}: {e} (after {attempts} attempts)") from None
            raise ProviderUnavailable(f"{request.model}: {e} (after {attempts} attempts)") from None
        result = replace(result, attempts=attempts)
        self.stats.add(request.party, result)
        if self.cache is not None:
            self.cache.put(key, _result_to_cache(result))
        return result

    async def _call(self, request: ModelRequest) -> ModelResult:
        litellm = _import_litellm()
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "timeout": self.timeout,
            "num_retries": 0,
        }
        for name in ("tools", "response_format", "temperature", "seed", "max_tokens", "api_base"):
            value = getattr(request, name)
            if value is not None:
                kwargs[name] = value
        register_url_credentials(request.api_base)
        if request.api_key_env:
            register_secret_env(request.api_key_env)
            kwargs["api_key"] = os.environ.get(request.api_key_env, "")
        elif request.api_base:
            # Local OpenAI-compatible servers ignore the key, but the client insists on one.
            kwargs["api_key"] = os.environ.get("OPENAI_API_KEY", "unused")
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.timeout):
                response = await litellm.acompletion(**kwargs)
        except TimeoutError:
            raise TransientError(f"no reply within {self.timeout:g}s", kind="timeout") from None
        except Exception as e:
            raise _classify(litellm, e) from None
        latency = (time.perf_counter() - started) * 1000
        try:
            choice = response.choices[0]
            message = message_from_openai_reply(choice.message, choice.finish_reason)
        except (AttributeError, IndexError, TypeError, ValueError) as e:
            raise TransientError(f"malformed response: {e}", kind="malformed") from None
        usage = getattr(response, "usage", None)
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        message.model = getattr(response, "model", None) or request.model
        message.latency_ms = round(latency, 3)
        if usage is not None:
            message.usage = Usage(
                input_tokens=getattr(usage, "prompt_tokens", None),
                output_tokens=getattr(usage, "completion_tokens", None),
                cost_usd=cost,
            )
        return ModelResult(message=message, cost_usd=cost)


def _classify(litellm: Any, e: Exception) -> Exception:
    """Map a litellm exception to a transient (retryable) or permanent error."""
    message = _redact(f"{type(e).__name__}: {e}")[:500]
    status = getattr(e, "status_code", None)
    if isinstance(e, litellm.RateLimitError) or status == 429:
        return TransientError(message, retry_after=_retry_after(e), kind="rate_limit")
    transient_types = tuple(
        t
        for t in (
            getattr(litellm, n, None)
            for n in (
                "Timeout",
                "APIConnectionError",
                "InternalServerError",
                "ServiceUnavailableError",
                "BadGatewayError",
                "JSONSchemaValidationError",
            )
        )
        if isinstance(t, type)
    )
    if isinstance(e, transient_types) or (isinstance(status, int) and status >= 500):
        return TransientError(message, retry_after=_retry_after(e))
    if isinstance(e, json.JSONDecodeError):
        return TransientError(message, kind="malformed")
    return ModelCallError(message)


def _retry_after(e: Exception) -> float | None:
    response = getattr(e, "response", None)
    headers = getattr(response, "headers", None) or getattr(e, "headers", None) or {}
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
    except AttributeError:
        return None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _estimate_tokens(request: ModelRequest) -> int:
    # Four characters per token is the usual rough rule; it only has to keep the
    # tokens-per-minute bucket honest, not bill anyone.
    return sum(len(str(m.get("content") or "")) for m in request.messages) // 4 + 1


def _result_to_cache(result: ModelResult) -> str:
    return json.dumps(
        {
            "message": result.message.model_dump(mode="json", exclude_none=True),
            "cost": result.cost_usd,
        }
    )


def _result_from_cache(blob: str) -> ModelResult:
    data = json.loads(blob)
    return ModelResult(
        message=AssistantMessage.model_validate(data["message"]), cost_usd=data["cost"], cached=True
    )


Reply = str | dict[str, Any] | AssistantMessage | Exception
"""What a :class:`ScriptedClient` can answer: text, an OpenAI message dict, a message, or an
exception to raise."""


class ScriptedClient:
    """A deterministic :class:`ModelClient` for tests and offline runs.

    Answers come from a list (in order) or a function of the request. It records every
    request it sees, so tests can assert what was sent.
    """

    def __init__(self, replies: Sequence[Reply] | Callable[[ModelRequest], Reply]) -> None:
        self._replies = replies
        self._next = 0
        self.requests: list[ModelRequest] = []
        self.stats = CallStats()

    async def complete(self, request: ModelRequest) -> ModelResult:
        """Answer with the next scripted reply."""
        self.requests.append(request)
        if callable(self._replies):
            reply = self._replies(request)
        else:
            if self._next >= len(self._replies):
                raise ModelCallError(f"scripted client ran out of replies after {self._next}")
            reply = self._replies[self._next]
            self._next += 1
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, AssistantMessage):
            message = reply.model_copy()
        elif isinstance(reply, str):
            message = AssistantMessage(content=reply)
        else:
            message = message_from_openai_reply(reply, reply.get("finish_reason"))
        message.model = message.model or request.model
        result = ModelResult(message=message, cost_usd=0.0)
        self.stats.add(request.party, result)
        return result


class InvalidStructuredOutput(ModelCallError):
    """The model kept answering with output that does not match the required schema."""


def parse_structured(raw: str, validator: Any) -> tuple[dict[str, Any] | None, str]:
    """Parse a model's JSON answer and validate it: (data, "") or (None, what is wrong).

    Code fences around the JSON are tolerated; models add them even when told not to.
    """
    text = raw.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return None, "the answer is not JSON"
    if not isinstance(data, dict):
        return None, "the answer is not a JSON object"
    errors = [e.message for e in validator.iter_errors(data)]
    return (None, "; ".join(errors)) if errors else (data, "")


async def complete_structured(
    client: ModelClient,
    request: ModelRequest,
    *,
    schema: dict[str, Any],
    name: str,
    reasks: int = 1,
) -> tuple[dict[str, Any], list[ModelResult]]:
    """Ask for JSON matching ``schema``; re-ask with the problem when it does not match.

    Returns the validated object and every model result (for cost accounting).

    Raises:
        InvalidStructuredOutput: still invalid after ``reasks`` re-asks.
    """
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    request = replace(
        request,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        },
    )
    results: list[ModelResult] = []
    problem = ""
    for _ in range(reasks + 1):
        result = await client.complete(request)
        results.append(result)
        raw = result.message.content or ""
        data, problem = parse_structured(raw, validator)
        if data is not None:
            return data, results
        request = replace(
            request,
            messages=[
                *request.messages,
                {"role": "assistant", "content": raw},
                {
                    "role": "user",
                    "content": f"That answer was invalid: {problem}. Reply with the JSON only.",
                },
            ],
        )
    raise InvalidStructuredOutput(
        f"{request.model!r} gave invalid output {reasks + 1} times; last problem: {problem}"
    )
