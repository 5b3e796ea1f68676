import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from convsim.cli import cli
from convsim.store import SQLiteStore


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_every_command() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for name in ("demo", "import", "schema", "stats"):
        assert name in out


def test_cli_import_does_not_pull_in_heavy_modules() -> None:
    code = (
        "import sys; from convsim.cli import cli; "
        "heavy = ('litellm', 'scipy', 'numpy', 'rich', 'httpx', 'jsonschema', 'yaml'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_command_takes_its_store_from_convsim_store(tmp_path: Path) -> None:
    from convsim.cli._common import DEFAULT_STORE
    from convsim.store import DEFAULT_STORE_PATH

    assert DEFAULT_STORE == DEFAULT_STORE_PATH
    store = tmp_path / "elsewhere.db"
    env = {"CONVSIM_STORE": str(store)}
    # review only reads a store: a missing one is a mistyped path, named in the error.
    result = CliRunner().invoke(cli, ["review", "--list"], env=env)
    assert result.exit_code == 2 and f"{store}: no such store" in result.output
    SQLiteStore(store).close()
    result = CliRunner().invoke(cli, ["review", "--list"], env=env)
    assert result.exit_code == 0, result.output
    code, out, _ = run("simulate", "--help")
    assert code == 0 and "CONVSIM_STORE" in out


@pytest.mark.parametrize("name", ["trace", "score", "case", "run", "result", "score-failure"])
def test_schema_prints_a_json_schema(name: str) -> None:
    code, out, _ = run("schema", name)
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "properties" in schema


def test_trace_schema_has_field_descriptions() -> None:
    _, out, _ = run("schema", "trace")
    schema = json.loads(out)
    assert "source of truth" in schema["properties"]["messages"]["description"]
    assert schema["$defs"]["ToolCall"]["properties"]["arguments_raw"]["description"]


def test_unknown_schema_is_a_usage_error() -> None:
    code, _, err = run("schema", "nope")
    assert code == 2 and "nope" in err


def test_import_tau_bench_and_stats(tmp_path: Path) -> None:
    from convsim._assets import tau_airline_runs

    out = tmp_path / "t.jsonl"
    report = tmp_path / "r.json"
    code, _, err = run(
        "import", "tau-bench", str(tau_airline_runs()), "--out", str(out), "--json", str(report)
    )
    assert code == 0, err
    assert "read 200, kept 200, rejected 0" in err
    assert json.loads(report.read_text())["kept"] == 200
    assert not (tmp_path / "t.jsonl.rejects.jsonl").exists()
    code, out_text, _ = run("stats", str(out), "--json", "-")
    assert code == 0
    stats = json.loads(out_text)
    assert stats["conversations"] == 200
    assert stats["tool_calls"]["total"] == 1164 and stats["tool_calls"]["unanswered"] == 0
    assert stats["tags"]["domain"] == {"airline": 200}
    assert stats["scores"]["reward"] == {"n": 200, "mean": 0.42}


def test_import_reports_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "chats.jsonl"
    good = {"id": "g", "messages": [{"role": "user", "content": "hi"}]}
    src.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(good).encode()
        + b"\r\n"
        + b'{"id": "t", "messages": [{"role": "user", "con\r\n'
        + b"\xff\xfe not utf8\n"
        + json.dumps({"id": "g2", "messages": [{"role": "user", "content": 5}]}).encode()
        + b"\n"
        + json.dumps(dict(good, id="g3")).encode()
        + b"\n"
        + json.dumps(good).encode()
        + b"\n"
    )
    out = tmp_path / "out.jsonl"
    code, _, err = run("import", "openai", str(src), "--out", str(out))
    assert code == 0
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{src}:2: invalid JSON")
    assert lines[1] == f"{src}:3: invalid UTF-8 at byte 0; re-encode as UTF-8"
    assert lines[2].startswith(f"{src}:4: messages.0.content: ")
    assert lines[3].startswith(f"{src}:6: id: duplicate conversation id 'g'")
    assert lines[-1].startswith("openai: read 6, kept 2, rejected 4")
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["g", "g3"]
    rejects = (tmp_path / "out.jsonl.rejects.jsonl").read_bytes().splitlines()
    assert len(rejects) == 4 and rejects[1] == b"\xff\xfe not utf8"
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["empty", "directory", "missing"])
def test_unreadable_inputs_exit_2_without_traceback(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "input.jsonl"
    if kind == "empty":
        target.write_text("")
    elif kind == "directory":
        target.mkdir()
    code, _, err = run("import", "openai", str(target), "--out", str(tmp_path / "o.jsonl"))
    assert code == 2
    assert err.startswith(f"error: {target}: ")
    assert {"empty": "empty", "directory": "is a directory", "missing": "no such file"}[kind] in err
    assert "Traceback" not in err


def test_nothing_importable_exits_2(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"messages": [{"role": "wizard"}]}\n')
    code, _, err = run("import", "openai", str(src), "--out", str(tmp_path / "o.jsonl"))
    assert code == 2 and "nothing importable" in err
