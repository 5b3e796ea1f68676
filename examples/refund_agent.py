"""A small support agent with tools, used by the docs and examples.

Run it against the example persona:

    convsim simulate --agent examples/refund_agent.py:agent \
        --personas examples/personas --env examples.refund_agent:RefundShop --out refunds.jsonl
"""

from __future__ import annotations

import json
from typing import Any

from convsim.agents import AgentContext
from convsim.tools import Tool, hash_state, tool
from convsim.trace import AssistantMessage, Conversation, ToolCall, ToolMessage


class RefundShop:
    """A tiny stateful tool environment: orders that can be looked up and refunded."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Restore the initial orders."""
        self.orders: dict[str, dict[str, Any]] = {
            "W123": {"item": "kettle", "price": 39.5, "status": "delivered"},
            "W456": {"item": "toaster", "price": 24.0, "status": "shipped"},
        }

    def tools(self) -> list[Tool]:
        """The shop's tools, bound to this instance."""

        @tool
        def get_order(order_id: str) -> dict[str, Any]:
            """Look up an order by id."""
            if order_id not in self.orders:
                raise KeyError(f"order {order_id} not found")
            return self.orders[order_id]

        @tool
        def refund_order(order_id: str) -> str:
            """Refund a delivered order."""
            order = self.orders[order_id]
            if order["status"] != "delivered":
                raise ValueError("only delivered orders can be refunded")
            order["status"] = "refunded"
            return f"refunded {order['price']:.2f}"

        return [get_order, refund_order]

    def snapshot(self) -> dict[str, Any]:
        """The orders, as a deep copy."""
        copy: dict[str, Any] = json.loads(json.dumps(self.orders))
        return copy

    def state_hash(self) -> str:
        """Hash of the orders."""
        return hash_state(self.orders)


def agent(conversation: Conversation, context: AgentContext) -> AssistantMessage:
    """Find an order id in the user's words, look it up, refund it if delivered."""
    last = conversation.messages[-1]
    if isinstance(last, ToolMessage):
        if last.content and last.content.startswith("refunded"):
            return AssistantMessage(content=f"Done: {last.content}. Anything else?")
        if last.is_error:
            return AssistantMessage(content=f"Sorry, that did not work ({last.content}).")
        order = json.loads(last.content or "{}")
        if order.get("status") == "delivered":
            order_id = _order_id(conversation)
            call = ToolCall(
                id=f"c{len(conversation.messages)}",
                name="refund_order",
                arguments={"order_id": order_id},
            )
            return AssistantMessage(tool_calls=[call])
        return AssistantMessage(
            content=f"That order is {order.get('status')}; it cannot be refunded yet."
        )
    order_id = _order_id(conversation)
    if order_id is None:
        return AssistantMessage(content="Which order is it? Please give me the order id.")
    call = ToolCall(
        id=f"c{len(conversation.messages)}", name="get_order", arguments={"order_id": order_id}
    )
    return AssistantMessage(tool_calls=[call])


def _order_id(conversation: Conversation) -> str | None:
    for m in reversed(conversation.messages):
        if m.role == "user":
            for word in m.text.replace(".", " ").replace("#", " ").split():
                if word.upper().startswith("W") and word[1:].isdigit():
                    return word.upper()
    return None
