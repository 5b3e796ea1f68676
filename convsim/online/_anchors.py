"""The anchor set: a fixed sample of conversations that the judges see again every window.

Production windows hold new conversations every week, so their scores cannot tell a
judge that changed from a product that changed. The anchor set can: the same
conversations, judged again each window, move only if the judge does. It is drawn by
hash, like the sample (``sampling_draw`` with an ``anchor:`` salt), so it is
reproducible and independent of what the sampler picked.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable

from ..trace import Conversation, Score
from ._sampler import sampling_draw


def anchor_draw(conversation_id: str, salt: str = "") -> float:
    """The conversation's anchor draw: a sampling draw under the ``anchor:`` salt."""
    return sampling_draw(conversation_id, f"anchor:{salt}")


def choose_anchors(
    conversations: Iterable[Conversation],
    count: int,
    *,
    salt: str = "",
    exclude: Collection[str] = (),
) -> list[tuple[float, Conversation]]:
    """The ``count`` conversations with the smallest anchor draws, read in one pass.

    Args:
        conversations: A window (a generator keeps memory to ``count`` conversations).
        count: How many to choose.
        salt: The sampling policy's salt.
        exclude: Ids already in the anchor set.

    Returns:
        ``(draw, conversation)`` pairs, smallest draw first.
    """
    if count <= 0:
        return []
    # A max-heap of the smallest draws seen (negated), with the id to break ties.
    heap: list[tuple[float, str, Conversation]] = []
    for c in conversations:
        if c.id in exclude:
            continue
        item = (-anchor_draw(c.id, salt), c.id, c)
        if len(heap) < count:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)
    return sorted(((-d, c) for d, _, c in heap), key=lambda x: (x[0], x[1].id))


def stamp_anchor_scores(scores: Iterable[Score], window: str) -> list[Score]:
    """Mark scores as this window's re-judgment of the anchor set.

    They carry no inclusion probability or sampling rule: they are not part of the
    window's sample, and drift reads them apart from it.
    """
    return [
        s.model_copy(
            update={"window": window, "anchor": True, "inclusion_prob": None, "sampling_rule": None}
        )
        for s in scores
    ]
