"""What a careless or hostile user reported: each now exits in one line, promptly.

Hostile YAML, a store damaged in the middle, user code that does not import, and
Ctrl-C in the middle of a run, each through the real CLI.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from convsim.cli import cli
from convsim.testing import FakeOpenAIServer

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def personas(folder: Path, n: int = 1) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"p{i}.yaml").write_text(
            f"name: p{i}\ngoal: get help\nscripted_turns: [hello {i}, question {i}, thanks]\n"
        )
    return folder


def cli_run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


def test_a_billion_laughs_persona_is_refused_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "people"
    folder.mkdir()
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    body = "\n".join("  " + line for line in levels)
    (folder / "laughs.yaml").write_text(f"name: p\ngoal: g\nmetadata:\n{body}\n")
    started = time.monotonic()
    code, out = cli_run(
        "simulate", "--agent", "http://127.0.0.1:9/v1", "--personas", str(folder),
        "--out", str(tmp_path / "r.jsonl"), "--store", str(tmp_path / "s.db"), "--no-progress",
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert code == 2
    assert "laughs.yaml: expands to more than 1,000,000 values through its aliases" in out
    assert not (tmp_path / "r.jsonl").exists()


def test_user_code_that_fails_to_import_is_reported_with_its_file_and_line(
    tmp_path: Path,
) -> None:
    people = personas(tmp_path / "people")
    broken = tmp_path / "broken.py"
    broken.write_text("def agent(conversation):\n    return 'ok'\n\nif True\n    pass\n")
    raises = tmp_path / "raises.py"
    raises.write_text("import os\n\nSETTING = os.environ['NO_SUCH_SETTING_HERE']\n")
    common = ["--personas", str(people), "--store", str(tmp_path / "s.db"), "--no-progress"]
    code, out = cli_run("simulate", "--agent", f"{broken}:agent", "--out", "a.jsonl", *common)
    assert code == 2 and f"{broken}:4: syntax error in your code" in out
    code, out = cli_run("simulate", "--agent", f"{raises}:agent", "--out", "b.jsonl", *common)
    assert code == 2
    assert f"{raises}:3: your code raised KeyError while convsim imported" in out
    binary = tmp_path / "agent.yaml"
    binary.write_bytes(b"kind: python\n\xff\xfe\x00target: \x80\n")
    code, out = cli_run("simulate", "--agent", str(binary), "--out", "c.jsonl", *common)
    assert code == 2 and out.count("\n") == 1 and str(binary) in out


def test_a_store_damaged_in_the_middle_is_refused_at_open(tmp_path: Path) -> None:
    people = personas(tmp_path / "people", 8)
    store, out = tmp_path / "s.db", tmp_path / "r.jsonl"
    args = ["simulate", "--agent", "echo", "--personas", str(people), "--store", str(store),
            "--out", str(out), "--run-id", "r1", "--trials", "3", "--no-progress"]  # fmt: skip
    with FakeOpenAIServer() as server:
        args[2] = server.url
        assert cli_run(*args)[0] == 0
        with sqlite3.connect(store) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            size = db.execute("PRAGMA page_size").fetchone()[0]
        assert pages > 6
        results = out.read_bytes()
        data = bytearray(store.read_bytes())
        middle = (pages // 2) * size
        data[middle : middle + size] = bytes([0xA5]) * size
        store.write_bytes(bytes(data))
        code, text = cli_run(*args, "--resume")
    assert code == 2 and "the store is damaged" in text and ".recover" in text
    assert out.read_bytes() == results  # the last good results are untouched


def test_ctrl_c_exits_130_in_one_line_and_the_run_resumes(tmp_path: Path) -> None:
    people = personas(tmp_path / "people", 6)
    store, out = tmp_path / "s.db", tmp_path / "r.jsonl"
    with FakeOpenAIServer(latency=0.3) as server:
        args = [sys.executable, "-m", "convsim.cli", "simulate", "--agent", server.url,
                "--personas", str(people), "--store", str(store), "--out", str(out),
                "--run-id", "r1", "--trials", "2", "--concurrency", "2",
                "--no-progress"]  # fmt: skip
        # A terminal delivers Ctrl-C to a process with the default disposition; a test
        # runner started in the background inherits SIGINT ignored, so reset it.
        proc = subprocess.Popen(
            args,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while server.requests < 3:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err.decode()
        assert b"Traceback" not in err
        resumed = subprocess.run([*args, "--resume"], env=ENV, capture_output=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr.decode()
    assert len(out.read_text().splitlines()) == 12


def test_store_errors_the_user_can_fix_are_one_line_and_bugs_keep_their_traceback(
    tmp_path: Path,
) -> None:
    from convsim.cli import _user_error
    from convsim.cli._common import UsageFailure

    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    try:
        sqlite3.connect(text).execute("SELECT 1 FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as e:
        not_a_db = e
    mapped = _user_error(not_a_db)
    assert isinstance(mapped, UsageFailure) and "not a SQLite database" in str(mapped)
    try:
        sqlite3.connect(":memory:").execute("SELECT no_such_column FROM sqlite_master")
    except sqlite3.OperationalError as e:
        bug = e
    assert _user_error(bug) is None  # a wrong query is convsim's bug: keep the traceback
    assert _user_error(BrokenPipeError(32, "Broken pipe")) is None  # click exits quietly


def test_yaml_nested_fifty_thousand_deep_is_refused_in_one_line(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("[" * 50_000 + "]" * 50_000 + "\n")
    convs = tmp_path / "c.jsonl"
    convs.write_text('{"id": "c", "messages": [{"role": "user", "content": "hi"}]}\n')
    code, out = cli_run(
        "online", str(convs), "--policy", str(policy), "--window", "w",
        "--store", str(tmp_path / "s.db"),
    )  # fmt: skip
    assert code == 2 and f"{policy}: nested too deeply to read" in out
