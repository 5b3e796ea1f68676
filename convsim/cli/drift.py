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
    metavar="auto|TAG|none",
    default="auto",
    show_default=True,
    help="What makes conversations correlated. auto: the scores' user ids (metadata "
    "user_id at import), whenever there are any; TAG: a tag holding a user or account id; "
    "none: assume independent conversations (the report then says so).",
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
    cluster: str,
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
    chosen by its kind, at conversation level: each window's cohort cells are estimated
    with their own sampling weights (1 / inclusion probability), so a sampling rate that
    changed between the windows changes the precision, not the answer; variances are
    clustered by user when the scores carry user ids. An
    alarm needs a significant result after multiple-testing correction AND an effect
    whose whole interval lies beyond the score's minimum meaningful effect. Every "no
    drift" shows its minimum detectable effect; a change of cohort mix is reported
    apart from changes within cohorts; the anchor set that `convsim online` re-judges
    every window tells a judge change from a product change.
    """
    from ..reports.drift import drift_html
    from ..stats.drift import Window, compare_windows, min_effects_from_rubrics
    from ._paths import check_paths, write_text_atomically

    files = {
        what: Path(ref)
        for what, ref in (("baseline scores", baseline), ("current scores", current))
        if Path(ref).exists() or Path(ref).suffix in (".jsonl", ".json", ".gz")
    }
    check_paths(
        inputs={**files, "anchor scores": anchor},
        trees={"rubrics": rubrics},
        outputs={"JSON report": json_out, "HTML report": html_out, "Markdown report": md_out},
        store=store_path,
    )
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
        cluster=None if cluster.lower() == "none" else cluster,
    )
    if json_out:
        write_json(json_out, report.to_dict())
    if html_out:
        write_text_atomically(html_out, drift_html(report))
    if md_out:
        write_text_atomically(md_out, report.to_markdown())
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

    from ..stats.drift._report import HEADLINE_TITLES, format_effect, verdict

    console = Console()
    s = report.summary()
    console.print(
        f"drift {s['baseline']} -> {s['current']}: "
        f"{s['alarms']} alarm(s) in {s['findings']} findings"
        + (f", {s['judge_warnings']} judge warning(s)" if s["judge_warnings"] else "")
        + f"; clustering: {report.clustering or 'none'}"
    )
    # Notes quote judge configurations in brackets, which are not markup.
    for caveat in report.caveats:
        console.print(f"caveat: {caveat}", style="yellow", markup=False, highlight=False)
    for f in report.judge_warnings:
        console.print(f"judge: {f.metric}: {f.note}", style="red", markup=False, highlight=False)
    head = report.headline()
    if not head:
        console.print("no alarm, no significant change, no large effect")
    for group in ("alarm", "significant", "underpowered"):
        rows = [f for g, f in head if g == group]
        if not rows:
            continue
        table = Table(title=HEADLINE_TITLES[group], title_justify="left")
        for col in ("metric", "cohort", "effect [95% CI]", "p adj", "MDE", "verdict"):
            table.add_column(col, no_wrap=col == "metric")
        for f in rows[:_SHOWN]:
            ci = (
                f"[{format_effect(f.ci_low, f.score_kind)}, "
                f"{format_effect(f.ci_high, f.score_kind)}]"
            )
            p = "" if f.p_adjusted is None else f"{f.p_adjusted:.3g}"
            table.add_row(
                f.metric,
                f.cohort_label,
                f"{format_effect(f.effect, f.score_kind)} {ci}",
                p,
                format_effect(f.mde, f.score_kind, signed=False),
                verdict(f),
            )
        console.print(table)
        if len(rows) > _SHOWN:
            console.print(f"... and {len(rows) - _SHOWN} more (see --json, --markdown, --html)")


_SHOWN = 10
"""Rows of each headline group shown in the terminal; the reports have them all."""
