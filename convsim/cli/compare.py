"""``convsim compare CANDIDATE BASELINE``: the release gate between two runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import UsageFailure, store_option, write_json

if TYPE_CHECKING:
    from ..gate import RunData


@click.command("compare")
@click.argument("candidate", metavar="CANDIDATE")
@click.argument("baseline", metavar="BASELINE")
@click.option(
    "--by",
    "by",
    multiple=True,
    metavar="TAG",
    help="Gate every value of this tag too (vertical, persona, language, ...); repeatable.",
)
@click.option(
    "--max-regression",
    required=True,
    type=click.FloatRange(0, 100, max_open=True),
    metavar="PP",
    help="Allowed drop in pass rate, in percentage points (1.5 = 1.5 points).",
)
@click.option(
    "--alpha",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
    help="Largest rate of a wrong pass, and of a wrong regression over all groups.",
)
@click.option(
    "--metric",
    metavar="NAME",
    help="Binary score to compare [default: outcome; 'completed' (the termination) when "
    "neither run has outcome scores].",
)
@click.option(
    "--scores-candidate",
    type=click.Path(path_type=Path),
    help="Scores JSONL of the candidate (convsim grade --out).",
)
@click.option(
    "--scores-baseline",
    type=click.Path(path_type=Path),
    help="Scores JSONL of the baseline (convsim grade --out).",
)
@store_option("SQLite store in which CANDIDATE and BASELINE are looked up when they are not files.")
@click.option(
    "--latency-budget-ms",
    type=click.FloatRange(min=0),
    metavar="X",
    help="Budget for the candidate's P95 agent latency per conversation, overall and per "
    "tag value; over it fails the gate (exit 1).",
)
@click.option(
    "--cost-budget-usd",
    type=click.FloatRange(min=0),
    metavar="Y",
    help="Budget for the candidate's P95 agent cost per conversation, like the latency one.",
)
@click.option(
    "--markdown", "markdown_out", metavar="FILE", help="Write a PR-comment summary (- for stdout)."
)
@click.option("--junit", "junit_out", type=click.Path(path_type=Path), help="Write JUnit XML.")
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the full report as JSON (- for stdout)."
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of bootstrap resampling, used only where the exact bootstrap is out of reach.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=100),
    help="Bootstrap resamples per group in that case [default: at least 2000].",
)
def compare_cmd(
    candidate: str,
    baseline: str,
    by: tuple[str, ...],
    max_regression: float,
    alpha: float,
    metric: str | None,
    scores_candidate: Path | None,
    scores_baseline: Path | None,
    store_path: Path,
    latency_budget_ms: float | None,
    cost_budget_usd: float | None,
    markdown_out: str | None,
    junit_out: Path | None,
    json_out: str | None,
    seed: int,
    resamples: int | None,
) -> None:
    """Gate CANDIDATE against BASELINE: pass, regression or inconclusive.

    CANDIDATE and BASELINE are results files (convsim simulate --out) or run ids in the
    store. Cases are paired by case id, and trials by seed where both runs used the same
    seeds. The change in pass rate, overall and per value of each --by tag, gets a
    paired case-bootstrap interval (exact McNemar p-values are shown beside it):
    regression when the whole interval is below -PP; pass when it is all above -PP;
    inconclusive otherwise, with how many more cases or trials would decide.
    Conversations that ended in simulator or infrastructure errors, or were voided,
    are excluded and reported.

    Exit codes: 0 pass, 1 regression (or a candidate P95 over a budget), 3 inconclusive,
    2 usage or input error.
    """
    if json_out == "-" and markdown_out == "-":
        raise UsageFailure("--json - and --markdown - both want stdout; write one to a file")
    from rich.console import Console

    from ._paths import check_paths, write_text_atomically

    inputs: dict[str, Path | None] = {
        "candidate scores": scores_candidate,
        "baseline scores": scores_baseline,
    }
    for what, ref in (("candidate results", candidate), ("baseline results", baseline)):
        if Path(ref).is_file():
            inputs[what] = Path(ref)
    check_paths(
        inputs=inputs,
        outputs={"JSON report": json_out, "Markdown summary": markdown_out, "JUnit XML": junit_out},
        store=store_path,
    )
    from ..errors import ConvsimError
    from ..gate import compare_runs, render_junit, render_markdown, render_terminal

    try:
        cand = _load("CANDIDATE", candidate, scores_candidate, store_path)
        base = _load("BASELINE", baseline, scores_baseline, store_path)
        report = compare_runs(
            cand,
            base,
            max_regression=max_regression,
            by=by,
            alpha=alpha,
            metric=metric,
            latency_budget_ms=latency_budget_ms,
            cost_budget_usd=cost_budget_usd,
            resamples=resamples,
            seed=seed,
        )
    except ConvsimError as e:
        raise UsageFailure(str(e)) from None

    if json_out:
        write_json(json_out, report.to_dict())
    if markdown_out:
        text = render_markdown(report)
        if markdown_out == "-":
            sys.stdout.write(text)
        else:
            write_text_atomically(Path(markdown_out), text)
    if junit_out:
        write_text_atomically(junit_out, render_junit(report))
    to_stderr = "-" in (json_out, markdown_out)
    render_terminal(report, Console(stderr=to_stderr, width=None if sys.stdout.isatty() else 120))
    click.get_current_context().exit(report.exit_code)


def _load(side: str, arg: str, scores: Path | None, store_path: Path) -> RunData:
    """A run from a results file, or from the store when ``arg`` is not a file."""
    from ..gate import load_results_file, load_store_run
    from ..store import SQLiteStore

    if scores is not None and not scores.is_file():
        raise UsageFailure(f"{scores}: no such scores file; check the --scores-* path")
    path = Path(arg)
    if path.is_dir():
        raise UsageFailure(f"{side} {arg}: is a directory; pass a results JSONL file or a run id")
    if path.is_file():
        return load_results_file(path, scores=scores)
    if not store_path.is_file():
        raise UsageFailure(
            f"{side} {arg!r}: no such results file, and no store at {store_path} to look it "
            "up as a run id; pass a results file from `convsim simulate --out`, or the "
            "store with --store PATH"
        )
    with SQLiteStore(store_path) as store:
        return load_store_run(store, arg, scores=scores)
