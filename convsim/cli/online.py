"""``convsim online INPUT --policy FILE --rubrics PATH --window LABEL``: grade a window."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._calibration import calibration_block, print_calibration, read_labels
from ._common import EndpointClient, LazyFile, UsageFailure, store_option, write_json

if TYPE_CHECKING:
    from ..datasets import ReadReport


@click.command("online")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--policy", required=True, type=click.Path(path_type=Path), help="Sampling policy YAML."
)
@click.option("--window", required=True, help="Window label, e.g. 2026-W48.")
@click.option(
    "--rubrics", type=click.Path(path_type=Path), help="Rubrics for the judges (sampled only)."
)
@click.option(
    "--judge-model", metavar="MODEL", help="litellm judge model [default: offline rules]."
)
@click.option("--judge-api-base", metavar="URL", help="Endpoint for the judge model.")
@click.option("--checks", type=click.Path(path_type=Path), help="Deterministic checks YAML.")
@click.option("--by", "by_tag", help="Also estimate per value of this tag.")
@click.option(
    "--census",
    type=click.Path(path_type=Path),
    help="Known number of conversations per value of the --by tag (YAML or JSON mapping): "
    "the whole-window estimate is then post-stratified.",
)
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    help="Human labels (score JSONL, source: human) of judged conversations: each judge's "
    "window rate is corrected with them (PPI, Rogan-Gladen).",
)
@click.option(
    "--label-strata",
    metavar="TAG",
    help="The labelled conversations were drawn at random within each value of this tag.",
)
@click.option(
    "--review-top",
    default=20,
    show_default=True,
    type=click.IntRange(min=0),
    help="Queue this many of the worst conversations for review.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Also write the window's scores as JSONL."
)
@click.option(
    "--rejects",
    "reject_path",
    type=click.Path(path_type=Path),
    help="Copy the input lines that are not valid conversations here, verbatim.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    help="Write every sampling decision (sampled or not, by which rule) as JSONL.",
)
@store_option()
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the summary as JSON (- for stdout)."
)
def online_cmd(
    input_path: Path,
    policy: Path,
    window: str,
    rubrics: Path | None,
    judge_model: str | None,
    judge_api_base: str | None,
    checks: Path | None,
    by_tag: str | None,
    census: Path | None,
    labels: Path | None,
    label_strata: str | None,
    review_top: int,
    out: Path | None,
    reject_path: Path | None,
    log_path: Path | None,
    store_path: Path,
    json_out: str | None,
) -> None:
    """Grade a window of production conversations (e.g. a week, imported to canonical JSONL).

    Deterministic guardrails, signals and checks run on every conversation; rubric
    judges only on the conversations the sampling policy picks, each recording its
    inclusion probability and sampling rule, and again on the anchor set (a fixed set of
    conversations kept in the store and judged every window, so `convsim drift` can
    tell a judge that changed from a product that changed). Scores go to the store under
    the window label, estimates are weighted back to the whole window (shown beside the
    unweighted ones), and the worst conversations are queued for review.
    """
    from ..grade import build_graders, load_checks
    from ..graders import RubricJudge
    from ..online import (
        conversations_from,
        grade_window,
        load_census,
        load_policy,
        window_estimates,
    )
    from ..store import SQLiteStore
    from ._async import run as run_async
    from ._paths import atomic_output, check_paths

    check_paths(
        inputs={
            "conversations (canonical JSONL, from convsim import)": input_path,
            "sampling policy": policy,
            "checks": checks,
            "census": census,
            "labels": labels,
        },
        trees={"rubrics": rubrics},
        outputs={
            "scores": out,
            "rejects file": reject_path,
            "decision log": log_path,
            "JSON summary": json_out,
        },
        store=store_path,
    )
    if census is not None and by_tag is None:
        raise UsageFailure("--census gives the size of each value of a tag: add --by TAG")
    sizes = load_census(census) if census is not None else None
    human = read_labels(labels) if labels is not None else None
    sampling = load_policy(policy)
    client: Any = None
    fresh: Any = None
    if rubrics is not None:
        if judge_model:
            from .._llm import LiteLLMClient
            from ..calls import ResponseCache

            cache = ResponseCache(store_path.parent / "cache.db")
            client = EndpointClient(LiteLLMClient(cache=cache), judge_api_base)
            # The anchor set is judged without the cache: a cached answer would hide
            # the very judge change the anchors are there to catch.
            fresh = EndpointClient(LiteLLMClient(), judge_api_base)
        else:
            from ..testing import OfflineJudge

            client = fresh = OfflineJudge()

    def judges_of(judge_client: Any) -> tuple[list[Any], list[Any]]:
        graders = build_graders(
            checks=load_checks(checks) if checks else None,
            rubrics_path=rubrics,
            judge_client=judge_client,
            judge_model=judge_model or "offline-rules",
        )
        return (
            [g for g in graders if isinstance(g, RubricJudge)],
            [g for g in graders if not isinstance(g, RubricJudge)],
        )

    judges, deterministic = judges_of(client)
    anchor_judges = judges_of(fresh)[0] if judges else []
    read, groups = _scan(input_path, reject_path, by_tag)
    if sizes is not None:
        # Checked before anything is judged or stored, not after.
        missing = sorted(groups - set(sizes))
        if missing:
            raise UsageFailure(
                f"{census}: no size for {by_tag} = {', '.join(missing[:5])}, which the window "
                f"holds; give every value of {by_tag} its number of conversations"
            )
    with SQLiteStore(store_path) as store:
        result = run_async(
            lambda: grade_window(
                conversations_from(input_path),
                sampling,
                window=window,
                checks=deterministic,
                judges=judges,
                store=store,
                review_top=review_top,
                anchor_judges=anchor_judges,
            )
        )
    if log_path:
        with atomic_output(log_path) as f:
            f.writelines(d.model_dump_json() + "\n" for d in result.decisions)
    if out:
        with atomic_output(out) as f:
            f.writelines(
                s.model_dump_json(exclude_none=True) + "\n"
                for s in result.scores + result.anchor_scores
            )
    try:
        estimates = window_estimates(result.scores, by=by_tag, census=sizes)
    except ValueError as e:
        raise UsageFailure(f"{census}: {e}") from None
    block = None
    if human is not None:
        block = calibration_block(result.scores, human, label_strata)
    rep = result.report
    summary: dict[str, Any] = {
        "window": window,
        "input": {
            "read": read.read,
            "rejected": read.rejected,
            "rejects": reject_path and str(reject_path),
        },
        "conversations": len(result.decisions),
        "judged": sum(1 for d in result.decisions if d.judged),
        "budget_skipped": sum(1 for d in result.decisions if d.budget_skipped),
        "by_rule": {
            name: {"rate": t.rate, "seen": t.seen, "sampled": t.sampled, "judged": t.judged}
            for name, t in rep.by_rule.items()
        },
        "scores": len(result.scores),
        "failures": len(result.failures),
        "queued_for_review": result.queued,
        "anchors": {
            "conversations": result.anchors,
            "added": result.anchors_added,
            "scores": len(result.anchor_scores),
        },
        "calibration": block["judges"] if block else {},
        "estimates": [
            {
                "score": e.name,
                "group": e.group,
                "n": e.n,
                "weighted": e.weighted.estimate,
                "weighted_low": e.weighted.low,
                "weighted_high": e.weighted.high,
                "method": "post-stratified" if e.weighted.stratified else e.weighted.method,
                "unweighted": e.unweighted.estimate,
            }
            for e in estimates
        ],
    }
    if block:
        summary["unmatched_labels"] = block["unmatched_labels"]
        summary["label_notes"] = block["notes"]
        summary["label_strata"] = block["label_strata"]
    if json_out:
        write_json(json_out, summary)
    if json_out != "-":
        _print(summary)


def _scan(path: Path, reject_path: Path | None, by_tag: str | None) -> tuple[ReadReport, set[str]]:
    """Read the window once before anything is judged or stored.

    Bad lines are reported (and copied to ``reject_path``), and a window without a
    single conversation is refused rather than stored as an empty window. Returns the
    read report and the values of ``by_tag`` the window holds.
    """
    from ..datasets import read_conversations
    from ..online import MISSING_GROUP

    groups: set[str] = set()

    sink = LazyFile(reject_path) if reject_path is not None else None
    reader = read_conversations(path, rejects=sink)
    try:
        for conv in reader:
            if by_tag is not None:
                groups.add(conv.tags.get(by_tag, MISSING_GROUP))
    except BaseException:
        if sink is not None:
            sink.discard()
        raise
    if sink is not None:
        sink.close()
    rep = reader.report
    for issue in rep.issues[:20]:
        click.echo(str(issue), err=True)
    if rep.rejected > 20:
        click.echo(f"... and {rep.rejected - 20} more rejected lines", err=True)
    if rep.kept == 0:
        raise UsageFailure(
            f"{path}: no conversations to grade ({rep.read} lines read, {rep.rejected} "
            "rejected); give canonical JSONL, as `convsim import` writes"
        )
    return rep, groups


def _print(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    anchors = summary["anchors"]
    console.print(
        f"window {summary['window']}: {summary['conversations']} conversations, "
        f"{summary['judged']} judged, {summary['budget_skipped']} skipped by the budget, "
        f"{summary['queued_for_review']} queued for review"
        + (
            f"; anchor set of {anchors['conversations']} judged again"
            + (f" ({anchors['added']} added this window)" if anchors["added"] else "")
            if anchors["conversations"]
            else ""
        )
    )
    read = summary["input"]
    if read["rejected"]:
        console.print(
            f"{read['rejected']} of {read['read']} input lines were not valid conversations"
            + (
                f" (copied to {read['rejects']})"
                if read["rejects"]
                else "; pass --rejects FILE to keep them"
            )
        )
    rules = Table(title="sampling by rule", title_justify="left")
    for col in ("rule", "seen", "sampled", "judged"):
        rules.add_column(col, justify="left" if col == "rule" else "right")
    for name, t in summary["by_rule"].items():
        rules.add_row(name, str(t["seen"]), str(t["sampled"]), str(t["judged"]))
    console.print(rules)
    est = Table(title="window estimates (weighted back to all traffic)", title_justify="left")
    for col in ("score", "group", "n", "weighted (95% CI)", "unweighted"):
        est.add_column(col, no_wrap=col == "score")
    for e in summary["estimates"]:
        ci = f"{e['weighted']:.3f} ({e['weighted_low']:.3f}-{e['weighted_high']:.3f})"
        if e["method"] == "post-stratified":
            ci += " post-stratified"
        est.add_row(e["score"], e["group"] or "all", str(e["n"]), ci, f"{e['unweighted']:.3f}")
    console.print(est)
    if summary["calibration"]:
        print_calibration(
            console, summary["calibration"], summary["unmatched_labels"], summary["label_notes"]
        )
