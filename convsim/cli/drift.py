"""``convsim drift BASELINE CURRENT``: compare two windows of scores, calibrated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import UsageFailure, store_option, write_json


@click.command("drift")
@click.argument("baseline")
@click.argument("current")
@click.option(
    "--by", "by_tags", default="", help="Cohort tags for the drill-down, comma-separated."
)
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0.0001, 0.5))
@click.option(
    "--min-effect",
    "min_effect",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a score's minimum meaningful effect (repeatable).",
)
@click.option(
    "--rubrics",
    type=click.Path(path_type=Path),
    help="Take each rubric score's minimum meaningful effect from its rubric file.",
)
@click.option(
    "--cluster",
    metavar="TAG",
    help="Tag holding a user (or account) id: variances become robust to one user's many "
    "conversations. Recommended whenever the scores carry one.",
)
@click.option(
    "--min-n",
    default=30,
    show_default=True,
    type=click.IntRange(min=2),
    help="Conversations a cohort needs in each window to be tested.",
)
@click.option(
    "--anchor",
    type=click.Path(path_type=Path),
    help="Scores of an anchor set re-judged under both judge configurations.",
)
@click.option(
    "--json", "json_out", metavar="FILE", help="Write every finding as JSON (- for stdout)."
)
@click.option("--html", "html_out", type=click.Path(path_type=Path), help="Write the HTML report.")
@click.option(
    "--markdown", "md_out", type=click.Path(path_type=Path), help="Write the Markdown report."
)
@click.option("--fail-on-alarm", is_flag=True, help="Exit 1 when any finding raises an alarm.")
@store_option("Store to read windows from when BASELINE/CURRENT are labels.")
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed for bootstraps and permutations."
)
def drift_cmd(
    baseline: str,
    current: str,
    by_tags: str,
    alpha: float,
    min_effect: tuple[str, ...],
    rubrics: Path | None,
    cluster: str | None,
    min_n: int,
    anchor: Path | None,
    json_out: str | None,
    html_out: Path | None,
    md_out: Path | None,
    fail_on_alarm: bool,
    store_path: Path,
    seed: int,
) -> None:
    """Report drift between two windows of scores (e.g. last week and this week).

    BASELINE and CURRENT are graded JSONL files (convsim grade/online --out) or window
    labels in the store. Each score gets one test over all cohorts and one per cohort,
    chosen by its kind, at conversation level, respecting sampling weights. An alarm
    needs a significant result after multiple-testing correction AND an effect whose
    whole interval lies beyond the score's minimum meaningful effect. Every "no drift"
    shows its minimum detectable effect; a change of cohort mix is reported apart from
    changes within cohorts; scores from different judge configurations are never
    compared silently.
    """
    from ..reports.drift import drift_html
    from ..stats.drift import Window, compare_windows, min_effects_from_rubrics

    effects: dict[str, float] = {}
    if rubrics is not None:
        from ..graders import load_rubrics

        effects.update(min_effects_from_rubrics(load_rubrics(rubrics)))
    for item in min_effect:
        name, sep, value = item.partition("=")
        try:
            effects[name] = float(value)
        except ValueError:
            raise UsageFailure(
                f"--min-effect {item!r}: expected NAME=VALUE with a number"
            ) from None
        if not sep or not name:
            raise UsageFailure(f"--min-effect {item!r}: expected NAME=VALUE")
    windows = [
        Window.from_scores(_scores(ref, store_path), _label(ref)) for ref in (baseline, current)
    ]
    anchor_window = (
        Window.from_scores(_scores(str(anchor), store_path), "anchor") if anchor else None
    )
    by = tuple(t.strip() for t in by_tags.split(",") if t.strip())
    report = compare_windows(
        windows[0],
        windows[1],
        by=by,
        alpha=alpha,
        min_effects=effects,
        min_n=min_n,
        seed=seed,
        anchor=anchor_window,
        cluster=cluster,
    )
    if json_out:
        write_json(json_out, report.to_dict())
    if html_out:
        html_out.write_text(drift_html(report), encoding="utf-8")
    if md_out:
        md_out.write_text(report.to_markdown(), encoding="utf-8")
    if json_out != "-":
        _print(report)
    if fail_on_alarm and report.alarms:
        raise SystemExit(1)


def _label(ref: str) -> str:
    path = Path(ref)
    return path.stem if path.suffix in (".jsonl", ".json", ".gz") else ref


def _scores(ref: str, store_path: Path) -> list[Any]:
    from ..grade import read_scores

    path = Path(ref)
    if path.is_file():
        reader = read_scores(path)
        scores = list(reader)
        for issue in reader.report.issues[:10]:
            click.echo(str(issue), err=True)
        if not scores:
            raise UsageFailure(f"{ref}: no scores (read {reader.report.read} lines)")
        return scores
    if path.suffix in (".jsonl", ".json") or not store_path.exists():
        raise UsageFailure(f"{ref}: no such scores file or window (store {store_path})")
    from ..store import SQLiteStore

    with SQLiteStore(store_path) as store:
        scores = list(store.scores(window=ref))
    if not scores:
        raise UsageFailure(
            f"window {ref!r} has no scores in {store_path}; run `convsim online` first"
        )
    return scores


def _print(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..stats.drift._report import format_effect

    console = Console()
    s = report.summary()
    console.print(
        f"drift {s['baseline']} -> {s['current']}: "
        f"{s['alarms']} alarm(s) in {s['findings']} findings"
        + (f", {s['judge_warnings']} judge warning(s)" if s["judge_warnings"] else "")
    )
    table = Table(title="alarms and significant changes", title_justify="left")
    for col in ("metric", "cohort", "effect [95% CI]", "p adj", "verdict"):
        table.add_column(col, no_wrap=col == "metric")
    for f in report.findings:
        if not (f.alarm or f.significant or f.kind == "judge"):
            continue
        ci = f"[{format_effect(f.ci_low, f.score_kind)}, {format_effect(f.ci_high, f.score_kind)}]"
        verdict = "ALARM" if f.alarm else ("judge" if f.kind == "judge" else "below min effect")
        p = "" if f.p_adjusted is None else f"{f.p_adjusted:.3g}"
        table.add_row(
            f.metric, f.cohort_label, f"{format_effect(f.effect, f.score_kind)} {ci}", p, verdict
        )
    console.print(table)
