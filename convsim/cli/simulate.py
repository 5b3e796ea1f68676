"""``convsim simulate``: persona simulations against an agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import UsageFailure, store_option, write_json


@click.command("simulate")
@click.option(
    "--agent",
    "agent_spec",
    required=True,
    metavar="SPEC",
    help="module:function, file.py:function, http://host/v1, litellm:MODEL or agent.yaml.",
)
@click.option(
    "--personas",
    required=True,
    type=click.Path(path_type=Path),
    help="A persona YAML file or a folder of them.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL file that receives the run's results (one conversation per line).",
)
@click.option("--run-id", help="Run name in the store [default: the --out file's stem].")
@click.option("--trials", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--max-turns", default=10, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--user",
    default="scripted",
    show_default=True,
    metavar="scripted|MODEL",
    help="Play users from their scripted turns, or with a litellm model.",
)
@click.option("--env", "environment", metavar="NAME", help="Tool environment, e.g. tau-airline.")
@click.option("--system-prompt", help="Agent system prompt (text, or @file).")
@click.option("--call-timeout", default=120.0, show_default=True, type=float)
@click.option("--conversation-timeout", default=900.0, show_default=True, type=float)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted run; finished conversations are kept."
)
@store_option("SQLite store file.")
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the run summary as JSON (- for stdout)."
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on a terminal.")
def simulate_cmd(
    agent_spec: str,
    personas: Path,
    out: Path,
    run_id: str | None,
    trials: int,
    concurrency: int,
    seed: int,
    max_turns: int,
    user: str,
    environment: str | None,
    system_prompt: str | None,
    call_timeout: float,
    conversation_timeout: float,
    resume: bool,
    store_path: Path,
    json_out: str | None,
    progress: bool,
) -> None:
    """Simulate persona-driven users talking to an agent, TRIALS times each.

    Every (persona, trial) is stored under the run as soon as it finishes. A killed run
    continues with --resume, without redoing or duplicating finished conversations; a
    changed configuration is refused with a diff. Errors inside a conversation are
    recorded with their reason, never dropped.
    """
    from ..agents import agent_files, load_agent
    from ..envs import environment_factory
    from ..runner import RunConfig
    from ..simulate import make_user_factory, personas_hash, simulate
    from ..store import SQLiteStore
    from ..users import load_personas
    from ._async import run as run_async
    from ._paths import check_paths

    prompt_file = Path(system_prompt[1:]) if system_prompt and system_prompt[:1] == "@" else None
    check_paths(
        inputs={
            "system prompt": prompt_file,
            **{f"agent ({p.name})": p for p in agent_files(agent_spec)},
        },
        trees={"personas": personas},
        outputs={"results": out, "JSON summary": json_out},
        store=store_path,
    )
    loaded = load_personas(personas)
    prompt = system_prompt
    if prompt_file is not None:  # checked by check_paths above
        prompt = prompt_file.read_text(encoding="utf-8")
        if not prompt.strip():
            # Most likely the wrong file: running without the prompt would look fine.
            raise UsageFailure(
                f"{prompt_file}: the system prompt file is empty; write the prompt in it, "
                "or leave out --system-prompt"
            )
    agent = load_agent(agent_spec, system_prompt=prompt)
    env_factory = environment_factory(environment) if environment else None
    config = RunConfig(
        run_id=run_id or out.stem,
        agent=agent_spec,
        user=user,
        environment=environment,
        source=str(personas),
        source_hash=personas_hash(loaded),
        trials=trials,
        concurrency=concurrency,
        seed=seed,
        max_turns=max_turns,
        call_timeout=call_timeout,
        conversation_timeout=conversation_timeout,
        # The prompt's hash identifies it in reports; the text itself stays in the config.
        options={"system_prompt": prompt, "prompt_hash": _hash(prompt)} if prompt else {},
        progress=progress,
    )
    with SQLiteStore(store_path) as store:
        summary = run_async(
            lambda: simulate(
                config,
                loaded,
                agent,
                store=store,
                user_factory=make_user_factory(user),
                environment=env_factory,
                resume=resume,
            )
        )
        exported = store.export_jsonl("results", out, run_id=config.run_id)
    report: dict[str, Any] = {
        "run_id": summary.run_id,
        "planned": summary.planned,
        "skipped_already_done": summary.skipped,
        "completed": summary.completed,
        "terminations": summary.terminations,
        "usage": {k: v.model_dump(exclude_none=True) for k, v in summary.usage.items()},
        "wall_s": round(summary.wall_s, 3),
        "results_file": str(out),
        "results": exported,
        "store": str(store_path),
    }
    if json_out:
        write_json(json_out, report)
    ends = ", ".join(f"{k} {v}" for k, v in sorted(summary.terminations.items())) or "none"
    click.echo(
        f"run {summary.run_id}: {summary.completed} conversations in {summary.wall_s:.1f}s "
        f"({summary.skipped} already done); endings: {ends}; {exported} results -> {out}",
        err=json_out == "-",
    )


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]
