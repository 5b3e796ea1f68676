"""``convsim export``: the per-field loss summary, its JSON report, and failed exports."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import dump_line
from convsim.trace import AssistantMessage, Conversation, UserMessage
from tests.formats.test_roundtrip_report import everything_set


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _canonical(tmp_path: Path, *convs: Conversation) -> Path:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(dump_line(c) + "\n" for c in convs))
    return path


PLAIN = Conversation(
    id="plain", messages=[UserMessage(content="hi"), AssistantMessage(content="hello")]
)


def test_losses_are_counted_per_field_on_stderr_and_in_json(tmp_path: Path) -> None:
    canonical = _canonical(tmp_path, everything_set(), PLAIN)
    report = tmp_path / "r.json"
    code, _, err = run(
        "export", "anthropic", str(canonical), "--out", str(tmp_path / "a.jsonl"),
        "--json", str(report),
    )  # fmt: skip
    assert code == 0, err
    assert "not carried by anthropic: messages[].finish_reason (1 conversation), " in err
    assert "scores (1), signals (1)" in err
    assert "read 2, wrote 2, skipped 0" in err
    assert "(1 conversation lost fields anthropic cannot carry)" in err
    data = json.loads(report.read_text())
    assert (data["format"], data["read"], data["written"], data["rejected"]) == (
        "anthropic", 2, 2, 0,
    )  # fmt: skip
    assert data["lossy"] == 1
    assert data["lost"] == {
        "messages[].finish_reason": 1,
        "messages[].id": 1,
        "messages[].latency_ms": 1,
        "messages[].model": 1,
        "messages[].name": 1,
        "messages[].timestamp": 1,
        "messages[].usage": 1,
        "scores": 1,
        "signals": 1,
    }
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["c1", "plain"]


def test_nothing_lost_says_nothing_about_losses(tmp_path: Path) -> None:
    canonical = _canonical(tmp_path, PLAIN)
    code, out, err = run(
        "export", "openai", str(canonical), "--out", str(tmp_path / "o.jsonl"), "--json", "-"
    )
    assert code == 0, err
    assert "not carried" not in err and "lost fields" not in err
    assert "openai: read 1, wrote 1, skipped 0" in err
    data = json.loads(out)
    assert data["lost"] == {} and data["lossy"] == 0


def test_otel_reports_no_loss_counts_rather_than_none_lost(tmp_path: Path) -> None:
    canonical = _canonical(tmp_path, everything_set())
    report = tmp_path / "r.json"
    code, _, err = run(
        "export", "otel", str(canonical), "--out", str(tmp_path / "t.jsonl"), "--json", str(report)
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["lost"] is None and data["lossy"] is None and data["written"] == 1


def test_nothing_writable_keeps_the_previous_export_and_writes_no_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    out = tmp_path / "o.jsonl"
    out.write_text("previous\n")
    report = tmp_path / "r.json"
    code, _, err = run("export", "openai", str(bad), "--out", str(out), "--json", str(report))
    assert code == 2 and "nothing exported" in err
    assert out.read_text() == "previous\n" and not report.exists()
