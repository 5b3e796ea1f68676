"""A loopback LangSmith ingest endpoint that keeps runs and feedback as an export holds them.

The SDK is told (through ``/info``) to send plain JSON batches (``POST /runs/batch``
with ``post`` and ``patch`` lists) rather than compressed multipart bodies; the fields
of each run are the same either way. A run's update is merged over its creation, as
LangSmith stores it, and :meth:`LangSmithSink.write` writes the runs and the feedback
to two JSONL files, the shape ``convsim import langsmith`` reads.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from convsim.testing import LoopbackServer

_INFO = {
    "version": "0.12.0",
    "batch_ingest_config": {
        "use_multipart_endpoint": False,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
    },
    "instance_flags": {"zstd_compression_enabled": False},
}


class LangSmithSink(LoopbackServer):
    """``LANGSMITH_ENDPOINT`` for a test: every run and feedback the SDK sends."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.feedback: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        """The endpoint to give the SDK."""
        return self.origin

    def _apply(self, op: str, run: dict[str, Any]) -> None:
        with self._lock:
            current = self.runs.setdefault(str(run["id"]), {})
            for key, value in run.items():
                # An update overwrites what it sets; nulls only fill keys not yet known.
                if op == "post" or value is not None or key not in current:
                    current[key] = value

    def write(self, folder: Path) -> tuple[Path, Path]:
        """The runs (in dotted order) and the feedback, as two export files."""
        runs = folder / "runs.jsonl"
        feedback = folder / "feedback.jsonl"
        ordered = sorted(self.runs.values(), key=lambda r: str(r.get("dotted_order") or ""))
        runs.write_text("".join(json.dumps(r) + "\n" for r in ordered))
        feedback.write_text("".join(json.dumps(f) + "\n" for f in self.feedback))
        return runs, feedback

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> Any:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _send(self, status: int, value: Any) -> None:
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, _INFO if self.path.split("?")[0].rstrip("/") == "/info" else {})

            def do_POST(self) -> None:
                path = self.path.split("?")[0].rstrip("/")
                body = self._body()
                if path.endswith("/runs/batch") and isinstance(body, dict):
                    for op in ("post", "patch"):
                        for run in body.get(op) or []:
                            sink._apply(op, run)
                elif path.endswith("/runs") and isinstance(body, dict):
                    sink._apply("post", body)
                elif path.endswith("/feedback") and isinstance(body, dict):
                    with sink._lock:
                        sink.feedback.append(body)
                    self._send(200, body)
                    return
                self._send(200, {})

            def do_PATCH(self) -> None:
                body = self._body()
                if isinstance(body, dict):
                    sink._apply("patch", {**body, "id": self.path.rstrip("/").rsplit("/", 1)[-1]})
                self._send(200, {})

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
