"""``convsim review`` and ``convsim harvest``: from flagged production to offline cases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._common import UsageFailure, store_option, write_json

_STORE = store_option("SQLite store holding the review queue.")


@click.command("review")
@click.option("--window", help="Only this window's queue.")
@click.option(
    "--decisions",
    type=click.Path(path_type=Path),
    help="Apply decisions from a JSON/YAML list instead of prompting (for automation).",
)
@click.option(
    "--reviewer", default="reviewer", show_default=True, help="Name recorded with each decision."
)
@click.option("--list", "list_only", is_flag=True, help="Only list the pending items.")
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the queue state as JSON (- for stdout)."
)
@_STORE
def review_cmd(
    window: str | None,
    decisions: Path | None,
    reviewer: str,
    list_only: bool,
    json_out: str | None,
    store_path: Path,
) -> None:
    """Confirm or reject the conversations in the review queue.

    Interactive by default: each pending item shows why it was flagged and the end of
    the conversation; answer c(onfirm), r(eject), s(kip) or q(uit), then a label and the
    expected behaviour. With --decisions FILE, a list of {id | window+conversation_id,
    decision: confirm|reject, label, expected} is applied without prompting.
    """
    from .._yaml import read_yaml
    from ..harvest import apply_decisions
    from ..store import SQLiteStore
    from ._paths import check_paths

    check_paths(
        inputs={"decisions": decisions},
        outputs={"JSON summary": json_out},
        store=store_path,
        existing_store=True,
    )
    with SQLiteStore(store_path) as store:
        if decisions is not None:
            data = read_yaml(decisions, "decisions")
            if not isinstance(data, list):
                raise UsageFailure(f"{decisions}: expected a list of decisions")
            n = apply_decisions(store, data, reviewer=reviewer)
            click.echo(f"recorded {n} decisions", err=True)
        elif not list_only:
            if not sys.stdin.isatty():
                raise UsageFailure("no terminal to prompt on; pass --decisions FILE or --list")
            _interactive(store, window, reviewer)
        pending = store.review_items(window, "pending")
        state = {
            "pending": len(pending),
            "confirmed": len(store.review_items(window, "confirmed")),
            "rejected": len(store.review_items(window, "rejected")),
            "items": [
                {k: v for k, v in item.items() if k != "conversation"}
                for item in store.review_items(window)
            ],
        }
    if json_out:
        write_json(json_out, state)
    if json_out != "-":
        for item in pending:
            click.echo(
                f"#{item['id']} {item['window']} {item['conversation_id']} "
                f"[cluster {item['cluster']}] {'; '.join(item['reasons'])[:150]}"
            )
        counts = (state["pending"], state["confirmed"], state["rejected"])
        click.echo("{} pending, {} confirmed, {} rejected".format(*counts))


def _interactive(store: Any, window: str | None, reviewer: str) -> None:
    from ..trace import Conversation

    for item in store.review_items(window, "pending"):
        conv = Conversation.model_validate_json(item["conversation"])
        click.echo(
            click.style(
                f"\n#{item['id']} {item['conversation_id']} (window {item['window']})", bold=True
            )
        )
        for reason in item["reasons"]:
            click.echo(f"  flagged: {reason}")
        for m in conv.messages[-6:]:
            text = (m.text or ", ".join(c.name for c in getattr(m, "tool_calls", [])))[:300]
            click.echo(f"  {m.role:>9}: {text}")
        choice = click.prompt(
            "c(onfirm) r(eject) s(kip) q(uit)", type=click.Choice(["c", "r", "s", "q"])
        )
        if choice == "q":
            return
        if choice == "s":
            continue
        label = click.prompt("label", default="", show_default=False) or None
        expected = (
            click.prompt(
                "expected behaviour (text or JSON expectations)", default="", show_default=False
            )
            or None
        )
        store.set_review(
            item["id"],
            "confirmed" if choice == "c" else "rejected",
            reviewer=reviewer,
            label=label,
            expected=expected,
        )


@click.command("harvest")
@click.option(
    "--dataset",
    required=True,
    type=click.Path(path_type=Path),
    help="Append-only dataset (JSONL of evaluation cases) to promote into.",
)
@click.option("--window", help="Only this window's confirmed items.")
@click.option(
    "--holdout-share",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of cases kept in the held-out split (chosen by a hash of the case id).",
)
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON (- for stdout).")
@_STORE
def harvest_cmd(
    dataset: Path, window: str | None, holdout_share: float, json_out: str | None, store_path: Path
) -> None:
    """Promote confirmed review items into an offline dataset as evaluation cases.

    Each case is a replay cassette of the conversation with a derived persona and goal,
    the reviewer's expectations, and provenance (window, conversation id, reviewer,
    label, date). A conversation is never added twice.
    """
    from ..harvest import harvest
    from ..store import SQLiteStore
    from ._paths import check_paths

    # The dataset is appended to, not replaced: it only has to be a writable file.
    check_paths(
        outputs={"dataset": dataset, "JSON summary": json_out},
        store=store_path,
        existing_store=True,
    )
    with SQLiteStore(store_path) as store:
        added, skipped = harvest(store, dataset, window=window, holdout_share=holdout_share)
    result = {"dataset": str(dataset), "added": added, "already_present": skipped}
    if json_out:
        write_json(json_out, result)
    click.echo(
        f"harvested {added} new cases into {dataset} ({skipped} already there)", err=json_out == "-"
    )
