"""Drive the OpenAI SDK through one real instrumentation library and record what it writes.

    python -m tests.capture._drive LIBRARY MODE BASE_URL OUT_DIR

Run in a fresh process per capture: instrumentation patches the SDK globally and reads
its settings from the environment at start-up. The conversation is the same for every
library: a question answered with a tool call, the tool's result and the answer, a
call the server refuses with a 429, and a streamed answer. OpenTelemetry-based
libraries write ``traces.jsonl`` (and ``logs.jsonl``) as a Collector's file exporter
would; LangSmith sends its runs to the loopback ingest server named by
``LANGSMITH_ENDPOINT``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL = "gpt-4o-mini"
SYSTEM = "You are a helpful weather assistant."
QUESTION = "What's the weather in Paris?"
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]
RESULT = json.dumps({"temp_c": 21})
SESSIONS = ("sess-1", "sess-2", "sess-3")
"""One session per part: the tool turns, the refused call, the streamed answer."""


def conversation(client: Any, flush: Callable[[], None], wrap: Callable[[Any], Any]) -> None:
    """The standard conversation; ``wrap`` runs each part in the library's context."""
    import openai

    def tool_turns() -> None:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ]
        first = client.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, temperature=0.2, max_tokens=200
        )
        flush()
        call = first.choices[0].message.tool_calls[0]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": call.function.arguments,
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": RESULT})
        client.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, temperature=0.2, max_tokens=200
        )
        flush()

    def refused() -> None:
        try:
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "FAIL429 is it sunny?"}]
            )
        except openai.RateLimitError:
            pass
        flush()

    def streamed() -> None:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Is it sunny in Paris?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass
        flush()

    wrap(tool_turns)
    wrap(refused)
    wrap(streamed)


class _Otlp:
    """In-memory span and log exporters, written out as Collector JSON lines."""

    def __init__(self, out: Path, *, logs: bool) -> None:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import (
            InMemoryLogRecordExporter,
            SimpleLogRecordProcessor,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        resource = Resource.create({"service.name": "capture"})
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.logs = InMemoryLogRecordExporter() if logs else None
        self.logger_provider = LoggerProvider(resource=resource) if logs else None
        if self.logger_provider is not None and self.logs is not None:
            self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.traces_file = (out / "traces.jsonl").open("w")
        self.logs_file = (out / "logs.jsonl").open("w") if logs else None

    def flush(self) -> None:
        from tests.capture._otlp import logs_line, spans_line

        self.tracer_provider.force_flush()
        spans = self.spans.get_finished_spans()
        if spans:
            self.traces_file.write(spans_line(spans) + "\n")
        self.spans.clear()
        if self.logs is not None and self.logger_provider is not None and self.logs_file:
            self.logger_provider.force_flush()
            records = self.logs.get_finished_logs()
            if records:
                self.logs_file.write(logs_line(records) + "\n")
            self.logs.clear()

    def close(self) -> None:
        self.traces_file.close()
        if self.logs_file is not None:
            self.logs_file.close()


def _client(base_url: str) -> Any:
    import openai

    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)


def otel_v2(mode: str, base_url: str, out: Path) -> None:
    """OpenTelemetry's own instrumentation; the mode is in the environment already."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    otlp = _Otlp(out, logs=True)
    OpenAIInstrumentor().instrument(
        tracer_provider=otlp.tracer_provider, logger_provider=otlp.logger_provider
    )
    conversation(_client(base_url), otlp.flush, lambda part: part())
    otlp.close()


def traceloop(mode: str, base_url: str, out: Path) -> None:
    """Traceloop (OpenLLMetry): a workflow of tasks, each a session of the app."""
    from opentelemetry._logs import set_logger_provider

    otlp = _Otlp(out, logs=mode == "events")
    if otlp.logger_provider is not None:
        set_logger_provider(otlp.logger_provider)
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import task, workflow

    Traceloop.init(
        app_name="capture",
        api_endpoint="http://127.0.0.1:9",
        exporter=otlp.spans,
        disable_batch=True,
        telemetry_enabled=False,
        # Event mode writes messages as log records instead of span attributes.
        use_legacy_attributes=mode != "events",
    )
    client = _client(base_url)
    sessions = iter(SESSIONS)

    def in_session(part: Callable[[], None]) -> None:
        @task(name=part.__name__)
        def run() -> None:
            Traceloop.set_association_properties(
                {"session_id": next(sessions), "user_id": "user-42", "customer": "acme"}
            )
            part()

        run()

    @workflow(name="weather_batch")
    def batch() -> None:
        conversation(client, lambda: None, in_session)

    batch()
    otlp.flush()
    otlp.close()


def openinference(mode: str, base_url: str, out: Path) -> None:
    """Arize OpenInference, with its session and user context."""
    from openinference.instrumentation import using_session, using_user
    from openinference.instrumentation.openai import OpenAIInstrumentor

    otlp = _Otlp(out, logs=False)
    OpenAIInstrumentor().instrument(tracer_provider=otlp.tracer_provider)
    sessions = iter(SESSIONS)

    def in_context(part: Callable[[], None]) -> None:
        with using_session(next(sessions)), using_user("user-42"):
            part()

    conversation(_client(base_url), otlp.flush, in_context)
    otlp.close()


def langsmith(mode: str, base_url: str, out: Path) -> None:
    """LangSmith's wrap_openai inside a traceable chain, then feedback on the chain."""
    from langsmith import Client, traceable
    from langsmith.run_helpers import get_current_run_tree
    from langsmith.wrappers import wrap_openai

    client = wrap_openai(_client(base_url))
    chains: list[str] = []
    sessions = iter(SESSIONS)

    def in_chain(part: Callable[[], None]) -> None:
        @traceable(
            run_type="chain",
            name=part.__name__,
            metadata={"session_id": next(sessions), "user_id": "user-42"},
        )
        def run() -> None:
            tree = get_current_run_tree()
            if tree is not None:
                chains.append(str(tree.id))
            part()

        run()

    conversation(client, lambda: None, in_chain)
    ls = Client()
    ls.create_feedback(chains[0], key="correctness", score=1, comment="good")
    ls.flush()
    (out / "chains.json").write_text(json.dumps(chains))


LIBRARIES: dict[str, Callable[[str, str, Path], None]] = {
    "otel-openai-v2": otel_v2,
    "traceloop": traceloop,
    "openinference": openinference,
    "langsmith": langsmith,
}


def main() -> None:
    library, mode, base_url, out = sys.argv[1:5]
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    Path(out).mkdir(parents=True, exist_ok=True)
    LIBRARIES[library](mode, base_url, Path(out))


if __name__ == "__main__":
    main()
