"""``convsim grade INPUT --out FILE``: run graders over conversations or a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._calibration import calibration_block, print_calibration, read_labels
from ._common import EndpointClient, LazyFile, UsageFailure, write_json


@click.command("grade")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Scores JSONL to write."
)
@click.option(
    "--rubrics",
    type=click.Path(path_type=Path),
    help="A rubric YAML file or folder; omit to run deterministic checks only.",
)
@click.option(
    "--judge-model",
    metavar="MODEL",
    help="litellm model for rubric judges [default: the offline rule-based judge].",
)
@click.option("--judge-api-base", metavar="URL", help="Endpoint for the judge model.")
@click.option(
    "--samples",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Judge samples per conversation (self-consistency).",
)
@click.option("--redact-pii", is_flag=True, help="Redact PII before content goes to the judge.")
@click.option(
    "--checks", type=click.Path(path_type=Path), help="YAML file of deterministic checks."
)
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    help="Human labels (score JSONL, source: human) to calibrate the judges against.",
)
@click.option(
    "--label-strata",
    metavar="TAG",
    help="The labelled conversations were drawn at random within each value of this tag "
    "(e.g. 50/50 from cohorts that are 80/20 of traffic); the corrected rates weigh them "
    "back. Without it, labels must be a random sample of the graded conversations.",
)
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(path_type=Path),
    default=Path(".convsim/cache.db"),
    show_default=True,
    help="Judge response cache (re-grading unchanged data is free).",
)
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the summary as JSON (- for stdout)."
)
def grade_cmd(
    input_path: Path,
    out: Path,
    rubrics: Path | None,
    judge_model: str | None,
    judge_api_base: str | None,
    samples: int,
    redact_pii: bool,
    checks: Path | None,
    labels: Path | None,
    label_strata: str | None,
    concurrency: int,
    cache_path: Path,
    json_out: str | None,
) -> None:
    """Grade the conversations in INPUT (canonical JSONL or a run's results file).

    Runs outcome checks (from each conversation's expectations), guardrails, implicit
    user signals and, with --rubrics, rubric judges. Scores go to --out; grader failures
    go to OUT.failures.jsonl and are counted, never scored as 0. Judges that have not
    been checked against human labels (--labels) are reported as uncalibrated.
    """
    from ..grade import build_graders, grade_conversations, load_checks, read_gradable
    from ..trace import ScoreFailure
    from ._async import run as run_async
    from ._paths import atomic_output, check_paths

    side = {
        "rejects file": out.with_name(out.name + ".rejects.jsonl"),
        "failures file": out.with_name(out.name + ".failures.jsonl"),
    }
    check_paths(
        inputs={"conversations": input_path, "labels": labels, "checks": checks},
        trees={"rubrics": rubrics},
        outputs={"scores": out, **side, "JSON summary": json_out},
        store=cache_path if rubrics is not None and judge_model else None,
    )
    human = read_labels(labels) if labels else None
    client: Any = None
    model = judge_model or "offline-rules"
    if rubrics is not None:
        if judge_model:
            from .._llm import LiteLLMClient
            from ..calls import ResponseCache

            client = EndpointClient(LiteLLMClient(cache=ResponseCache(cache_path)), judge_api_base)
        else:
            from ..testing import OfflineJudge

            client = OfflineJudge()
    graders = build_graders(
        checks=load_checks(checks) if checks else None,
        rubrics_path=rubrics,
        judge_client=client,
        judge_model=model,
        samples=samples,
        redact_pii=redact_pii,
    )
    rejects = LazyFile(side["rejects file"])
    failures = LazyFile(side["failures file"])
    reader = read_gradable(input_path, rejects=rejects)
    with atomic_output(out) as f:

        def write(item: Any) -> None:
            line = item.model_dump_json(exclude_none=True) + "\n"
            if isinstance(item, ScoreFailure):
                failures.write(line.encode())
            else:
                f.write(line)

        try:
            summary = run_async(
                lambda: grade_conversations(reader, graders, write=write, concurrency=concurrency)
            )
        except BaseException:
            rejects.discard()
            failures.discard()
            raise
        rejects.close()
        failures.close()
        for issue in reader.report.issues[:20]:
            click.echo(str(issue), err=True)
        if reader.report.kept == 0:
            # Raised inside the block: an earlier scores file stays as it was.
            raise UsageFailure(
                f"{input_path}: no gradable conversations (read {reader.report.read})"
            )
    block = calibration_block(out, human, label_strata) if human else None
    report: dict[str, Any] = {
        "input": str(input_path),
        "read": reader.report.read,
        "graded": summary.conversations,
        "rejected": reader.report.rejected,
        "scores": summary.scores,
        "failures": summary.failures,
        "failures_by_type": summary.failures_by_type,
        "by_score": summary.by_name,
        "calibration": block["judges"] if block else {},
        "out": str(out),
    }
    if block:
        report["unmatched_labels"] = block["unmatched_labels"]
        report["label_notes"] = block["notes"]
        report["label_strata"] = block["label_strata"]
    for name, entry in summary.by_name.items():
        if entry.get("judge_model"):
            cal = report["calibration"].get(name)
            entry["calibrated"] = bool(cal and cal.get("calibrated"))
    if json_out:
        write_json(json_out, report)
    if json_out != "-":
        _print_summary(report)


def _print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"graded {report['graded']} conversations from {report['input']}",
        title_justify="left",
    )
    table.add_column("score", no_wrap=True)
    table.add_column("kind")
    table.add_column("n", justify="right")
    table.add_column("mean / labels")
    table.add_column("failures", justify="right")
    table.add_column("judge")
    for name, e in report["by_score"].items():
        value = (
            f"{e['mean']:.3f}"
            if "mean" in e
            else ", ".join(f"{k} {v}" for k, v in e.get("labels", {}).items())
        )
        judge = ""
        if e.get("judge_model"):
            judge = e["judge_model"] + ("" if e.get("calibrated") else " (uncalibrated)")
        table.add_row(name, str(e["kind"] or "-"), str(e["n"]), value, str(e["failures"]), judge)
    console = Console()
    console.print(table)
    console.print(
        f"{report['scores']} scores, {report['failures']} grader failures, "
        f"{report['rejected']} rejected input lines -> {report['out']}"
    )
    if report["calibration"]:
        print_calibration(
            console, report["calibration"], report["unmatched_labels"], report["label_notes"]
        )
