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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Responder = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps a chat-completions request body to the reply ``message`` object."""

FAULT_KINDS = ("429", "500", "timeout", "malformed")
"""Faults the server can inject."""


def echo_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Reply ``"echo: <last user message>"``: deterministic, handy for tests."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    text = users[-1].get("content") if users else ""
    return {"role": "assistant", "content": f"echo: {text or ''}"}


class FakeOpenAIServer:
    """``POST /v1/chat/completions`` on a free loopback port, in a background thread.

    Args:
        responder: Builds the reply message from the request body.
        fault_rate: Share of requests answered with an injected fault instead.
        faults: Which faults to inject, chosen at random among these.
        seed: Seed for the fault decisions.
        hang_seconds: How long a ``timeout`` fault stalls before answering.
        latency: Seconds every successful reply waits, to mimic a model.
        retry_after: Value of the Retry-After header on injected 429s.
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
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL to give clients, ending in ``/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _decide(self, body: dict[str, Any]) -> str | None:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)
            if self.fault_rate and self._rng.random() < self.fault_rate:
                kind = self._rng.choice(self.faults)
                self.injected[kind] += 1
                return kind
        return None

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
                if server.latency:
                    time.sleep(server.latency)
                message = server.responder(body)
                finish = "tool_calls" if message.get("tool_calls") else "stop"
                payload = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                self._send(200, json.dumps(payload).encode())

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
