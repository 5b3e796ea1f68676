import json
import random
from pathlib import Path

from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import write_jsonl
from convsim.store import SQLiteStore, WindowScore
from convsim.trace import Score

from ._browser import screenshot


def window(label: str, n: int, rate: dict[str, float], seed: int) -> list[Score]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cohort = "es" if i % 4 == 0 else "en"
        out.append(
            Score(
                conversation_id=f"{label}-{i}",
                name="rubric.goal",
                value=rng.random() < rate[cohort],
                kind="binary",
                source="model",
                judge_model="j",
                prompt_hash="p",
                tags={"language": cohort},
                window=label,
            )
        )
    return out


def test_drift_alarm_exit_codes_and_outputs(tmp_path: Path) -> None:
    base, cur = tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"
    write_jsonl(base, window("w1", 2000, {"en": 0.8, "es": 0.8}, 1))
    write_jsonl(cur, window("w2", 2000, {"en": 0.8, "es": 0.5}, 2))
    out = tmp_path / "drift.json"
    html = tmp_path / "drift.html"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "drift",
            str(base),
            str(cur),
            "--by",
            "language",
            "--json",
            str(out),
            "--html",
            str(html),
            "--markdown",
            str(tmp_path / "d.md"),
            "--fail-on-alarm",
        ],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    alarms = [f for f in report["findings"] if f["alarm"]]
    assert {(f["metric"], json.dumps(f["cohort"])) for f in alarms} >= {
        ("rubric.goal", '{"language": "es"}')
    }
    for f in report["findings"]:
        for key in (
            "metric",
            "cohort",
            "test",
            "statistic",
            "p_value",
            "p_adjusted",
            "effect",
            "ci_low",
            "ci_high",
            "mde",
            "n_baseline",
            "n_current",
            "alarm",
        ):
            assert key in f
    assert "ALARM" in result.stdout
    _, _, colours = screenshot(html, tmp_path / "drift.png")
    assert colours > 30
    # Without --fail-on-alarm the same drift exits 0; a minimum effect above the drop silences it.
    assert runner.invoke(cli, ["drift", str(base), str(cur), "--by", "language"]).exit_code == 0
    quiet = runner.invoke(
        cli,
        [
            "drift",
            str(base),
            str(cur),
            "--by",
            "language",
            "--fail-on-alarm",
            "--min-effect",
            "rubric.goal=0.5",
        ],
    )
    assert quiet.exit_code == 0


def test_no_change_no_alarm_and_windows_from_the_store(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    with SQLiteStore(store) as st:
        st.write_batch(
            [
                WindowScore(window="w1", score=s)
                for s in window("w1", 1500, {"en": 0.7, "es": 0.7}, 3)
            ]
        )
        st.write_batch(
            [
                WindowScore(window="w2", score=s)
                for s in window("w2", 1500, {"en": 0.7, "es": 0.7}, 4)
            ]
        )
    result = CliRunner().invoke(
        cli,
        [
            "drift",
            "w1",
            "w2",
            "--by",
            "language",
            "--store",
            str(store),
            "--fail-on-alarm",
            "--json",
            "-",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["alarms"] == 0


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    base = tmp_path / "w1.jsonl"
    write_jsonl(base, window("w1", 50, {"en": 0.8, "es": 0.8}, 1))
    runner = CliRunner()
    bad = runner.invoke(cli, ["drift", str(base), str(base), "--min-effect", "oops"])
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.stderr
    missing = runner.invoke(cli, ["drift", str(base), str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "nope.jsonl" in missing.stderr


def test_cluster_by_user_tag(tmp_path: Path) -> None:
    base, cur = tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"
    for path, label, seed in ((base, "w1", 5), (cur, "w2", 6)):
        scores = window(label, 1200, {"en": 0.7, "es": 0.7}, seed)
        write_jsonl(
            path,
            [
                s.model_copy(update={"tags": {**s.tags, "user": f"u{i % 300}"}})
                for i, s in enumerate(scores)
            ],
        )
    result = CliRunner().invoke(
        cli, ["drift", str(base), str(cur), "--cluster", "user", "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)["findings"]
    primary = next(f for f in findings if f["metric"] == "rubric.goal" and f["cohort"] == "all")
    assert primary["p_method"] == "asymptotic" and not primary["alarm"]


def test_user_ids_cluster_by_default_and_none_says_what_it_assumed(tmp_path: Path) -> None:
    base, cur = tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"
    for path, label, seed in ((base, "w1", 7), (cur, "w2", 8)):
        scores = window(label, 900, {"en": 0.7, "es": 0.7}, seed)
        # 150 users a week with six conversations each, who score alike.
        write_jsonl(
            path,
            [
                s.model_copy(update={"user_id": f"{label}-u{i % 150}", "value": (i % 150) % 3 > 0})
                for i, s in enumerate(scores)
            ],
        )
    runner = CliRunner()
    auto = runner.invoke(cli, ["drift", str(base), str(cur), "--json", "-"])
    assert auto.exit_code == 0, auto.output
    report = json.loads(auto.stdout)["summary"]
    assert report["clustering"] == "by user_id: 300 clusters hold several conversations"
    assert report["caveats"] == []
    off = runner.invoke(cli, ["drift", str(base), str(cur), "--cluster", "none"])
    assert off.exit_code == 0 and "caveat: The tests assume independent conversations" in off.stdout
    clustered = json.loads(auto.stdout)["findings"][0]
    plain = json.loads(
        runner.invoke(
            cli, ["drift", str(base), str(cur), "--cluster", "none", "--json", "-"]
        ).stdout
    )["findings"][0]
    # Six identical conversations per user carry about one conversation's information.
    assert clustered["se"] > 2 * plain["se"]
