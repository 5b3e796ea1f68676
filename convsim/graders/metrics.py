"""Conversation metadata as continuous scores, so drift reports and gates treat them alike.

``meta.turns``, ``meta.tool_calls`` and ``meta.tool_errors`` are always produced;
``meta.latency_ms``, ``meta.tokens`` and ``meta.cost_usd`` only when the trace records
them (a missing measurement is not a zero).
"""

from __future__ import annotations

from ..trace import AssistantMessage, Conversation, ToolMessage
from ._base import GradeOutput, ScoreBuilder, config_hash


class MetadataMetrics:
    """Turns, tool calls, tool errors, latency, tokens and cost per conversation."""

    name = "meta"
    version = config_hash("meta-v1")

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Continuous scores describing the conversation itself."""
        b = ScoreBuilder(self.name, self.version, conversation)
        calls = errors = 0
        latency = 0.0
        timed = False
        for m in conversation.messages:
            if isinstance(m, AssistantMessage):
                calls += len(m.tool_calls)
                if m.latency_ms is not None:
                    latency += m.latency_ms
                    timed = True
            elif isinstance(m, ToolMessage):
                errors += m.is_error or (m.content or "").startswith("Error")
        b.score("meta.turns", float(len(conversation.turns())), "continuous")
        b.score("meta.tool_calls", float(calls), "continuous")
        b.score("meta.tool_errors", float(errors), "continuous")
        if timed:
            b.score("meta.latency_ms", round(latency, 3), "continuous")
        usage = conversation.usage()
        tokens = (usage.input_tokens or 0) + (usage.output_tokens or 0)
        if tokens:
            b.score("meta.tokens", float(tokens), "continuous")
        if usage.cost_usd is not None:
            b.score("meta.cost_usd", usage.cost_usd, "continuous")
        return b.out
