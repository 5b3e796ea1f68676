import json
from pathlib import Path

from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import read_conversations
from tests.formats._helpers import DATA


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_import_auto_reports_notes_and_only_real_losses_as_lossy(tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    report = tmp_path / "r.json"
    code, _, err = run(
        "import", "auto", str(DATA / "otel_travel.json"), "--out", str(out), "--json", str(report)
    )
    assert code == 0, err
    # The notes say what was kept verbatim; keeping is not losing, so nothing is lossy.
    assert "auto: read 2, kept 2, rejected 0" in err and "lossy" not in err
    assert "note: " in err and "kept verbatim" in err
    data = json.loads(report.read_text())
    assert data["lossy"] == 0 and data["notes"]


def test_export_then_import_each_format(tmp_path: Path) -> None:
    canonical = tmp_path / "c.jsonl"
    code, _, err = run(
        "import", "langfuse", str(DATA / "langfuse_travel.json"), "--out", str(canonical)
    )
    assert code == 0, err
    (original,) = list(read_conversations(canonical))
    for fmt in ("openai", "anthropic", "otel"):
        exported = tmp_path / f"{fmt}.jsonl"
        code, _, err = run("export", fmt, str(canonical), "--out", str(exported))
        assert code == 0, err
        assert f"{fmt}: read 1, wrote 1, skipped 0" in err
        again = tmp_path / f"{fmt}.back.jsonl"
        code, _, err = run("import", fmt, str(exported), "--out", str(again))
        assert code == 0, err
        (back,) = list(read_conversations(again))
        assert [m.text for m in back.messages] == [m.text for m in original.messages]
        assert [c.id for c in back.tool_calls()] == [c.id for c in original.tool_calls()]
    (otel_back,) = list(read_conversations(tmp_path / "otel.back.jsonl"))
    assert otel_back.model_dump(exclude={"provenance"}) == original.model_dump(
        exclude={"provenance"}
    )


def test_export_reports_what_anthropic_cannot_carry(tmp_path: Path) -> None:
    canonical = tmp_path / "c.jsonl"
    run("import", "otel", str(DATA / "otel_travel.json"), "--out", str(canonical))
    code, _, err = run("export", "anthropic", str(canonical), "--out", str(tmp_path / "a.jsonl"))
    assert code == 0
    assert "not carried by anthropic: messages[]." in err
    assert "(2 conversations lost fields anthropic cannot carry)" in err


def test_export_of_nothing_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    code, _, err = run("export", "otel", str(bad), "--out", str(tmp_path / "o.jsonl"))
    assert code == 2 and "nothing exported" in err and "Traceback" not in err
