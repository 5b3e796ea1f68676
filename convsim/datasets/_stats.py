"""Summary statistics of a canonical conversation file."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from ..trace import AssistantMessage, Conversation, ToolMessage


def conversation_stats(conversations: Iterable[Conversation]) -> dict[str, Any]:
    """Counts by tag, turns, messages, tool calls, tokens, cost and attached scores.

    Streams: only counters and one integer per conversation (its turn count) are kept.
    """
    n = 0
    roles: Counter[str] = Counter()
    turns: list[int] = []
    tool_calls = tool_errors = unanswered = unparsable = 0
    tools: Counter[str] = Counter()
    input_tokens = output_tokens = 0
    cost = 0.0
    costed = 0
    tags: dict[str, Counter[str]] = defaultdict(Counter)
    scores: dict[str, list[float]] = defaultdict(list)
    for conv in conversations:
        n += 1
        turns.append(len(conv.turns()))
        for m in conv.messages:
            roles[m.role] += 1
            if isinstance(m, AssistantMessage):
                for c in m.tool_calls:
                    tool_calls += 1
                    tools[c.name] += 1
                    unparsable += c.arguments is None
            elif isinstance(m, ToolMessage):
                tool_errors += m.is_error
        unanswered += len(conv.tool_calls()) - len(conv.tool_results())
        usage = conv.usage()
        input_tokens += usage.input_tokens or 0
        output_tokens += usage.output_tokens or 0
        if usage.cost_usd is not None:
            cost += usage.cost_usd
            costed += 1
        for key, value in conv.tags.items():
            tags[key][value] += 1
        for s in conv.scores:
            if s.numeric is not None:
                scores[s.name].append(s.numeric)
    return {
        "conversations": n,
        "messages": dict(sorted(roles.items())),
        "turns": _spread(turns),
        "tool_calls": {
            "total": tool_calls,
            "per_conversation": round(tool_calls / n, 3) if n else 0.0,
            "unanswered": unanswered,
            "unparsable_arguments": unparsable,
            "errors": tool_errors,
            "by_tool": dict(tools.most_common()),
        },
        "tokens": {"input": input_tokens, "output": output_tokens},
        "cost_usd": {"total": round(cost, 6), "conversations_with_cost": costed},
        "tags": {k: dict(sorted(v.items())) for k, v in sorted(tags.items())},
        "scores": {
            name: {"n": len(vals), "mean": round(statistics.fmean(vals), 4)}
            for name, vals in sorted(scores.items())
        },
    }


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"total": 0, "mean": 0.0, "median": 0.0, "max": 0}
    return {
        "total": sum(values),
        "mean": round(statistics.fmean(values), 3),
        "median": float(statistics.median(values)),
        "max": max(values),
    }
