"""The replay divergence report: terminal summary and a self-contained HTML page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..replay import ReplayReport
from ._html import escape, page, table


def divergence_counts(reports: Sequence[ReplayReport]) -> dict[str, int]:
    """How many conversations first diverged in each way (``none`` for none)."""
    counts = Counter(r.first.kind if r.first else "none" for r in reports)
    return dict(sorted(counts.items()))


def replay_html(reports: Sequence[ReplayReport], title: str = "Replay divergence report") -> str:
    """One page: a summary table, then a side-by-side diff per diverging conversation."""
    counts = divergence_counts(reports)
    diverged = [r for r in reports if r.first is not None]
    summary = table(
        ["first divergence", "conversations"],
        [[escape(k), str(v)] for k, v in counts.items()],
        numeric={1},
    )
    rows = []
    for r in reports:
        first = r.first
        status = (
            "<span class=ok>follows the recording</span>"
            if first is None
            else (f"<span class=bad>turn {first.turn}: {escape(first.kind)}</span>")
        )
        sim = "" if r.text_similarity is None else f"{r.text_similarity:.3f}"
        rows.append(
            [escape(r.conversation_id), status, str(r.matched_calls), str(r.unmatched_calls), sim]
        )
    overview = table(
        ["conversation", "first divergence", "matched calls", "unmatched calls", "text similarity"],
        rows,
        numeric={2, 3, 4},
    )
    details = []
    for r in diverged:
        parts = [f"<h2 id='{escape(r.conversation_id)}'>{escape(r.conversation_id)}</h2>"]
        for d in r.divergences:
            sim = f" · similarity {d.similarity:.3f}" if d.similarity is not None else ""
            parts.append(
                f"<p><span class=pill>turn {d.turn}</span> <b>{escape(d.kind)}</b>{sim}</p>"
                "<div class=grid>"
                f"<div class='cell del'><div class=muted>recorded</div>"
                f"<pre>{escape(d.expected or '(nothing)')}</pre></div>"
                f"<div class='cell add'><div class=muted>candidate</div>"
                f"<pre>{escape(d.actual or '(nothing)')}</pre></div>"
                "</div>"
            )
        details.append("".join(parts))
    body = (
        f"<p>{len(reports)} conversations replayed; {len(diverged)} diverged.</p>"
        f"{summary}<h2>Conversations</h2>{overview}{''.join(details)}"
    )
    return page(title, body, subtitle="recorded turns re-driven against a candidate agent")
