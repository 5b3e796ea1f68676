"""Two processes and one run: the second is refused, never repeats the first's work.

Real processes (``python -m convsim.cli simulate``) against a real loopback model server,
whose requests are counted: every (persona, trial) is asked for exactly as often as a
run alone asks for it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convsim.testing import FakeOpenAIServer

ROOT = Path(__file__).parents[2]


def personas(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"p{i}.yaml").write_text(
            f"name: p{i}\ngoal: get help\nscripted_turns: [hello {i}, question {i}, thanks]\n"
        )
    return folder


def simulate(url: str, people: Path, store: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "convsim.cli",
        "simulate",
        "--agent",
        url,
        "--personas",
        str(people),
        "--out",
        str(out),
        "--store",
        str(store),
        "--run-id",
        "r1",
        "--trials",
        "2",
        "--concurrency",
        "2",
        "--no-progress",
        *extra,
    ]


def stored(store: Path) -> int:
    with sqlite3.connect(store) as db:
        try:
            return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def wait_for_results(store: Path, at_least: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while stored(store) < at_least:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the first process made no progress"
        time.sleep(0.05)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start the first process, its stderr kept in ``log`` for failure messages."""
    with log.open("wb") as sink:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sink)


def test_a_second_process_resuming_a_running_run_is_refused(tmp_path: Path) -> None:
    people = personas(tmp_path / "people", 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The number of requests one run alone makes: the reference.
    with FakeOpenAIServer(latency=0.05) as alone:
        done = subprocess.run(
            simulate(alone.url, people, tmp_path / "alone.db", tmp_path / "alone.jsonl"),
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr.decode()
        reference = alone.requests
    store = tmp_path / "s.db"
    with FakeOpenAIServer(latency=0.25) as server:
        log = tmp_path / "first.log"
        first = start(simulate(server.url, people, store, tmp_path / "a.jsonl"), env, log)
        wait_for_results(store, 1, first, log)
        second = subprocess.run(
            simulate(server.url, people, store, tmp_path / "b.jsonl", "--resume"),
            env=env,
            capture_output=True,
            timeout=120,
        )
        err = second.stderr.decode()
        assert second.returncode == 2, err
        assert "is being run by another process" in err and "Traceback" not in err
        assert first.wait(timeout=300) == 0, log.read_text()
        # Resuming after it finished finds nothing left to do.
        again = subprocess.run(
            simulate(server.url, people, store, tmp_path / "c.jsonl", "--resume"),
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr.decode()
        assert "12 already done" in again.stderr.decode() + again.stdout.decode()
        assert server.requests == reference
    assert stored(store) == 12


def test_a_killed_run_is_taken_over_at_once(tmp_path: Path) -> None:
    people = personas(tmp_path / "people", 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    store = tmp_path / "s.db"
    with FakeOpenAIServer(latency=0.25) as server:
        log = tmp_path / "first.log"
        first = start(simulate(server.url, people, store, tmp_path / "a.jsonl"), env, log)
        wait_for_results(store, 2, first, log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        # Its lease names a process that is gone: the resume does not wait a minute.
        started = time.monotonic()
        resumed = subprocess.run(
            simulate(server.url, people, store, tmp_path / "b.jsonl", "--resume"),
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr.decode()
        assert time.monotonic() - started < 50
    assert stored(store) == 12
    lines = (tmp_path / "b.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)) == 12


async def test_a_run_that_lost_its_lease_stops_instead_of_repeating_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio

    from convsim.agents import FunctionAgent
    from convsim.errors import RunBusy
    from convsim.runner import RunConfig
    from convsim.simulate import make_user_factory, simulate
    from convsim.store import SQLiteStore
    from convsim.users import Persona

    monkeypatch.setattr("convsim.runner._run.HEARTBEAT_S", 0.05)
    people = [Persona(name=f"p{i}", goal="g", scripted_turns=["hi", "bye"]) for i in range(40)]

    async def slow(conversation: object) -> str:
        await anyio.sleep(0.1)
        return "ok"

    store = SQLiteStore(tmp_path / "s.db")
    config = RunConfig(run_id="r1", agent="test", concurrency=2, progress=False)
    stopped: list[BaseException] = []

    async def run() -> None:
        try:
            await simulate(
                config, people, FunctionAgent(slow), store=store,
                user_factory=make_user_factory("scripted"),
            )  # fmt: skip
        except BaseException as e:  # the run's task group may wrap it
            stopped.append(e)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.sleep(0.5)
        # As if this process had slept past the lease and another had taken the run over.
        other = sqlite3.connect(tmp_path / "s.db")
        other.execute("UPDATE run_leases SET owner = 'another-host:1:abc' WHERE run_id = 'r1'")
        other.commit()
        other.close()
    (error,) = stopped
    leaves = error.exceptions if isinstance(error, BaseExceptionGroup) else (error,)
    assert any(isinstance(e, RunBusy) and "taken the run over" in str(e) for e in leaves)
    # It stopped soon after, far from running all 40 conversations.
    assert 0 < store.count("results") < 30


def test_a_lease_is_renewed_only_by_its_holder(tmp_path: Path) -> None:
    from convsim.store import SQLiteStore

    first, second = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    first.acquire_run("r1")
    assert first.renew_run("r1") and not second.renew_run("r1")
    with sqlite3.connect(tmp_path / "s.db") as db:  # the holder went quiet for too long
        db.execute("UPDATE run_leases SET heartbeat_at = 0, host = 'elsewhere'")
    second.acquire_run("r1")
    assert second.renew_run("r1") and not first.renew_run("r1")
