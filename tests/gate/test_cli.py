"""``convsim compare``: exit codes, outputs and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from convsim.cli.compare import compare_cmd
from convsim.store import RunRecord, SQLiteStore, StoreItem

from ._runs import result, score, write_run

VERTICALS = {f"k{i}": ("air" if i % 2 else "retail") for i in range(400)}


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(compare_cmd, list(args))
    return res.exit_code, res.stdout, res.stderr


def _pair(tmp: Path, cand: dict[str, list[bool]], base: dict[str, list[bool]]) -> list[str]:
    c_res, c_sc = write_run(tmp, "cand", cand, verticals=VERTICALS, seeds=True)
    b_res, b_sc = write_run(tmp, "base", base, verticals=VERTICALS, seeds=True)
    return [
        str(c_res),
        str(b_res),
        "--scores-candidate",
        str(c_sc),
        "--scores-baseline",
        str(b_sc),
    ]


def test_exit_0_pass_with_every_output(tmp_path: Path) -> None:
    same = {f"k{i}": [True, True] for i in range(400)}
    args = _pair(tmp_path, same, same)
    md, junit, js = tmp_path / "s.md", tmp_path / "j.xml", tmp_path / "r.json"
    code, out, err = run(
        *args,
        "--by",
        "vertical",
        "--max-regression",
        "5",
        "--markdown",
        str(md),
        "--junit",
        str(junit),
        "--json",
        str(js),
    )
    assert code == 0, err
    assert "verdict: PASS (exit 0)" in out
    report = json.loads(js.read_text())
    assert report["verdict"] == "pass" and report["exit_code"] == 0
    assert [g["group"] for g in report["groups"]] == ["all", "vertical=air", "vertical=retail"]
    assert report["pairing"]["by_seed"] == 400
    assert md.read_text().startswith("### convsim compare: **PASS**")
    root = ET.parse(junit).getroot()
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["all", "vertical=air", "vertical=retail"]
    assert all(c.find("failure") is None and c.find("skipped") is None for c in cases)


def test_exit_1_regression(tmp_path: Path) -> None:
    base = {f"k{i}": [True] for i in range(200)}
    cand = {f"k{i}": [i % 3 != 0] for i in range(200)}
    junit = tmp_path / "j.xml"
    code, out, _ = run(
        *_pair(tmp_path, cand, base),
        "--by",
        "vertical",
        "--max-regression",
        "1.5",
        "--junit",
        str(junit),
    )
    assert code == 1
    assert "verdict: REGRESSION (exit 1)" in out
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    failures = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failures == ["all", "vertical=air", "vertical=retail"]


def test_exit_3_inconclusive_says_what_would_decide(tmp_path: Path) -> None:
    # Some cases better, some worse, on 30 cases: too few to tell.
    base = {f"k{i}": [True, i % 3 == 0] for i in range(30)}
    cand = {f"k{i}": [True, i % 2 == 0] for i in range(30)}
    junit, js = tmp_path / "j.xml", tmp_path / "r.json"
    code, out, _ = run(
        *_pair(tmp_path, cand, base),
        "--max-regression",
        "1.5",
        "--junit",
        str(junit),
        "--json",
        str(js),
    )
    assert code == 3
    assert "INCONCLUSIVE (exit 3)" in out and "cases" in out
    (case,) = ET.parse(junit).getroot().findall("./testsuite/testcase")
    skipped = case.find("skipped")
    assert skipped is not None and "To decide: about" in (skipped.get("message") or "")
    plan = json.loads(js.read_text())["groups"][0]["plan"]
    assert plan["more_cases"] > 0


def test_json_to_stdout_keeps_stdout_clean(tmp_path: Path) -> None:
    same = {f"k{i}": [True] for i in range(50)}
    code, out, err = run(*_pair(tmp_path, same, same), "--max-regression", "5", "--json", "-")
    assert code in (0, 3)
    assert json.loads(out)["metric"] == "outcome"
    assert "verdict:" in err


def test_exit_1_for_a_budget_breach(tmp_path: Path) -> None:
    same = {f"k{i}": [True] for i in range(400)}
    code, out, _ = run(
        *_pair(tmp_path, same, same), "--max-regression", "5", "--latency-budget-ms", "50"
    )
    assert code == 1 and "over budget" in out


def test_run_ids_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SQLiteStore(db) as store:
        for run_id, fail_every in (("base", 0), ("cand", 2)):
            store.start_run(
                RunRecord(
                    run_id=run_id,
                    kind="simulate",
                    config_hash="h",
                    started_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
            items: list[StoreItem] = []
            for i in range(100):
                items.append(result(run_id, f"k{i}", 0))
                items.append(score(run_id, f"k{i}", 0, not fail_every or i % fail_every != 0))
            store.write_batch(items)
    code, out, err = run("cand", "base", "--store", str(db), "--max-regression", "1.5")
    assert code == 1, err
    assert "cand (candidate) vs base (baseline)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl", "other.jsonl", "--max-regression", "1"], "no store at"),
        (["CAND", "BASE", "--max-regression", "1", "--by", "lang"], "tag 'lang'"),
        (["CAND", "BASE", "--max-regression", "1", "--metric", "tone"], "no 'tone' score"),
        (["CAND", "BASE", "--max-regression", "1", "--alpha", "0.7"], "--alpha"),
        (["CAND", "BASE"], "--max-regression"),
        (["CAND", "BASE", "--max-regression", "1", "--json", "-", "--markdown", "-"], "stdout"),
    ],
)
def test_exit_2_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    same = {f"k{i}": [True] for i in range(5)}
    cand, base, *scores = _pair(tmp_path, same, same)
    args = [cand if a == "CAND" else base if a == "BASE" else a for a in args]
    if "CAND" not in args and cand in args:
        args += scores
    code, _, err = run(*args)
    assert code == 2
    assert message in err


def test_exit_2_when_no_case_overlaps_or_a_run_is_missing(tmp_path: Path) -> None:
    c_res, _ = write_run(tmp_path, "cand", {"x": [True]})
    b_res, _ = write_run(tmp_path, "base", {"y": [True]})
    code, _, err = run(str(c_res), str(b_res), "--max-regression", "1", "--metric", "completed")
    assert code == 2 and "no case has a counted trial in both runs" in err
    db = tmp_path / "s.db"
    SQLiteStore(db).close()
    code, _, err = run(str(c_res), "nope", "--store", str(db), "--max-regression", "1")
    assert code == 2 and "no results for run 'nope'" in err
    code, _, err = run(
        str(c_res), str(b_res), "--max-regression", "1", "--scores-candidate", "gone.jsonl"
    )
    assert code == 2 and "gone.jsonl: no such file" in err and "candidate scores" in err


def test_command_module_imports_only_click() -> None:
    code = (
        "import sys; import convsim.cli.compare; "
        "heavy = ('scipy', 'numpy', 'rich', 'convsim.gate'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
