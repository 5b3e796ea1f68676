"""`convsim demo` end to end: offline, on the bundled data, leaving reports that render."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from convsim.cli import cli

from ._browser import screenshot


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(
        cli, ["demo", "--out", str(out / "run"), "--json", str(out / "demo.json")]
    )
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads((out / "demo.json").read_text())
    data["stdout"] = result.stdout
    return data


def test_demo_reproduces_the_recorded_results(demo: dict[str, object]) -> None:
    numbers = demo["numbers"]
    assert isinstance(numbers, dict)
    assert numbers["imported"] == 200
    assert numbers["outcome_pass_rate"] == 0.42
    assert numbers["pass_hat_k"] == {"1": 0.42, "2": 0.273, "3": 0.22, "4": 0.2}
    assert numbers["simulated"]["passed"] == numbers["simulated"]["conversations"] == 10
    assert numbers["replay"]["diverged"] > 0
    assert numbers["review"] == {"queued": 10, "harvested": 1}
    # The injected regression (cancellations, week 2) is exactly what drift flags.
    assert numbers["drift_alarms"] == [
        "rubric.goal_completion (intent=cancel)",
        "rubric.tone (intent=cancel)",
    ]
    assert numbers["grader_failures"] == 0


def test_demo_leaves_files_and_reports_that_render(demo: dict[str, object], tmp_path: Path) -> None:
    files = demo["files"]
    assert isinstance(files, dict)
    for key in (
        "traces",
        "scores",
        "pass_k",
        "simulated",
        "replay_html",
        "drift_html",
        "drift_json",
        "drift_md",
        "dataset",
        "store",
    ):
        assert Path(files[key]).stat().st_size > 0, key
    stdout = str(demo["stdout"])
    assert "open the reports:" in stdout
    for key, path in files.items():
        if key.endswith("_html"):
            width, _, colours = screenshot(Path(path), tmp_path / f"{key}.png")
            assert width == 1280 and colours > 30, key
