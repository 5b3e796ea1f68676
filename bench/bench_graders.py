"""Throughput of the default deterministic graders (guardrails and implicit signals).

Run from the repository root::

    .venv/bin/python bench/bench_graders.py

It writes N realistic 10-turn support conversations with tool calls (prices, dates,
times and booking ids that the agent quotes from tool results, now and then a total it
computed, a hallucinated amount, a frustrated or escalating user) as canonical JSONL;
``--source tau`` instead repeats the 200 bundled tau-bench airline conversations
(longer: about 26 messages each). Each run happens in a fresh subprocess pinned to one
CPU, which

* reads the whole file with ``convsim.datasets.read_conversations`` (read only),
* grades the conversations in memory with ``convsim.graders._base.grade_sync`` and
  every grader of ``default_guardrails()`` and ``default_signals()`` (grade only),
* streams the file again, grading each conversation as it is read (read + grade),
* and times each grader alone over the in-memory conversations.

Times are CPU time of the pinned process, so other load on a shared machine does not
count (wall-clock time for the whole child is printed too). The table shows the median
of the runs with the min-max range. Target: grading alone at least 2,000 ten-turn
conversations/s on one core, so the graders can run on all production traffic.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

TARGET_CONVERSATIONS_PER_S = 2_000

_AIRPORTS = ["SFO", "JFK", "LAX", "ORD", "SEA", "ATL", "BOS", "DEN", "MIA", "EWR"]
_NAMES = ["Mia Li", "Omar Davis", "Sofia Kim", "Noah Muller", "Yara Garcia", "Raj Patel"]
_FILLER = (
    "I would like to sort this out today because I am travelling for work and need the "
    "trip to line up with my meetings so please check what options there are"
).split()
_POLICY = (
    "# Airline agent policy\n\nThe current time is 2026-05-15 15:00:00 EST. You help users "
    "book, modify and cancel reservations. Before any change that updates the booking "
    "database, list the details and get explicit confirmation. Basic economy cannot be "
    "changed. Each checked bag beyond the free allowance costs $50. Travel insurance "
    "costs $30 per passenger. Refunds go to the original payment method within 5 to 7 "
    "business days. Transfer to a human agent only when the request is outside policy. "
    "Never make up prices, dates or reservation numbers; quote them from tools."
)


def _reservation_id(r: random.Random) -> str:
    chars = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    body = [r.choice(chars) for _ in range(5)] + [str(r.randint(0, 9))]
    r.shuffle(body)
    return "".join(body)


def _flight(r: random.Random, day: date) -> dict[str, Any]:
    hour = r.randint(5, 21)
    return {
        "flight_number": f"HAT{r.randint(1, 299):03d}",
        "origin": r.choice(_AIRPORTS),
        "destination": r.choice(_AIRPORTS),
        "date": day.isoformat(),
        "scheduled_departure_time_est": f"{hour:02d}:00:00",
        "scheduled_arrival_time_est": f"{min(hour + r.randint(1, 5), 23):02d}:30:00",
        "price": r.randint(60, 1900),
    }


def _clock(hour: int) -> str:
    return f"{hour % 12 or 12}:00 {'PM' if hour >= 12 else 'AM'}"


def _words(r: random.Random, low: int, high: int) -> str:
    return " ".join(r.choices(_FILLER, k=r.randint(low, high)))


def make_conversation(n: int, r: random.Random) -> dict[str, Any]:
    """One realistic 10-turn support conversation as canonical JSON."""
    start = datetime(2026, 5, 15, 15, tzinfo=UTC) + timedelta(seconds=r.randrange(10**6))
    clock = [start]

    def stamp() -> str:
        clock[0] += timedelta(seconds=r.uniform(0.5, 30))
        return clock[0].isoformat().replace("+00:00", "Z")

    def say(role: str, text: str, **extra: Any) -> dict[str, Any]:
        return {"role": role, "content": text, "timestamp": stamp(), **extra}

    user_id = f"{r.choice(_NAMES).lower().replace(' ', '_')}_{r.randint(1000, 9999)}"
    reservation = _reservation_id(r)
    day = date(2026, 5, r.randint(16, 28))
    flights = [_flight(r, day), _flight(r, day + timedelta(days=r.randint(1, 3)))]
    messages: list[dict[str, Any]] = [{"role": "system", "content": _POLICY}]
    calls = 0

    def tool_turn(name: str, arguments: dict[str, Any], result: Any, reply: str) -> None:
        nonlocal calls
        calls += 1
        call_id = f"call_{calls}"
        usage = {"input_tokens": r.randint(800, 4000), "output_tokens": r.randint(10, 60)}
        messages.append(
            {
                "role": "assistant",
                "tool_calls": [{"id": call_id, "name": name, "arguments": arguments}],
                "model": "gpt-4o-2024-08-06",
                "finish_reason": "tool_calls",
                "usage": usage,
                "timestamp": stamp(),
            }
        )
        messages.append(say("tool", json.dumps(result), tool_call_id=call_id))
        messages.append(say("assistant", reply, model="gpt-4o-2024-08-06", finish_reason="stop"))

    # Turn 1-2: the request and the ids.
    messages.append(
        say(
            "user",
            f"Hi, I need to change my trip from {flights[0]['origin']} on "
            f"{day.strftime('%B')} {day.day}. {_words(r, 4, 14)}.",
        )
    )
    messages.append(
        say("assistant", "I can help with that. Could you give me your user id and reservation?")
    )
    messages.append(say("user", f"Sure, my user id is {user_id} and it is {reservation}."))
    reservation_record = {
        "reservation_id": reservation,
        "user_id": user_id,
        "cabin": "economy",
        "flights": flights,
        "payment_history": [
            {"payment_id": "credit_card_4421", "amount": sum(f["price"] for f in flights)}
        ],
        "created_at": "2026-05-01T09:12:44",
    }
    f0, f1 = flights
    tool_turn(
        "get_reservation_details",
        {"reservation_id": reservation},
        reservation_record,
        f"Reservation {reservation} has two flights: {f0['flight_number']} on "
        f"{day.isoformat()} departing at {_clock(int(f0['scheduled_departure_time_est'][:2]))} "
        f"(${f0['price']}), and {f1['flight_number']} on {f1['date']} departing at "
        f"{f1['scheduled_departure_time_est'][:5]} (${f1['price']}). The total paid was "
        f"${f0['price'] + f1['price']:,}. Which flight would you like to change?",
    )
    # Turns 3-9: searching, quoting, confirming, small talk, the occasional bad turn.
    # Two of the seven middle turns search and quote fares; the rest are short answers.
    # That makes 20.0 checkable claims (amounts, dates, times, ids) per conversation, a
    # little above the 15.8 of the bundled tau-bench airline runs (whose median is 8.5).
    search_turns = set(r.sample(range(3, 10), k=2))
    for turn in range(3, 10):
        roll = r.random()
        if roll < 0.05:
            messages.append(say("user", "This is ridiculous, I already told you the date!!!"))
        elif roll < 0.08:
            messages.append(say("user", "Can I please speak to a human agent about this?"))
        elif roll < 0.11:
            messages.append(say("user", "No, I said the second flight, not the first one."))
        else:
            messages.append(say("user", f"{_words(r, 6, 24)}, and what does it cost?"))
        if turn in search_turns:
            new_day = day + timedelta(days=r.randint(1, 5))
            options = [_flight(r, new_day) for _ in range(r.randint(1, 3))]
            best = min(options, key=lambda f: f["price"])
            fare = best["price"]
            # One reply in ten states a price no tool returned.
            quoted = fare + r.randint(7, 40) if r.random() < 0.1 else fare
            tool_turn(
                "search_direct_flight",
                {
                    "origin": best["origin"],
                    "destination": best["destination"],
                    "date": str(new_day),
                },
                options,
                f"The cheapest option is {best['flight_number']} on {new_day.strftime('%B')} "
                f"{new_day.day} at {best['scheduled_departure_time_est'][:5]} for ${quoted}. "
                + (
                    f"With one extra checked bag at $50 that comes to ${quoted + 50}. "
                    if r.random() < 0.5
                    else ""
                )
                + f"{_words(r, 10, 40)}. Shall I book it?",
            )
        else:
            messages.append(
                say(
                    "assistant",
                    f"Understood. {_words(r, 15, 60)}. Refunds reach the original payment "
                    "method within 5 to 7 business days. Anything else I can check?",
                    model="gpt-4o-2024-08-06",
                    finish_reason="stop",
                )
            )
    # Turn 10: the end, sometimes left hanging.
    if r.random() < 0.9:
        messages.append(say("user", "Great, thank you for your help! ###STOP###"))
    else:
        messages.append(say("user", "Let me think about which card to use."))
    signals: dict[str, Any] = {}
    if r.random() < 0.3:
        signals["thumbs"] = r.choice(["up", "up", "down"])
    if r.random() < 0.2:
        signals["csat"] = r.randint(1, 5)
    return {
        "id": f"conv-{n:08d}",
        "messages": messages,
        "tags": {"vertical": "airline", "language": "en"},
        "metadata": {"user_id": user_id},
        "signals": signals,
        "provenance": {"source_format": "simulated"},
    }


def _tau_records() -> list[dict[str, Any]]:
    from convsim._assets import tau_airline_runs
    from convsim.datasets import ReadReport
    from convsim.formats import read_tau_bench

    conversations = read_tau_bench(tau_airline_runs(), report=ReadReport(file="tau"))
    return [c.model_dump(mode="json", exclude_none=True) for c in conversations]


def generate(path: Path, count: int, source: str, seed: int) -> int:
    """Write ``count`` canonical conversations to ``path``; return the message count."""
    from convsim.datasets import ConversationAdapter, dump_line

    r = random.Random(seed)
    tau = _tau_records() if source == "tau" else []
    messages = 0
    with path.open("w", encoding="utf-8") as f:
        for n in range(count):
            if tau:
                record = dict(tau[n % len(tau)], id=f"tau-{n:08d}")
            else:
                record = make_conversation(n, r)
            conversation = ConversationAdapter.validate_python(record)
            messages += len(conversation.messages)
            f.write(dump_line(conversation) + "\n")
    return messages


def _timed(fn: Callable[[], object]) -> float:
    # CPU time of this process: the child is pinned to one CPU, and CPU time does not
    # count the time other processes on a shared machine take that CPU away.
    started = time.process_time()
    fn()
    return time.process_time() - started


def child(path: Path) -> None:
    """One run: read, grade, read+grade and per-grader times; print JSON to stdout."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from convsim.datasets import read_conversations
    from convsim.graders._base import SyncGrader, grade_sync
    from convsim.graders.guardrails import default_guardrails
    from convsim.graders.signals import default_signals
    from convsim.trace import Conversation, ScoreFailure

    graders = [*default_guardrails(), *default_signals()]
    conversations: list[Conversation] = []
    wall_started = time.perf_counter()
    read_s = _timed(lambda: conversations.extend(read_conversations(path)))
    # Keep the collector from walking the whole in-memory dataset again and again while
    # grading: a streaming grader holds one conversation at a time, not thousands.
    gc.collect()
    gc.freeze()
    failures = 0

    def grade_all() -> None:
        nonlocal failures
        for c in conversations:
            failures += sum(isinstance(o, ScoreFailure) for o in grade_sync(c, graders))

    grade_s = _timed(grade_all)

    def read_and_grade() -> None:
        for c in read_conversations(path):
            grade_sync(c, graders)

    both_s = _timed(read_and_grade)
    wall_s = time.perf_counter() - wall_started

    def grade_with(grader: SyncGrader) -> None:
        for c in conversations:
            grader.grade_sync(c)

    per_grader = {g.name: _timed(functools.partial(grade_with, g)) for g in graders}
    print(
        json.dumps(
            {
                "conversations": len(conversations),
                "messages": sum(len(c.messages) for c in conversations),
                "read_s": read_s,
                "grade_s": grade_s,
                "read_grade_s": both_s,
                "wall_s": wall_s,
                "failures": failures,
                "per_grader_s": per_grader,
            }
        )
    )


def _run(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _build() -> str:
    # Builds of the same Python version differ by 15% or more here: a default pyenv
    # build (shared libpython, no profile-guided optimisation) runs pure-Python code
    # markedly slower than a distribution's. Name the installation so runs compare.
    return f"installed in {sys.base_prefix}"


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--conversations", type=int, default=5000)
    parser.add_argument("--source", choices=["synthetic", "tau"], default="synthetic")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="write the JSONL here and keep it")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return

    workdir = Path(tempfile.mkdtemp(prefix="convsim-bench-graders-"))
    path = args.keep or workdir / f"conversations-{args.source}.jsonl"
    try:
        started = time.perf_counter()
        messages = generate(path, args.conversations, args.source, args.seed)
        print(
            f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {args.conversations:,} "
            f"{args.source} conversations, {messages / args.conversations:.1f} messages "
            f"each) in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        runs = [_run(path) for _ in range(args.repeats)]
        assert all(run["failures"] == 0 for run in runs), "a grader failed"
        n = runs[0]["conversations"]
        walls = [run["wall_s"] for run in runs]
        print(
            f"\nPython {sys.version.split()[0]} ({_build()}), {args.repeats} runs, one CPU "
            f"each, CPU time (wall time of the timed part of each run: {_spread(walls, '.1f')} s)\n"
        )
        header = f"{'stage':<14} {'conversations/s':>28} {'µs/conversation':>26}"
        print(header)
        print("-" * len(header))
        rates: dict[str, list[float]] = {}
        for label, key in (
            ("read only", "read_s"),
            ("grade only", "grade_s"),
            ("read + grade", "read_grade_s"),
        ):
            rates[label] = [n / run[key] for run in runs]
            micros = [run[key] / n * 1e6 for run in runs]
            print(f"{label:<14} {_spread(rates[label], ',.0f'):>28} {_spread(micros, '.1f'):>26}")
        print(f"\n{'grader':<24} {'µs/conversation':>26}")
        print("-" * 51)
        for name in runs[0]["per_grader_s"]:
            micros = [run["per_grader_s"][name] / n * 1e6 for run in runs]
            print(f"{name:<24} {_spread(micros, '.1f'):>26}")
        rate = statistics.median(rates["grade only"])
        verdict = "meets" if rate >= TARGET_CONVERSATIONS_PER_S else "MISSES"
        print(
            f"\ngrading: {rate:,.0f} conversations/s (median) {verdict} the "
            f"{TARGET_CONVERSATIONS_PER_S:,}/s target"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
