"""``convsim replay TRACES --agent SPEC --out RUN``: re-drive recordings against a candidate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import LazyFile, UsageFailure, store_option, write_json

SHOWN_DIFFS = 3


@click.command("replay")
@click.argument("traces", type=click.Path(path_type=Path))
@click.option(
    "--agent",
    "agent_spec",
    metavar="SPEC",
    help="Candidate agent: module:function, file.py:function, http://..., litellm:MODEL or a YAML.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL file for the replayed results.",
)
@click.option(
    "--mode",
    type=click.Choice(["turns", "as-is"]),
    default="turns",
    show_default=True,
    help="turns: feed the recorded user turns to the candidate; as-is: keep the recording.",
)
@click.option(
    "--on-divergence",
    "policy",
    type=click.Choice(["fail", "live", "simulate"]),
    default="fail",
    show_default=True,
    help="What to do with a tool call the recording cannot answer.",
)
@click.option(
    "--env",
    "environment",
    metavar="NAME",
    help="Live tool environment (for live/simulate), e.g. tau-airline.",
)
@click.option("--strict", is_flag=True, help="Match tool arguments exactly (default: lenient).")
@click.option(
    "--user", default=None, metavar="MODEL", help="User model for --on-divergence simulate."
)
@click.option("--run-id", help="Run name in the store [default: the --out file's stem].")
@click.option("--trials", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--resume", is_flag=True, help="Continue an interrupted replay.")
@store_option()
@click.option(
    "--html",
    "html_out",
    type=click.Path(path_type=Path),
    help="Write the divergence report as HTML.",
)
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the summary as JSON (- for stdout)."
)
@click.option("--progress/--no-progress", default=True)
def replay_cmd(
    traces: Path,
    agent_spec: str | None,
    out: Path,
    mode: str,
    policy: str,
    environment: str | None,
    strict: bool,
    user: str | None,
    run_id: str | None,
    trials: int,
    concurrency: int,
    seed: int,
    resume: bool,
    store_path: Path,
    html_out: Path | None,
    json_out: str | None,
    progress: bool,
) -> None:
    """Replay the recorded conversations in TRACES (canonical JSONL) against a candidate.

    The candidate hears the recorded user turns; its tool calls are answered from the
    recording when name and arguments match. Every conversation gets a divergence
    report (first diverging turn, its kind, text similarity, side-by-side diff). The
    same inputs and seed give byte-identical results.
    """
    from ..agents import agent_files, load_agent
    from ..datasets import read_conversations
    from ..envs import environment_factory
    from ..replay import ReplayOptions, replay, report_of, side_by_side
    from ..reports import divergence_counts, replay_html
    from ..runner import RunConfig
    from ..simulate import make_user_factory
    from ..store import SQLiteStore
    from ._async import run as run_async

    if mode == "turns" and not agent_spec:
        raise UsageFailure("--mode turns needs --agent SPEC (or use --mode as-is)")
    if policy in ("live", "simulate") and not environment:
        raise UsageFailure(f"--on-divergence {policy} needs --env NAME for the live tools")
    if policy == "simulate" and not user:
        raise UsageFailure(
            "--on-divergence simulate needs --user MODEL to continue the conversation"
        )
    from ._paths import check_paths, write_text_atomically

    reject_path = out.with_name(out.name + ".rejects.jsonl")
    check_paths(
        inputs={
            "recorded conversations": traces,
            **{f"agent ({p.name})": p for p in agent_files(agent_spec or "")},
        },
        outputs={
            "results": out,
            "rejects file": reject_path,
            "HTML report": html_out,
            "JSON summary": json_out,
        },
        store=store_path,
    )
    rejects = LazyFile(reject_path)
    try:
        reader = read_conversations(traces, rejects=rejects)
        recordings = list(reader)
    except BaseException:
        rejects.discard()
        raise
    rejects.close()
    for issue in reader.report.issues[:20]:
        click.echo(str(issue), err=True)
    if not recordings:
        raise UsageFailure(f"{traces}: no valid conversations to replay")
    agent = load_agent(agent_spec) if agent_spec else None
    options = ReplayOptions(
        mode="as-is" if mode == "as-is" else "turns",
        policy="live" if policy == "live" else "simulate" if policy == "simulate" else "fail",
        lenient=not strict,
        environment=environment_factory(environment) if environment else None,
        user_factory=make_user_factory(user) if user else None,
    )
    config = RunConfig(
        run_id=run_id or out.stem,
        kind="replay",
        agent=agent_spec or "(as-is)",
        environment=environment,
        source=str(traces),
        trials=trials,
        concurrency=concurrency,
        seed=seed,
        progress=progress,
        options={"mode": mode, "on_divergence": policy, "strict": strict, "user": user},
    )
    with SQLiteStore(store_path) as store:
        summary = run_async(
            lambda: replay(config, recordings, agent, store=store, options=options, resume=resume)
        )
        store.export_jsonl("results", out, run_id=config.run_id)
        reports = [rep for r in store.results(config.run_id) if (rep := report_of(r)) is not None]
    counts = divergence_counts(reports)
    if html_out:
        write_text_atomically(html_out, replay_html(reports))
    result: dict[str, Any] = {
        "run_id": config.run_id,
        "replayed": summary.completed,
        "skipped_already_done": summary.skipped,
        "rejected_input": reader.report.rejected,
        "terminations": summary.terminations,
        "first_divergence": counts,
        "diverged": sum(v for k, v in counts.items() if k != "none"),
        "results_file": str(out),
        "html": str(html_out) if html_out else None,
    }
    if json_out:
        write_json(json_out, result)
    if json_out != "-":
        for r in [r for r in reports if r.first is not None][:SHOWN_DIFFS]:
            click.echo(side_by_side(r))
        click.echo(
            f"replayed {summary.completed} conversations ({summary.skipped} already done): "
            f"{result['diverged']} diverged; first divergence by kind: {counts} -> {out}"
        )
