"""The review queue and harvest: confirmed production failures become offline test cases.

Low-scoring online conversations go to a review queue (lowest N per window, by a chosen
score, or anything that failed a guardrail or check), with near-duplicates clustered so a
reviewer sees one representative per cluster first. A reviewer confirms or rejects each
item. Confirmed items are promoted, with provenance, into an append-only dataset as
evaluation cases: the recording as a replay cassette, a persona and goal derived from
it, expectations, and the signature of the failure, so the next pre-deploy run tests for
it forever.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from .datasets import CaseProvenance, EvalCase, EvalCaseAdapter, JsonlReader, append_cases
from .errors import ConfigError
from .replay import persona_from_recording
from .store import SQLiteStore
from .trace import Conversation, Score, UserMessage

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Flag:
    """Why a conversation was flagged."""

    score: str
    """Score name."""
    value: bool | float | str
    """The bad value."""
    reason: str
    """The grader's reason."""


def flags_for(
    scores: Iterable[Score], score_name: str | None = None, threshold: float | None = None
) -> list[Flag]:
    """The failing scores of one conversation.

    A binary guardrail, outcome or rubric score that is false is a failure; ``signal.*``
    scores are observations, and a present signal (true) is the flag. With
    ``score_name`` and ``threshold``, that score below the threshold is flagged too.
    """
    out = []
    for s in scores:
        if s.kind == "binary":
            bad = s.value is True if s.name.startswith("signal.") else s.value is False
            if bad:
                out.append(Flag(s.name, s.value, s.reason or ""))
        elif (
            score_name and s.name == score_name and threshold is not None and s.numeric is not None
        ):
            if s.numeric < threshold:
                out.append(Flag(s.name, s.value, s.reason or f"below {threshold}"))
    return out


def near_duplicate_key(conversation: Conversation, k: int = 4) -> str:
    """A cluster key: the k smallest hashes of the user turns' word 3-grams (a MinHash sketch).

    Conversations that share their sketch almost surely say nearly the same things, so
    they are shown to the reviewer as one cluster.
    """
    words = _WORD.findall(
        " ".join(m.text.lower() for m in conversation.messages if isinstance(m, UserMessage))
    )
    grams = {" ".join(words[i : i + 3]) for i in range(max(len(words) - 2, 1))}
    hashes = sorted(int(hashlib.sha1(g.encode()).hexdigest()[:12], 16) for g in grams)
    return hashlib.sha1(",".join(map(str, hashes[:k])).encode()).hexdigest()[:10]


def fill_review_queue(
    store: SQLiteStore,
    window: str,
    conversations: Iterable[Conversation],
    scores: Iterable[Score],
    *,
    limit: int = 20,
    score_name: str | None = None,
    threshold: float | None = None,
) -> int:
    """Queue the ``limit`` worst conversations of a window; return how many were added.

    Worst means: most failed checks first, then the lowest value of ``score_name`` (when
    given). One representative per near-duplicate cluster is queued before any second
    member of a cluster.
    """
    by_conv: dict[str, list[Score]] = {}
    for s in scores:
        by_conv.setdefault(s.conversation_id, []).append(s)
    Candidate = tuple[tuple[float, float, str], Conversation, list[Flag], float | None]
    candidates: list[Candidate] = []
    for conv in conversations:
        own = by_conv.get(conv.id, [])
        flags = flags_for(own, score_name, threshold)
        value = next(
            (s.numeric for s in own if s.name == score_name and s.numeric is not None), None
        )
        low = value is not None and (threshold is None or value < threshold)
        if not flags and not low:
            continue
        rank = (-float(len(flags)), value if value is not None else float("inf"), conv.id)
        candidates.append((rank, conv, flags, value))
    candidates.sort(key=lambda c: c[0])
    seen_clusters: set[str] = set()
    firsts: list[tuple[Candidate, str]] = []
    rest: list[tuple[Candidate, str]] = []
    for item in candidates:
        key = near_duplicate_key(item[1])
        (rest if key in seen_clusters else firsts).append((item, key))
        seen_clusters.add(key)
    added = 0
    for (_, conv, flags, value), cluster in (firsts + rest)[:limit]:
        reasons = [f"{f.score}={f.value}: {f.reason}" for f in flags] or [f"{score_name}={value}"]
        if store.enqueue_review(
            window,
            conv.model_dump_json(exclude_none=True),
            conv.id,
            reasons,
            score=value,
            cluster=cluster,
        ):
            added += 1
    return added


def apply_decisions(
    store: SQLiteStore, decisions: Sequence[Mapping[str, Any]], *, reviewer: str
) -> int:
    """Record reviewer decisions given as data; return how many were recorded.

    Each decision names its item by ``id`` (or ``window`` + ``conversation_id``) and has
    ``decision`` (confirm or reject), optionally ``label``, ``expected`` and ``reviewer``.
    """
    items = store.review_items()
    by_conv = {(i["window"], i["conversation_id"]): i for i in items}
    by_id = {i["id"]: i for i in items}
    done = 0
    for n, d in enumerate(decisions):
        item = (
            by_id.get(d.get("id"))
            if "id" in d
            else by_conv.get((d.get("window"), d.get("conversation_id")))
        )
        if item is None:
            raise ConfigError(f"decision {n}: no such review item ({dict(d)})")
        decision = d.get("decision")
        if decision not in ("confirm", "reject"):
            raise ConfigError(
                f"decision {n}: decision must be 'confirm' or 'reject', not {decision!r}"
            )
        expected = d.get("expected")
        store.set_review(
            int(item["id"]),
            "confirmed" if decision == "confirm" else "rejected",
            reviewer=str(d.get("reviewer") or reviewer),
            label=str(d["label"]) if d.get("label") is not None else None,
            expected=json.dumps(expected)
            if expected is not None and not isinstance(expected, str)
            else expected,
        )
        done += 1
    return done


def holdout(case_id: str, share: float) -> bool:
    """Deterministically put ``share`` of cases in the held-out split, by a hash of the id."""
    u = int(hashlib.sha256(f"holdout:{case_id}".encode()).hexdigest()[:16], 16) / 2**64
    return u < share


def harvest(
    store: SQLiteStore,
    dataset: str | os.PathLike[str],
    *,
    window: str | None = None,
    holdout_share: float = 0.2,
) -> tuple[int, int]:
    """Promote confirmed review items into ``dataset``; return (added, already there).

    Each case keeps its provenance (window, conversation id, reviewer, label, date) and
    the failure it was flagged for. A conversation already harvested is never added
    twice, whatever changed in its review since.
    """
    path = Path(dataset)
    existing: set[str] = set()
    if path.exists() and path.stat().st_size > 0:
        existing = {c.id for c in JsonlReader(path, EvalCaseAdapter)}
    new: list[EvalCase] = []
    skipped = 0
    for item in store.review_items(window, "confirmed"):
        case_id = f"harvest-{item['window']}-{item['conversation_id']}"
        if case_id in existing:
            skipped += 1
            continue
        conv = Conversation.model_validate_json(item["conversation"])
        new.append(_case(case_id, conv, item, holdout_share))
        existing.add(case_id)
    added, _ = append_cases(path, new)
    return added, skipped


def _case(
    case_id: str, conv: Conversation, item: Mapping[str, Any], holdout_share: float
) -> EvalCase:
    expectations: list[dict[str, JsonValue]] = []
    expected = item.get("expected")
    note = None
    if expected:
        try:
            parsed = json.loads(expected)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(e, dict) for e in parsed):
            expectations = parsed
        else:
            note = str(expected)
    persona = persona_from_recording(conv)
    reviewed = item.get("reviewed_at")
    metadata: dict[str, JsonValue] = {
        "flagged": list(item["reasons"]),
        "persona": persona.model_dump(mode="json", exclude_none=True),
    }
    if note:
        metadata["expected_behaviour"] = note
    cassette = conv.model_copy(update={"metadata": {**conv.metadata, "harvest": metadata}})
    return EvalCase(
        id=case_id,
        conversation=cassette,
        persona=persona.name,
        expectations=expectations,
        tags=dict(conv.tags),
        split="holdout" if holdout(case_id, holdout_share) else "test",
        provenance=CaseProvenance(
            source="harvest",
            window=str(item["window"]),
            conversation_id=conv.id,
            reviewer=item.get("reviewer"),
            label=item.get("label"),
            reviewed_at=datetime.fromisoformat(reviewed) if reviewed else datetime.now(UTC),
        ),
    )
