"""Throughput and peak memory of streaming canonical JSONL through the validating reader.

Run from the repository root::

    .venv/bin/python bench/bench_jsonl.py

It writes two canonical JSONL files of realistic 10-turn conversations with tool calls,
the second ten times the size of the first, then reads each one several times, every
read in a fresh subprocess pinned to one CPU, so each peak RSS belongs to one read of
one file. Reading goes through ``convsim.datasets.read_conversations`` and drops every
conversation as soon as it has been counted, as a streaming consumer would.

Targets: at least 50,000 messages/s on one core, and peak RSS that stays flat while the
file grows tenfold.
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TARGET_MESSAGES_PER_S = 50_000
MB = 1_000_000

_WORDS = (
    "the a your order flight booking refund account please could you I we it is was "
    "for to of and with on at by from reservation seat change cancel baggage policy "
    "payment card delivery address tomorrow today week help thanks sorry unfortunately "
    "certainly confirmed available number status update premium economy upgrade fee "
    "München São Paulo 東京 café naïve"
).split()

_TOOLS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "get_order": lambda r: {"order_id": f"#W{r.randrange(10**7):07d}"},
    "search_flights": lambda r: {
        "origin": r.choice(["SFO", "JFK", "LHR", "NRT", "GRU"]),
        "destination": r.choice(["ORD", "CDG", "MUC", "SYD"]),
        "date": f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
        "cabin": r.choice(["economy", "business"]),
        "passengers": r.randint(1, 4),
    },
    "update_address": lambda r: {
        "user_id": f"user_{r.randrange(10**5)}",
        "address": {"line1": f"{r.randint(1, 999)} Main St", "city": "Springfield", "zip": "01101"},
    },
    "refund": lambda r: {"order_id": f"#W{r.randrange(10**7):07d}", "amount": r.randint(5, 900)},
}


def _sentence(r: random.Random, low: int, high: int) -> str:
    return " ".join(r.choices(_WORDS, k=r.randint(low, high))).capitalize() + "."


def _tool_output(r: random.Random) -> str:
    payload: dict[str, Any] = {
        "status": r.choice(["ok", "pending", "delivered"]),
        "items": [
            {
                "id": r.randrange(10**6),
                "name": _sentence(r, 2, 5),
                "price": r.randint(100, 99999) / 100,
            }
            for _ in range(r.randint(1, 6))
        ],
        "note": _sentence(r, 5, 25),
    }
    return json.dumps(payload, ensure_ascii=False)


def make_conversation(n: int, r: random.Random) -> dict[str, Any]:
    """One realistic conversation as canonical JSON: 10 turns, some with tool calls."""
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=r.randrange(10**7))
    clock = [start]

    def stamp() -> str:
        clock[0] += timedelta(seconds=r.uniform(0.5, 30))
        return clock[0].isoformat().replace("+00:00", "Z")

    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _sentence(r, 60, 120), "timestamp": stamp()}
    ]
    call_no = 0
    for _ in range(10):
        messages.append({"role": "user", "content": _sentence(r, 8, 50), "timestamp": stamp()})
        if r.random() < 0.3:
            calls = []
            for _ in range(1 if r.random() < 0.8 else 2):
                call_no += 1
                name = r.choice(list(_TOOLS))
                calls.append({"id": f"call_{call_no}", "name": name, "arguments": _TOOLS[name](r)})
            messages.append(
                {
                    "role": "assistant",
                    "tool_calls": calls,
                    "model": "gpt-4o-2024-08-06",
                    "finish_reason": "tool_calls",
                    "usage": {
                        "input_tokens": r.randint(500, 4000),
                        "output_tokens": r.randint(10, 80),
                        "cost_usd": 0.003,
                    },
                    "latency_ms": r.uniform(300, 3000),
                    "timestamp": stamp(),
                }
            )
            messages.extend(
                {
                    "role": "tool",
                    "tool_call_id": c["id"],
                    "content": _tool_output(r),
                    "timestamp": stamp(),
                }
                for c in calls
            )
        messages.append(
            {
                "role": "assistant",
                "content": _sentence(r, 20, 120),
                "model": "gpt-4o-2024-08-06",
                "finish_reason": "stop",
                "usage": {
                    "input_tokens": r.randint(500, 5000),
                    "output_tokens": r.randint(30, 300),
                    "cost_usd": 0.004,
                },
                "latency_ms": r.uniform(300, 5000),
                "timestamp": stamp(),
            }
        )
    return {
        "id": f"conv-{n:08d}",
        "messages": messages,
        "tags": {"vertical": r.choice(["retail", "airline"]), "language": "en"},
        "metadata": {"task_id": r.randrange(500), "user_id": f"user_{r.randrange(10**5)}"},
        "signals": {"thumbs": r.choice(["up", "down"])},
        "provenance": {"source_format": "simulated"},
    }


def generate(path: Path, target_bytes: int, seed: int) -> tuple[int, int]:
    """Write canonical JSONL of at least ``target_bytes``; return (conversations, messages)."""
    from convsim.datasets import ConversationAdapter, dump_line

    r = random.Random(seed)
    size = conversations = messages = 0
    with path.open("wb") as f:
        while size < target_bytes:
            conversation = ConversationAdapter.validate_python(make_conversation(conversations, r))
            data = dump_line(conversation).encode() + b"\n"
            f.write(data)
            size += len(data)
            conversations += 1
            messages += len(conversation.messages)
    return conversations, messages


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def child(path: Path) -> None:
    """Read ``path`` once, counting and then dropping each conversation; print JSON stats."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from convsim.datasets import read_conversations

    baseline = _peak_rss_bytes()
    reader = read_conversations(path)
    conversations = messages = 0
    wall = time.perf_counter()
    cpu = time.process_time()
    for conversation in reader:
        conversations += 1
        messages += len(conversation.messages)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    report = reader.report
    stats = {
        "seconds": wall,
        "cpu_seconds": cpu,
        "conversations": conversations,
        "messages": messages,
        "read": report.read,
        "kept": report.kept,
        "rejected": report.rejected,
        "baseline_rss": baseline,
        "peak_rss": _peak_rss_bytes(),
    }
    print(json.dumps(stats))


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    conversations: int
    messages: int
    rejected: int
    baseline_rss: int
    peak_rss: int


def measure(path: Path) -> Run:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    s = json.loads(out)
    return Run(
        s["seconds"],
        s["cpu_seconds"],
        s["conversations"],
        s["messages"],
        s["rejected"],
        s["baseline_rss"],
        s["peak_rss"],
    )


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def profile(path: Path, top: int) -> None:
    """Profile one read of ``path`` and print where the time goes."""
    from convsim.datasets import read_conversations

    profiler = cProfile.Profile()
    profiler.enable()
    count = sum(len(c.messages) for c in read_conversations(path))
    profiler.disable()
    print(f"\ncProfile of one read of {path.name} ({count:,} messages), by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,200", help="file sizes in MB, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--profile", action="store_true", help="also cProfile the smallest file")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="convsim-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    files: list[tuple[int, Path]] = []
    try:
        for mb in sizes:
            path = workdir / f"conversations-{mb}mb.jsonl"
            files.append((mb, path))
            if not path.exists():
                started = time.perf_counter()
                conversations, messages = generate(path, mb * MB, seed=mb)
                print(
                    f"wrote {path} ({path.stat().st_size / MB:.1f} MB, {conversations:,} "
                    f"conversations, {messages:,} messages) in "
                    f"{time.perf_counter() - started:.1f}s",
                    flush=True,
                )

        print(f"\nPython {sys.version.split()[0]}, {args.repeats} reads per file, one CPU each\n")
        header = (
            f"{'file MB':>8} {'convs':>8} {'messages':>10} {'seconds':>20} "
            f"{'messages/s':>26} {'peak RSS MB':>22}"
        )
        print(header)
        print("-" * len(header))
        summary: list[tuple[int, float, float]] = []
        baselines: list[float] = []
        for _mb, path in files:
            runs = [measure(path) for _ in range(args.repeats)]
            baselines.extend(r.baseline_rss / 2**20 for r in runs)
            first = runs[0]
            assert all(r.rejected == 0 for r in runs), "generated files must be valid"
            rates = [r.messages / r.seconds for r in runs]
            rss = [r.peak_rss / 2**20 for r in runs]
            print(
                f"{path.stat().st_size / MB:>8.1f} {first.conversations:>8,} {first.messages:>10,} "
                f"{_spread([r.seconds for r in runs], '.2f'):>20} "
                f"{_spread(rates, ',.0f'):>26} {_spread(rss, '.1f'):>22}",
                flush=True,
            )
            summary.append((first.messages, statistics.median(rates), statistics.median(rss)))
        print(f"\nRSS after imports, before reading: {statistics.median(baselines):.1f} MB")
        rate = min(s[1] for s in summary)
        verdict = "meets" if rate >= TARGET_MESSAGES_PER_S else "MISSES"
        print(
            f"throughput: {rate:,.0f} messages/s (slowest file, median) "
            f"{verdict} the {TARGET_MESSAGES_PER_S:,}/s target"
        )
        if len(summary) > 1:
            growth = summary[-1][2] - summary[0][2]
            ratio = summary[-1][0] / summary[0][0]
            print(
                f"peak RSS: {summary[0][2]:.1f} MB -> {summary[-1][2]:.1f} MB "
                f"({growth:+.1f} MB) while messages grew {ratio:.1f}x"
            )
        if args.profile:
            profile(files[0][1], top=25)
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.dir is None:
            print(f"files kept in {workdir}")


if __name__ == "__main__":
    main()
