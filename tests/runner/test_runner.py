import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from convsim.agents import FunctionAgent, HttpAgent
from convsim.calls import RetryPolicy
from convsim.errors import ResumeMismatch
from convsim.runner import RunConfig, plan_units, unit_seed
from convsim.simulate import make_user_factory, simulate
from convsim.store import SQLiteStore
from convsim.testing import FakeOpenAIServer
from convsim.trace import Conversation
from convsim.users import Persona

PERSONAS = [
    Persona(name=f"p{i}", goal="get help", scripted_turns=[f"hello {i}", f"question {i}", "thanks"])
    for i in range(12)
]


def config(run_id: str, **kw: Any) -> RunConfig:
    base: dict[str, Any] = {
        "agent": "test",
        "trials": 3,
        "concurrency": 8,
        "seed": 5,
        "progress": False,
    }
    return RunConfig(run_id=run_id, **(base | kw))


def test_units_and_seeds_are_stable() -> None:
    units = plan_units(["a", "b"], 2, 7)
    assert [(u.case_id, u.trial) for u in units] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert units[1].seed == unit_seed(7, "a", 1) != unit_seed(8, "a", 1)


def test_concurrency_is_not_part_of_the_config_hash() -> None:
    assert config("r", concurrency=1).config_hash() == config("r", concurrency=64).config_hash()
    assert config("r").config_hash() != config("r", max_turns=3).config_hash()


async def test_every_unit_is_stored_once_and_resume_skips_finished(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    agent = FunctionAgent(lambda c: "ok")
    users = make_user_factory("scripted")
    summary = await simulate(config("r1"), PERSONAS, agent, store=store, user_factory=users)
    assert (summary.planned, summary.completed, summary.skipped) == (36, 36, 0)
    assert summary.terminations == {"user_stop": 36}
    again = await simulate(
        config("r1"), PERSONAS, agent, store=store, user_factory=users, resume=True
    )
    assert (again.completed, again.skipped) == (0, 36)
    with pytest.raises(ResumeMismatch, match="max_turns"):
        await simulate(
            config("r1", max_turns=2), PERSONAS, agent, store=store, user_factory=users, resume=True
        )
    assert store.count("results") == 36


def _transcripts(store: SQLiteStore, run_id: str) -> dict[tuple[str, int], list[dict[str, Any]]]:
    out = {}
    for r in store.results(run_id):
        msgs = []
        for m in r.conversation.messages:
            d = m.model_dump(mode="json", exclude={"timestamp", "latency_ms"})
            msgs.append(d)
        out[(r.case_id, r.trial)] = msgs
    return out


async def test_faults_change_nothing_but_retries(tmp_path: Path) -> None:
    """20% injected 429/500/timeouts/malformed bodies: same transcripts as a clean run."""
    store = SQLiteStore(tmp_path / "s.db")
    users = make_user_factory("scripted")
    retry = RetryPolicy(max_attempts=30, base_delay=0.001, max_delay=0.02)
    with FakeOpenAIServer() as clean:
        agent = HttpAgent(clean.url, timeout=2.0, retry=retry)
        await simulate(config("clean"), PERSONAS, agent, store=store, user_factory=users)
    with FakeOpenAIServer(fault_rate=0.2, seed=11, hang_seconds=1.5) as faulty:
        agent = HttpAgent(faulty.url, timeout=0.75, retry=retry)
        summary = await simulate(config("faulty"), PERSONAS, agent, store=store, user_factory=users)
        injected = dict(faulty.injected)
    assert set(injected) == {"429", "500", "timeout", "malformed"}
    assert sum(injected.values()) >= 10
    assert summary.completed == 36 and summary.terminations == {"user_stop": 36}
    assert _transcripts(store, "faulty") == _transcripts(store, "clean")
    # Every injected fault cost a retry; a loaded machine may add a few more timeouts.
    assert agent.retries >= sum(injected.values())


async def test_exhausted_retries_are_recorded_with_their_reason(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as server:
        agent = HttpAgent(server.url, retry=RetryPolicy(max_attempts=2, base_delay=0.001))
        summary = await simulate(
            config("down", trials=1),
            PERSONAS[:3],
            agent,
            store=store,
            user_factory=make_user_factory("scripted"),
        )
    assert summary.terminations == {"infrastructure_error": 3}
    results = list(store.results("down"))
    assert len(results) == 3
    assert all(r.error is not None and "HTTP 500" in r.error.message for r in results)


AGENT_FILE = """
import anyio
async def agent(conversation):
    await anyio.sleep(0.03)
    return "ok"
"""


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    personas.mkdir()
    for i in range(10):
        (personas / f"p{i}.yaml").write_text(
            json.dumps({"name": f"p{i}", "goal": "g", "scripted_turns": ["a", "b", "c", "d"]})
        )
    (tmp_path / "agent.py").write_text(AGENT_FILE)
    db = tmp_path / "s.db"
    args = [
        sys.executable,
        "-m",
        "convsim.cli",
        "simulate",
        "--agent",
        str(tmp_path / "agent.py") + ":agent",
        "--personas",
        str(personas),
        "--out",
        str(tmp_path / "run.jsonl"),
        "--trials",
        "4",
        "--concurrency",
        "2",
        "--store",
        str(db),
        "--no-progress",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if db.exists():
            try:
                stored = sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if stored >= 8:
                break
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
    assert 8 <= before < 40
    done = subprocess.run(
        [*args, "--resume", "--json", "-"], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout)
    assert report["skipped_already_done"] == before
    assert report["completed"] == 40 - before
    rows = sqlite3.connect(db).execute("SELECT case_id, trial FROM results").fetchall()
    assert len(rows) == len(set(rows)) == 40
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert len(lines) == 40
    assert all(Conversation.model_validate(json.loads(x)["conversation"]) for x in lines)


def test_runs_record_the_git_commit(tmp_path: Path) -> None:
    from convsim.runner._run import git_sha

    sha = git_sha(str(Path(__file__).parent))
    repo_sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True
    ).stdout.strip()
    assert sha == (repo_sha or None)
    assert git_sha(str(tmp_path)) is None
