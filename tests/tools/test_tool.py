import pytest

from convsim.errors import ConfigError
from convsim.tools import Tool, Toolset, tool
from convsim.trace import ToolCall


@tool
def book(flight: str, seats: int = 1, note: str | None = None) -> dict[str, object]:
    """Book seats on a flight.

    Longer text that is not part of the description.
    """
    if flight == "FULL":
        raise ValueError("flight is full")
    return {"flight": flight, "seats": seats}


@tool(name="lookup", terminal=True)
async def async_lookup(code: str) -> str:
    """Look a code up."""
    return code.upper()


def test_schema_from_type_hints() -> None:
    assert book.name == "book"
    assert book.description == "Book seats on a flight."
    assert book.parameters["required"] == ["flight"]
    assert book.parameters["properties"]["seats"] == {"default": 1, "type": "integer"}
    assert book.parameters["additionalProperties"] is False


async def test_valid_call_returns_json_text() -> None:
    msg = await Toolset([book]).call(
        ToolCall(id="c1", name="book", arguments={"flight": "HA1", "seats": 2})
    )
    assert (msg.tool_call_id, msg.name, msg.is_error) == ("c1", "book", False)
    assert msg.content == '{"flight": "HA1", "seats": 2}'


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (ToolCall(id="1", name="book", arguments={"seats": 2}), "'flight' is a required property"),
        (
            ToolCall(id="1", name="book", arguments={"flight": 3}),
            "flight: 3 is not of type 'string'",
        ),
        (ToolCall(id="1", name="book", arguments={"flight": "A", "x": 1}), "Additional properties"),
        (
            ToolCall(id="1", name="nope", arguments={}),
            "unknown tool 'nope'; available tools: book, lookup",
        ),
        (
            ToolCall(id="1", name="book", arguments=None, arguments_raw="{bad"),
            "not a valid JSON object",
        ),
        (ToolCall(id="1", name="book", arguments={"flight": "FULL"}), "Error: flight is full"),
    ],
)
async def test_bad_calls_become_tool_errors(call: ToolCall, expected: str) -> None:
    msg = await Toolset([book, async_lookup]).call(call)
    assert msg.is_error and msg.tool_call_id == "1"
    assert expected in (msg.content or "")
    assert (msg.content or "").startswith("Error: ")


async def test_async_tools_terminal_flag_and_parallel_calls_in_order() -> None:
    ts = Toolset([book, async_lookup])
    assert ts.is_terminal("lookup") and not ts.is_terminal("book")
    results = await ts.call_all(
        [
            ToolCall(id="a", name="lookup", arguments={"code": "x"}),
            ToolCall(id="b", name="book", arguments={"flight": "F"}),
        ]
    )
    assert [r.tool_call_id for r in results] == ["a", "b"]
    assert results[0].content == "X"


def test_duplicate_names_and_bad_schemas_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unique"):
        Toolset([book, book])
    with pytest.raises(ConfigError, match="invalid parameters schema"):
        Tool(name="t", description="", parameters={"type": "nonsense"}, fn=lambda: None)
