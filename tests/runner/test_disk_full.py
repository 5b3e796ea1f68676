"""A full disk in the middle of a run: earlier outputs stay whole, the run resumes."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from convsim.testing import FakeOpenAIServer

ROOT = Path(__file__).parents[2]


def command(url: str, people: Path, store: Path, out: Path, run_id: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "convsim.cli", "simulate", "--agent", url, "--personas",
        str(people), "--out", str(out), "--store", str(store), "--run-id", run_id,
        "--trials", "3", "--no-progress", *extra,
    ]  # fmt: skip


def limited(max_bytes: int) -> None:
    # In the child: no file may grow past max_bytes, and writing past it fails with
    # EFBIG ("file too large") instead of killing the process, as a full disk fails.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def test_a_full_disk_keeps_the_last_results_whole_and_the_run_resumable(tmp_path: Path) -> None:
    people = tmp_path / "people"
    people.mkdir()
    for i in range(8):
        (people / f"p{i}.yaml").write_text(
            f"name: p{i}\ngoal: help\nscripted_turns: [hello {i} {'x' * 400}, again, thanks]\n"
        )
    store, out = tmp_path / "s.db", tmp_path / "results.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with FakeOpenAIServer() as server:
        first = subprocess.run(
            command(server.url, people, store, out, "r1"), env=env, capture_output=True
        )
        assert first.returncode == 0, first.stderr.decode()
        before = out.read_bytes()
        assert len(before.splitlines()) == 24
        # The second run, as big as the first, may not grow any file past the store's size
        # plus 8 KiB: its writes fail partway, as on a disk that fills up.
        limit = store.stat().st_size + 8192
        full = subprocess.run(
            command(server.url, people, store, out, "r2"),
            env=env,
            capture_output=True,
            preexec_fn=lambda: limited(limit),
        )
        err = full.stderr.decode()
        assert full.returncode == 2, err
        assert "Traceback" not in err and err.count("\n") == 1, err
        assert out.read_bytes() == before  # the earlier results file is whole
        resumed = subprocess.run(
            command(server.url, people, store, out, "r2", "--resume"), env=env, capture_output=True
        )
        assert resumed.returncode == 0, resumed.stderr.decode()
    lines = out.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 24
    assert all('"run_id":"r2"' in line for line in lines)
