"""HttpAgent: an OpenAI-compatible chat-completions endpoint as the agent under test."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import anyio
import httpx

from ..calls import (
    ATTEMPT_TIMEOUT_S,
    RetryPolicy,
    TransientError,
    redact_secrets,
    register_secret_env,
    register_url_credentials,
    with_retries,
)
from ..errors import AgentHTTPError, AgentUnavailable
from ..formats.openai import to_openai_messages
from ..trace import AssistantMessage, Conversation, SystemMessage, Usage
from ._base import AgentContext


class HttpAgent:
    """POST the conversation to ``{base_url}/chat/completions`` and read the reply.

    Transient failures (429 with Retry-After, 5xx, timeouts, dropped connections,
    malformed bodies) are retried with jittered backoff; others raise
    :class:`AgentHTTPError`. Pass your own ``httpx.AsyncClient`` to share connections
    or to test without a server (``httpx.MockTransport``).
    """

    def __init__(
        self,
        url: str,
        *,
        model: str = "agent",
        system_prompt: str | None = None,
        api_key_env: str | None = None,
        timeout: float = ATTEMPT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        register_url_credentials(url)
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
        self.model = model
        self.system_prompt = system_prompt
        self.api_key_env = api_key_env
        register_secret_env(api_key_env)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.client = client
        self.extra_body = extra_body or {}
        self.retries = 0

    async def respond(self, conversation: Conversation, context: AgentContext) -> AssistantMessage:
        """Send the conversation and return the endpoint's reply."""
        messages = to_openai_messages(conversation, for_api=True)
        if self.system_prompt and not isinstance(
            conversation.messages[0] if conversation.messages else None, SystemMessage
        ):
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        body: dict[str, Any] = {"model": self.model, "messages": messages, **self.extra_body}
        if context.tools:
            body["tools"] = context.tools
        headers = {}
        if self.api_key_env and os.environ.get(self.api_key_env):
            headers["authorization"] = f"Bearer {os.environ[self.api_key_env]}"
        rng = random.Random(context.seed)

        def count(_: int, __: TransientError) -> None:
            self.retries += 1

        try:
            return await with_retries(
                lambda: self._post(body, headers), self.retry, rng=rng, on_retry=count
            )
        except TransientError as e:
            raise AgentUnavailable(f"{self.url}: {e}") from None

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> AssistantMessage:
        client = self.client or httpx.AsyncClient()
        try:
            with anyio.fail_after(self.timeout):
                response = await client.post(self.url, json=body, headers=headers)
        except TimeoutError:
            raise TransientError(f"no reply within {self.timeout:g}s", kind="timeout") from None
        except httpx.TransportError as e:
            raise TransientError(f"connection failed: {type(e).__name__}") from None
        finally:
            if self.client is None:
                await client.aclose()
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"HTTP {response.status_code}",
                retry_after=_retry_after(response),
                kind="rate_limit" if response.status_code == 429 else "transient",
            )
        if response.status_code >= 400:
            raise AgentHTTPError(response.status_code, redact_secrets(response.text[:1000]))
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            reply = _reply_from_openai(message, choice.get("finish_reason"))
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as e:
            raise TransientError(
                f"malformed response body ({type(e).__name__})", kind="malformed"
            ) from None
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict):
            reply.usage = Usage(
                input_tokens=usage.get("prompt_tokens"),
                output_tokens=usage.get("completion_tokens"),
            )
        reply.model = data.get("model") or self.model
        return reply


def _reply_from_openai(message: Any, finish_reason: Any) -> AssistantMessage:
    from .._llm import message_from_openai_reply

    if not isinstance(message, dict):
        raise TypeError("message is not an object")
    return message_from_openai_reply(
        message, finish_reason if isinstance(finish_reason, str) else None
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
