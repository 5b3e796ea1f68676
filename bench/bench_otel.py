"""Throughput and peak memory of importing OTLP JSON traces (``convsim import otel``).

Run from the repository root::

    .venv/bin/python bench/bench_otel.py                 # 100 MB and 1 GB, about 4 minutes
    .venv/bin/python bench/bench_otel.py --sizes 20,200  # quicker

It writes OTLP JSON exports in the streaming form (one ``ExportTraceServiceRequest`` per
JSONL line, as the collector's file exporter writes them) of realistic agent sessions:
each session has several turns, each turn is one trace with an ``invoke_agent`` root, a
chat span asking for two parallel tool calls, two ``execute_tool`` spans (one failing)
and a chat span answering; every chat span re-sends the whole history as a JSON string,
as instrumentations do. Sessions are interleaved (many users at once), so conversations
stay open across many lines. Each size is ten times the previous one.

Every import runs in a fresh subprocess pinned to one CPU, so each peak RSS belongs to
one import of one file; the time is the importer's wall time inside that process
(``read_otel`` consumed to the end, conversations dropped as they come, as a streaming
consumer would). With ``--single`` the smallest file is also written as one JSON
document, which stdlib ``json`` can only parse whole, to show what that costs.

With ``--logs`` each export is split as OpenTelemetry's own OpenAI instrumentation
writes it in content mode: spans without messages, and a second file of OTLP log
records (one ``gen_ai.*.message`` event per input message, one ``gen_ai.choice`` per
answer) naming their span; both files are imported together, and the sizes and rates
count both.

Targets: at least 20 MB/s on one core, and peak RSS flat while the file grows tenfold.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MB_PER_S = 20.0
MB = 1_000_000
CONCURRENT_SESSIONS = 64
"""Sessions in flight at once; lines of different sessions interleave."""

_WORDS = (
    "the a your trip hotel flight booking refund please could you I we it is for to of "
    "and with on at from reservation seat change cancel weather forecast sunny rain "
    "wind tomorrow weekend thanks sorry certainly confirmed available room breakfast "
    "Lisboa Porto München São Paulo 東京 café"
).split()


def _sentence(r: random.Random, low: int, high: int) -> str:
    return " ".join(r.choice(_WORDS) for _ in range(r.randint(low, high))).capitalize() + "."


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


class _Session:
    """One simulated user session, producing one trace (one JSONL line) per turn."""

    def __init__(self, n: int, r: random.Random, start_ns: int) -> None:
        self.r = r
        self.id = f"conv-{n:08d}"
        self.turns_left = r.randint(3, 8)
        self.history: list[dict[str, Any]] = []
        self.system = "You are a travel assistant. " + _sentence(r, 20, 40)
        self.clock = start_ns
        self.span = 0
        self.calls = 0

    def _span(self, trace: str, parent: str | None, name: str, attrs: list[Any], ms: int) -> Any:
        self.span += 1
        start = self.clock
        self.clock += ms * 1_000_000
        span: dict[str, Any] = {
            "traceId": trace,
            "spanId": f"{hash((self.id, self.span)) & (2**64 - 1):016x}",
            "name": name,
            "kind": 3 if name.startswith("chat") else 1,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(self.clock),
            "attributes": attrs,
        }
        if parent:
            span["parentSpanId"] = parent
        return span

    def _chat(self, trace: str, root: str, output: dict[str, Any]) -> Any:
        r = self.r
        attrs = [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.provider.name", "openai"),
            _attr("gen_ai.request.model", "gpt-4.1"),
            _attr("gen_ai.response.model", "gpt-4.1-2025-04-14"),
            _attr("gen_ai.conversation.id", self.id),
            _attr("gen_ai.usage.input_tokens", r.randint(200, 4000)),
            _attr("gen_ai.usage.output_tokens", r.randint(5, 300)),
            _attr(
                "gen_ai.system_instructions", json.dumps([{"type": "text", "content": self.system}])
            ),
            _attr("gen_ai.input.messages", json.dumps(self.history, ensure_ascii=False)),
            _attr("gen_ai.output.messages", json.dumps([output], ensure_ascii=False)),
        ]
        out = {k: v for k, v in output.items() if k != "finish_reason"}
        self.history.append(out)
        return self._span(trace, root, "chat gpt-4.1", attrs, r.randint(300, 3000))

    def turn(self) -> dict[str, Any]:
        r = self.r
        trace = f"{r.getrandbits(128):032x}"
        spans: list[Any] = []
        root = self._span(trace, None, "invoke_agent travel", [
            _attr("gen_ai.operation.name", "invoke_agent"),
            _attr("gen_ai.conversation.id", self.id),
        ], 0)  # fmt: skip
        root_id = root["spanId"]
        self.history.append(_text("user", _sentence(r, 6, 30)))
        ids = [f"call_{self.id}_{self.calls + k}" for k in (1, 2)]
        self.calls += 2
        calls = [
            {
                "type": "tool_call",
                "id": c,
                "name": "get_weather",
                "arguments": {"city": r.choice(_WORDS), "days": r.randint(1, 5)},
            }  # fmt: skip
            for c in ids
        ]
        asking = {"role": "assistant", "parts": calls, "finish_reason": "tool_calls"}
        spans.append(self._chat(trace, root_id, asking))
        results = []
        for k, c in enumerate(ids):
            failed = k == 1 and r.random() < 0.3
            result = "error: weather service timed out" if failed else _sentence(r, 8, 40)
            tool = self._span(trace, root_id, "execute_tool get_weather", [
                _attr("gen_ai.operation.name", "execute_tool"),
                _attr("gen_ai.tool.name", "get_weather"),
                _attr("gen_ai.tool.call.id", c),
                _attr("gen_ai.tool.call.result", result),
            ], r.randint(20, 900))  # fmt: skip
            if failed:
                tool["status"] = {"code": 2, "message": result}
            spans.append(tool)
            results.append({"type": "tool_call_response", "id": c, "response": result})
        self.history.append({"role": "tool", "parts": results})
        answer = _text("assistant", _sentence(r, 15, 80))
        spans.append(self._chat(trace, root_id, dict(answer, finish_reason="stop")))
        root["endTimeUnixNano"] = str(self.clock)
        spans.insert(0, root)
        self.turns_left -= 1
        return {
            "resourceSpans": [
                {
                    "resource": {"attributes": [_attr("service.name", "travel-agent")]},
                    "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
                }
            ]
        }


def generate(path: Path, target_bytes: int, seed: int) -> tuple[int, int]:
    """Write an OTLP JSONL export of about ``target_bytes``; returns (sessions, lines)."""
    r = random.Random(seed)
    clock = 1_772_870_400_000_000_000
    active: list[_Session] = []
    sessions = lines = written = 0
    with path.open("w", encoding="utf-8") as f:
        while written < target_bytes or active:
            while written < target_bytes and len(active) < CONCURRENT_SESSIONS:
                active.append(_Session(sessions, r, clock))
                sessions += 1
            session = r.choice(active)
            line = json.dumps(session.turn(), ensure_ascii=False, separators=(",", ":")) + "\n"
            f.write(line)
            written += len(line.encode())
            lines += 1
            if session.turns_left == 0:
                active.remove(session)
            clock += 1_000_000_000
    return sessions, lines


def _kv(value: Any) -> dict[str, Any]:
    """A plain value as an OTLP AnyValue."""
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _kv(v)} for k, v in value.items()]}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_kv(v) for v in value]}}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"intValue": str(value)}
    return {"stringValue": str(value)}


def _event_bodies(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A GenAI-convention message as an openai-v2 content-mode event (name, body)."""
    parts = message.get("parts", [])
    text = " ".join(p["content"] for p in parts if p.get("type") == "text")
    calls = [
        {
            "id": p["id"],
            "type": "function",
            "function": {"name": p["name"], "arguments": json.dumps(p["arguments"])},
        }
        for p in parts
        if p.get("type") == "tool_call"
    ]
    role = message["role"]
    if role == "tool":
        (result,) = parts[:1]
        return "gen_ai.tool.message", {"id": result["id"], "content": result["response"]}
    body: dict[str, Any] = {"content": text} if text else {}
    if calls:
        body["tool_calls"] = calls
    return f"gen_ai.{role}.message", body


def split_logs(line: str) -> tuple[str, str]:
    """One trace line as the openai-v2 instrumentation writes it: (spans, log records)."""
    request = json.loads(line)
    records: list[dict[str, Any]] = []
    for rs in request["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                attrs = {a["key"]: a for a in span["attributes"]}
                if "gen_ai.input.messages" not in attrs:
                    continue
                history = json.loads(attrs.pop("gen_ai.input.messages")["value"]["stringValue"])
                (output,) = json.loads(attrs.pop("gen_ai.output.messages")["value"]["stringValue"])
                system = json.loads(attrs.pop("gen_ai.system_instructions")["value"]["stringValue"])
                span["attributes"] = list(attrs.values())
                events = [("gen_ai.system.message", {"content": system[0]["content"]})]
                for message in history:
                    if message["role"] == "tool":
                        events.extend(
                            _event_bodies({"role": "tool", "parts": [part]})
                            for part in message["parts"]
                        )
                    else:
                        events.append(_event_bodies(message))
                name, body = _event_bodies(output)
                events.append(
                    (
                        "gen_ai.choice",
                        {
                            "index": 0,
                            "finish_reason": output["finish_reason"],
                            "message": {"role": "assistant", **body},
                        },
                    )
                )
                records.extend(
                    {
                        "eventName": event,
                        "traceId": span["traceId"],
                        "spanId": span["spanId"],
                        "observedTimeUnixNano": span["endTimeUnixNano"],
                        "attributes": [_attr("gen_ai.system", "openai")],
                        "body": _kv(body),
                    }
                    for event, body in events
                )
    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [_attr("service.name", "travel-agent")]},
                "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": records}],
            }
        ]
    }
    dump = json.dumps
    return (
        dump(request, ensure_ascii=False, separators=(",", ":")),
        dump(logs, ensure_ascii=False, separators=(",", ":")),
    )


def generate_split(traces: Path, logs: Path, target_bytes: int, seed: int) -> tuple[int, int]:
    """Traces and log records of about ``target_bytes`` together; (sessions, lines)."""
    combined = traces.with_suffix(".combined")
    sessions, lines = generate(combined, target_bytes, seed)
    with (
        combined.open(encoding="utf-8") as src,
        traces.open("w", encoding="utf-8") as t,
        logs.open("w", encoding="utf-8") as lg,
    ):
        for line in src:
            spans, records = split_logs(line)
            t.write(spans + "\n")
            lg.write(records + "\n")
    combined.unlink()
    return sessions, lines


def _peak_rss_bytes() -> int:
    # VmHWM belongs to this address space (reset by exec); ru_maxrss on Linux also
    # counts the parent's memory at fork time, which would blur the comparison.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def child(paths: list[Path]) -> None:
    """Import the files once and print the measurements as JSON (runs in a subprocess)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from convsim.datasets import ReadReport
    from convsim.formats.otel import read_otel_files

    report = ReadReport(file=str(paths[0]))
    baseline = _peak_rss_bytes()
    cpu_started = time.process_time()
    started = time.perf_counter()
    conversations = messages = 0
    for conv in read_otel_files(paths, report=report):
        conversations += 1
        messages += len(conv.messages)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_started,
        "conversations": conversations,
        "messages": messages,
        "rejected": report.rejected,
        "rss": _peak_rss_bytes(),
        "baseline_rss": baseline,
    }
    print(json.dumps(result))


def measure(paths: list[Path]) -> dict[str, Any]:
    """Run one import of the files in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def profile(path: Path, top: int = 25) -> None:
    """Print the hottest functions of one import."""
    from convsim.datasets import ReadReport
    from convsim.formats import read_otel

    prof = cProfile.Profile()
    prof.enable()
    for _ in read_otel(path, report=ReadReport(file=str(path))):
        pass
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def main() -> None:
    """Generate the files, import each in a subprocess, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="file sizes in MB, comma-separated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--single", action="store_true", help="also time one whole-file JSON document"
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile the smallest file")
    parser.add_argument(
        "--logs", action="store_true", help="messages as OTLP log records in a second file"
    )
    parser.add_argument("--child", type=Path, nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="convsim-bench-otel-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, int, dict[str, Any]]] = []
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        files: list[tuple[str, list[Path]]] = []
        for size in sizes:
            path = workdir / f"otel-{size}MB.jsonl"
            t = time.perf_counter()
            if args.logs:
                logs = workdir / f"otel-{size}MB.logs.jsonl"
                sessions, lines = generate_split(path, logs, size * MB, seed=size)
                group = [path, logs]
            else:
                sessions, lines = generate(path, size * MB, seed=size)
                group = [path]
            print(
                f"generated {', '.join(p.name for p in group)}: "
                f"{sum(p.stat().st_size for p in group) / MB:.0f} MB, {sessions:,} sessions, "
                f"{lines:,} traces in {time.perf_counter() - t:.0f} s",
                file=sys.stderr,
            )
            files.append(("traces + logs" if args.logs else "JSONL", group))
        if args.single and not args.logs:
            small = files[0][1][0]
            whole = workdir / f"{small.stem}-single.json"
            with small.open(encoding="utf-8") as src, whole.open("w", encoding="utf-8") as out:
                out.write('{"resourceSpans":[')
                for n, line in enumerate(src):
                    body = json.dumps(json.loads(line)["resourceSpans"], ensure_ascii=False)
                    out.write(("," if n else "") + body[1:-1])
                out.write("]}")
            files.append(("one document", [whole]))
        rows.extend(
            (kind, sum(p.stat().st_size for p in group), measure(group))
            for kind, group in files
            for _ in range(args.repeats)
        )
        if args.profile:
            profile(files[0][1][0])
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        "| input | size MB | conversations | messages | wall s | CPU s | MB/s wall | "
        "MB/s per CPU s | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, size, r in rows:
        print(
            f"| {kind} | {size / MB:,.0f} | {r['conversations']:,} | {r['messages']:,} | "
            f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {size / MB / r['seconds']:.1f} | "
            f"{size / MB / r['cpu_seconds']:.1f} | {r['rss'] / MB:,.0f} |"
        )
    print(f"\nload average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    jsonl = [(s, r) for k, s, r in rows if k in ("JSONL", "traces + logs")]
    slowest = min(s / MB / r["cpu_seconds"] for s, r in jsonl)
    verdict = "meets" if slowest >= TARGET_MB_PER_S else "MISSES"
    print(
        f"slowest JSONL import {slowest:.1f} MB per CPU second: {verdict} the "
        f"{TARGET_MB_PER_S:.0f} MB/s one-core target"
    )
    if len(jsonl) > 1:
        (s0, r0), (s1, r1) = jsonl[0], jsonl[-1]
        print(
            f"file grew {s1 / s0:.1f}x, peak RSS {r0['rss'] / MB:.0f} MB -> "
            f"{r1['rss'] / MB:.0f} MB ({r1['rss'] / r0['rss']:.2f}x)"
        )


if __name__ == "__main__":
    main()
