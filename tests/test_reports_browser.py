"""The HTML reports render in a real browser (headless Chromium), checked by screenshot."""

from pathlib import Path

from convsim.replay import compare
from convsim.reports import replay_html
from convsim.trace import AssistantMessage, Conversation, ToolCall, ToolMessage, UserMessage

from ._browser import screenshot


def _conv(text: str, arg: str) -> Conversation:
    return Conversation(
        id="c1",
        messages=[
            UserMessage(content="Book the 5pm flight <please>"),
            AssistantMessage(tool_calls=[ToolCall(id="1", name="book", arguments={"flight": arg})]),
            ToolMessage(tool_call_id="1", content="booked"),
            AssistantMessage(content=text),
        ],
    )


def test_replay_report_renders(tmp_path: Path) -> None:
    report = compare(_conv("Booked HA1 at 5pm.", "HA1"), _conv("Booked HA2 <b>at 6pm</b>.", "HA2"))
    html = tmp_path / "replay.html"
    html.write_text(replay_html([report]))
    assert "&lt;b&gt;at 6pm&lt;/b&gt;" in html.read_text()  # escaped, never injected
    width, height, colours = screenshot(html, tmp_path / "replay.png")
    assert (width, height) == (1280, 1600)
    assert colours > 30, "the screenshot is blank"
