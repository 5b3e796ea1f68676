"""Runner efficiency: N conversations x 6 user turns, every model call sleeping 50 ms.

Usage:
    python bench/bench_simulate.py                 # 1,000 and 10,000 conversations + litellm
    python bench/bench_simulate.py --sizes 1000    # just one size
    python bench/bench_simulate.py --child N       # (internal) one measurement, JSON out

Each size runs in a fresh subprocess so its peak RSS is its own. The user and the agent
each sleep 50 ms per call (a stand-in for model latency), at concurrency 32, through the
real runner: session loop, per-conversation seeds, the single SQLite writer and resume
bookkeeping included. The ideal wall time for 1,000 conversations is 19.2 s (32 waves of
12 calls x 50 ms), as defined in the issue; a perfectly packed schedule would take
1000 x 0.6 / 32 = 18.75 s.

The replay rows re-drive N recorded 6-turn conversations (a tool call, its result and a
reply per turn) through ``convsim.replay``: every tool call is matched against the
recording, and each result carries its divergence report. ``replay`` sleeps on both of
the candidate's completions per turn (asking for the tool, then answering), 12 model
calls per conversation as in the simulation rows, so the two shares of the ideal compare
like for like. ``replay-1s`` sleeps on one of the two: half the model calls for the same
bookkeeping, a stress test of the per-call overhead.

A second part measures the cost of convsim's model layer: sequential calls to a loopback
OpenAI-compatible server through raw ``litellm.acompletion`` and through convsim's
``LiteLLMClient`` (retries, limits, conversion) and ``HttpAgent`` (httpx).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TURNS = 6
_LINES = [
    "I want to change my flight to a later one on the same day.",
    "My booking reference should be in my profile.",
    "Economy is fine, I do not need anything fancy.",
    "Please use the card I used last time to pay.",
    "Yes, that option works for me, go ahead.",
    "Great, thank you for sorting that out so quickly.",
]
SLEEP = 0.05
CONCURRENCY = 32


def child(n: int) -> dict[str, Any]:
    import anyio

    from convsim.agents import FunctionAgent
    from convsim.runner import RunConfig
    from convsim.simulate import simulate
    from convsim.store import SQLiteStore
    from convsim.trace import Conversation
    from convsim.users import Persona, UserTurn

    class SleepyUser:
        async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
            await anyio.sleep(SLEEP)
            turn = len(conversation.messages) // 2
            return UserTurn(
                text=f"Here is what I need for step {turn}: {_LINES[turn % len(_LINES)]}"
            )

    async def agent(conversation: Conversation) -> str:
        await anyio.sleep(SLEEP)
        return "agent reply"

    personas = [Persona(name=f"p{i}", goal="bench") for i in range(n)]
    tmp = Path(tempfile.mkdtemp())
    store = SQLiteStore(tmp / "bench.db")
    config = RunConfig(
        run_id="bench",
        agent="bench",
        user="bench",
        trials=1,
        concurrency=CONCURRENCY,
        max_turns=TURNS,
        progress=False,
    )
    user = SleepyUser()
    # Peak RSS once the inputs (personas or recordings) exist, before the run starts: the
    # run's own memory is what grows beyond this.
    before = resource.getrusage(resource.RUSAGE_SELF)
    setup_rss = before.ru_maxrss / 1024
    started = time.perf_counter()
    summary = anyio.run(
        lambda: simulate(
            config, personas, FunctionAgent(agent), store=store, user_factory=lambda p: user
        )
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    calls = n * TURNS * 2
    assert summary.terminations == {"max_turns": n}, summary.terminations
    assert store.count("results") == n
    return {
        "conversations": n,
        "model_calls": calls,
        "wall_s": wall,
        "ideal_s": -(-n // CONCURRENCY) * TURNS * 2 * SLEEP,
        "cpu_s": cpu,
        "cpu_ms_per_call": cpu / calls * 1000,
        "peak_rss_mb": after.ru_maxrss / 1024,
        "setup_rss_mb": setup_rss,
    }


def child_replay(n: int, sleeps: int = 2) -> dict[str, Any]:
    """Replay n recorded 6-turn conversations (a tool call and a reply per turn).

    ``sleeps`` is how many of the candidate's two completions per turn sleep: 2 is a real
    agent (one completion asks for the tool, a second one answers after its result),
    the same number of model calls per conversation as the simulation rows; 1 is a
    stress variant with twice the bookkeeping per model call.
    """
    import anyio

    from convsim.agents import AgentContext, FunctionAgent
    from convsim.replay import ReplayOptions, replay
    from convsim.runner import RunConfig
    from convsim.store import SQLiteStore
    from convsim.trace import AssistantMessage, Conversation, ToolCall, ToolMessage, UserMessage

    recordings = []
    for i in range(n):
        msgs: list[Any] = []
        for t in range(TURNS):
            msgs.append(UserMessage(content=f"{_LINES[t]} (case {i})"))
            call = ToolCall(id=f"c{t}", name="lookup", arguments={"case": i, "turn": t})
            msgs.append(AssistantMessage(tool_calls=[call]))
            msgs.append(ToolMessage(tool_call_id=f"c{t}", content=f"record {i}/{t}"))
            msgs.append(AssistantMessage(content=f"Here is what I found for step {t}."))
        recordings.append(Conversation(id=f"rec{i:05d}", messages=msgs))
    scripts = {c.id: [m for m in c.messages if isinstance(m, AssistantMessage)] for c in recordings}

    async def candidate(conversation: Conversation, context: AgentContext) -> AssistantMessage:
        said = sum(1 for m in conversation.messages if isinstance(m, AssistantMessage))
        if sleeps == 2 or said % 2 == 0:
            await anyio.sleep(SLEEP)
        return scripts[context.case_id][said].model_copy()

    tmp = Path(tempfile.mkdtemp())
    store = SQLiteStore(tmp / "bench.db")
    config = RunConfig(
        run_id="bench", kind="replay", agent="bench", concurrency=CONCURRENCY, progress=False
    )
    # Peak RSS once the inputs (personas or recordings) exist, before the run starts: the
    # run's own memory is what grows beyond this.
    before = resource.getrusage(resource.RUSAGE_SELF)
    setup_rss = before.ru_maxrss / 1024
    started = time.perf_counter()
    summary = anyio.run(
        lambda: replay(
            config, recordings, FunctionAgent(candidate), store=store, options=ReplayOptions()
        )
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert summary.terminations == {"user_stop": n}, summary.terminations
    calls = n * TURNS * sleeps
    return {
        "conversations": n,
        "model_calls": calls,
        "wall_s": wall,
        "ideal_s": -(-n // CONCURRENCY) * TURNS * sleeps * SLEEP,
        "cpu_s": cpu,
        "cpu_ms_per_call": cpu / calls * 1000,
        "peak_rss_mb": after.ru_maxrss / 1024,
        "setup_rss_mb": setup_rss,
    }


def run_child(n: int, mode: str = "--child", *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, mode, str(n), *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def model_layer(calls: int) -> dict[str, float]:
    import os

    import anyio

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # noqa: TID251 - the benchmark compares against raw litellm on purpose

    from convsim._llm import LiteLLMClient, ModelRequest
    from convsim.agents import AgentContext, HttpAgent
    from convsim.testing import FakeOpenAIServer
    from convsim.trace import Conversation, UserMessage

    litellm.suppress_debug_info = True
    messages = [{"role": "user", "content": "hello"}]
    results: dict[str, float] = {}
    with FakeOpenAIServer() as server:

        async def raw() -> None:
            await litellm.acompletion(
                model="openai/fake",
                messages=messages,
                api_base=server.url,
                api_key="x",
                num_retries=0,
            )

        client = LiteLLMClient()

        async def ours() -> None:
            await client.complete(
                ModelRequest(model="openai/fake", messages=messages, api_base=server.url)
            )

        agent = HttpAgent(server.url)
        conv = Conversation(id="c", messages=[UserMessage(content="hello")])

        async def http() -> None:
            await agent.respond(conv, AgentContext())

        async def measure(fn: Any) -> float:
            for _ in range(10):
                await fn()
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                await fn()
                times.append(time.perf_counter() - t)
            return statistics.median(times) * 1000

        async def main() -> None:
            results["litellm_ms"] = await measure(raw)
            results["convsim_litellm_ms"] = await measure(ours)
            results["convsim_http_ms"] = await measure(http)

        anyio.run(main)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int)
    parser.add_argument("--child-replay", type=int)
    parser.add_argument("--sleeps", type=int, choices=[1, 2], default=2, help=argparse.SUPPRESS)
    parser.add_argument("--replay-sizes", type=int, nargs="*", default=[1000])
    parser.add_argument("--skip-model-layer", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if args.child_replay:
        print(json.dumps(child_replay(args.child_replay, args.sleeps)))
        return
    print(
        f"{'run':>9} {'conversations':>13} {'wall s':>16} {'ideal s':>8} {'share of ideal':>20} "
        f"{'CPU ms/call':>18} {'peak RSS MB':>18} {'RSS before run MB':>18}"
    )
    plan: list[tuple[str, int, tuple[str, ...]]] = [
        ("simulate", n, ("--child",)) for n in args.sizes
    ]
    plan += [("replay", n, ("--child-replay",)) for n in args.replay_sizes]
    plan += [("replay-1s", n, ("--child-replay", "--sleeps", "1")) for n in args.replay_sizes]
    for label, n, (mode, *extra) in plan:
        runs = [run_child(n, mode, *extra) for _ in range(args.repeats if n <= 1000 else 1)]
        wall = [r["wall_s"] for r in runs]
        share = [r["ideal_s"] / r["wall_s"] for r in runs]
        cpu = [r["cpu_ms_per_call"] for r in runs]
        rss = [r["peak_rss_mb"] for r in runs]
        setup = [r["setup_rss_mb"] for r in runs]

        def fmt(xs: list[float], p: int) -> str:
            med = statistics.median(xs)
            return (
                f"{med:.{p}f} ({min(xs):.{p}f}-{max(xs):.{p}f})" if len(xs) > 1 else f"{med:.{p}f}"
            )

        print(
            f"{label:>9} {n:>13,} {fmt(wall, 2):>16} {runs[0]['ideal_s']:>8.1f} "
            f"{fmt(share, 3):>20} {fmt(cpu, 3):>18} {fmt(rss, 1):>18} {fmt(setup, 1):>18}"
        )
    if args.skip_model_layer:
        return
    layer = model_layer(args.calls)
    print()
    print(f"model layer, {args.calls} sequential calls to a loopback server (median per call):")
    print(f"  raw litellm.acompletion      {layer['litellm_ms']:.2f} ms")
    print(
        f"  convsim LiteLLMClient        {layer['convsim_litellm_ms']:.2f} ms "
        f"(overhead {layer['convsim_litellm_ms'] - layer['litellm_ms']:+.2f} ms)"
    )
    print(f"  convsim HttpAgent (httpx)    {layer['convsim_http_ms']:.2f} ms")


if __name__ == "__main__":
    main()
