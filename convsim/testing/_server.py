"""A real OpenAI-compatible HTTP server on 127.0.0.1, with fault injection.

Tests and benchmarks use it to exercise the whole network path (httpx, litellm,
retries, Retry-After) without touching the internet. Answers are a pure function of
the request, so a run with injected faults must produce the same transcripts as a
fault-free one.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from ._loopback import LoopbackServer

Responder = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps a chat-completions request body to the reply ``message`` object."""

FAULT_KINDS = ("429", "500", "timeout", "malformed")
"""Faults the server can inject."""


def echo_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Reply ``"echo: <last user message>"``: deterministic, handy for tests."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    text = users[-1].get("content") if users else ""
    return {"role": "assistant", "content": f"echo: {text or ''}"}


class FakeOpenAIServer(LoopbackServer):
    """``POST /v1/chat/completions`` on a free loopback port, in a background thread.

    Args:
        responder: Builds the reply message from the request body.
        fault_rate: Share of requests answered with an injected fault instead.
        faults: Which faults to inject, chosen at random among these.
        seed: Seed for the fault decisions.
        hang_seconds: How long a ``timeout`` fault stalls before answering.
        latency: Seconds every successful reply waits, to mimic a model.
        retry_after: Value of the Retry-After header on injected 429s.
        fail: Decides, from the request body, an HTTP error status to answer with
            instead (e.g. 429 when the user says so), for deterministic failures.

    Replies carry distinct ids (``chatcmpl-fake0001``, ...), usage that depends on the
    request and reply sizes, and are streamed as server-sent events when the request
    asks (``stream: true``, with a usage chunk under ``stream_options.include_usage``).
    ``responses`` holds every reply payload, for tests to compare imports against.
    """

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULT_KINDS,
        seed: int = 0,
        hang_seconds: float = 2.0,
        latency: float = 0.0,
        retry_after: float = 0.01,
        fail: Callable[[dict[str, Any]], int | None] | None = None,
    ) -> None:
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {FAULT_KINDS}")
        self.responder = responder
        self.fault_rate = fault_rate
        self.faults = faults
        self.hang_seconds = hang_seconds
        self.latency = latency
        self.retry_after = retry_after
        self.fail = fail
        self.responses: list[dict[str, Any]] = []
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        """Base URL to give clients, ending in ``/v1``."""
        return f"{self.origin}/v1"

    def _decide(self, body: dict[str, Any]) -> str | None:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)
            if self.fault_rate and self._rng.random() < self.fault_rate:
                kind = self._rng.choice(self.faults)
                self.injected[kind] += 1
                return kind
        return None

    def _reply(self, body: dict[str, Any]) -> dict[str, Any]:
        message = self.responder(body)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion = max(1, len(json.dumps(message)) // 4)
        with self._lock:
            number = len(self.responses) + 1
            payload = {
                "id": f"chatcmpl-fake{number:04d}",
                "object": "chat.completion",
                "created": 1_796_000_000 + number,
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
            self.responses.append(payload)
        return payload

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, b'{"error": {"message": "bad json"}}')
                    return
                fault = server._decide(body)
                if fault == "429":
                    self._send(
                        429,
                        b'{"error": {"message": "slow down"}}',
                        {"retry-after": f"{server.retry_after:g}"},
                    )
                    return
                if fault == "500":
                    self._send(500, b'{"error": {"message": "boom"}}')
                    return
                if fault == "timeout":
                    time.sleep(server.hang_seconds)
                if fault == "malformed":
                    self._send(200, b'{"id": "x", "choices": [{"mess')
                    return
                status = server.fail(body) if server.fail is not None else None
                if status is not None:
                    self._send(
                        status,
                        json.dumps(
                            {"error": {"message": f"injected {status}", "type": "requests"}}
                        ).encode(),
                        {"retry-after": f"{server.retry_after:g}"} if status == 429 else None,
                    )
                    return
                if server.latency:
                    time.sleep(server.latency)
                payload = server._reply(body)
                if body.get("stream"):
                    self._stream(payload, body)
                else:
                    self._send(200, json.dumps(payload).encode())

            def _stream(self, payload: dict[str, Any], body: dict[str, Any]) -> None:
                choice = payload["choices"][0]
                message = choice["message"]
                delta: dict[str, Any] = {"role": "assistant"}
                if message.get("content"):
                    delta["content"] = message["content"]
                if message.get("tool_calls"):
                    delta["tool_calls"] = [
                        {**c, "index": i} for i, c in enumerate(message["tool_calls"])
                    ]
                base = {k: payload[k] for k in ("id", "created", "model")}
                base["object"] = "chat.completion.chunk"
                chunks = [
                    {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                    {
                        **base,
                        "choices": [
                            {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
                        ],
                    },
                ]
                options = body.get("stream_options") or {}
                if isinstance(options, dict) and options.get("include_usage"):
                    chunks.append({**base, "choices": [], "usage": payload["usage"]})
                data = (
                    b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
                    + b"data: [DONE]\n\n"
                )
                try:
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(
                self, status: int, data: bytes, headers: dict[str, str] | None = None
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout fired); nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
