from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convsim.datasets import (
    DEFAULT_MAX_LINE_BYTES,
    EvalCase,
    JsonlReader,
    RecordError,
    append_cases,
    dump_line,
    read_conversations,
    write_jsonl,
)
from convsim.datasets._jsonl import MAX_KEPT_ISSUES
from convsim.errors import ConfigError, TraceImportError
from convsim.trace import (
    AssistantMessage,
    Conversation,
    ToolCall,
    ToolMessage,
    UserMessage,
    find_problems,
)
from tests.strategies import conversations


def conversation(conversation_id: str, text: str = "hello") -> Conversation:
    return Conversation(
        id=conversation_id,
        messages=[
            UserMessage(content=text),
            AssistantMessage(tool_calls=[ToolCall(id="c1", name="lookup", arguments={"q": text})]),
            ToolMessage(tool_call_id="c1", content="found"),
            AssistantMessage(content="Here you go."),
        ],
    )


def line(conversation_id: str, text: str = "hello") -> bytes:
    return dump_line(conversation(conversation_id, text)).encode()


def read_all(
    path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[list[Conversation], JsonlReader[Conversation], bytes]:
    rejects = io.BytesIO()
    reader = read_conversations(path, rejects=rejects, max_line_bytes=max_line_bytes)
    kept = list(reader)
    return kept, reader, rejects.getvalue()


def test_reader_keeps_good_lines_and_reports_each_bad_one(tmp_path: Path) -> None:
    truncated = line("t")[:40] + b"\n"
    wrong_type = b'{"id":"w","messages":[{"role":"user","content":5}]}\n'
    unknown_role = (
        b'{"id":"r","messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]}\n'
    )
    orphan = b'{"id":"orphan","messages":[{"role":"user"},{"role":"tool","tool_call_id":"x"}]}\n'
    bad_utf8 = b'{"id":"\xff\xfe","messages":[]}\n'
    too_long = line("long", "x" * 2000) + b"\n"
    not_object = b"[1, 2]\r\n"
    lines = [
        b"\xef\xbb\xbf" + line("good-1") + b"\n",  # 1: BOM on the first line
        line("good-2") + b"\r\n",  # 2: CRLF
        truncated,  # 3
        wrong_type,  # 4
        b"\n",  # 5: blank, not a record
        unknown_role,  # 6
        orphan,  # 7
        bad_utf8,  # 8
        b"  \t \r\n",  # 9: whitespace only, not a record
        too_long,  # 10
        line("good-3") + b"\r\n",  # 11
        not_object,  # 12
        line("good-4"),  # 13: last line, no newline
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(lines))

    kept, reader, rejects = read_all(path, max_line_bytes=1000)
    report = reader.report

    assert [c.id for c in kept] == ["good-1", "good-2", "good-3", "good-4"]
    assert kept[0] == conversation("good-1")
    assert (report.read, report.kept, report.rejected) == (11, 4, 7)
    assert report.read == report.kept + report.rejected
    assert rejects == truncated + wrong_type + unknown_role + orphan + bad_utf8 + too_long + (
        not_object
    )

    issues = {i.line: i for i in report.issues}
    assert sorted(issues) == [3, 4, 6, 7, 8, 10, 12]
    for number, issue in issues.items():
        assert issue.file == str(path)
        assert str(issue).startswith(f"{path}:{number}: ")

    assert issues[3].field is None
    assert issues[3].message.startswith("Invalid JSON: ")
    assert "EOF while parsing" in issues[3].message

    assert issues[4].field == "messages.0.content"
    assert str(issues[4]) == f"{path}:4: messages.0.content: Input should be a valid string"

    assert issues[6].field == "messages.1"
    assert "'robot'" in issues[6].message
    assert "using 'role'" in issues[6].message
    assert str(issues[6]).startswith(f"{path}:6: messages.1: Input tag 'robot'")

    assert issues[7].field is None
    assert str(issues[7]) == (
        f"{path}:7: conversation 'orphan', message 1 (tool): tool result for call id 'x' "
        "answers no earlier, unanswered tool call"
    )

    assert str(issues[8]) == f"{path}:8: invalid UTF-8 at byte 7; re-encode as UTF-8"

    assert issues[10].field is None
    assert f"line is {len(too_long):,} bytes, over the 1,000-byte limit" in issues[10].message

    assert issues[12].field is None
    assert str(issues[12]) == f"{path}:12: Input should be an object"


def test_issue_for_an_invalid_field_value(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(
        line("ok")
        + b"\n"
        + b'{"id":"n","messages":[{"role":"assistant","latency_ms":-5}]}\n'
        + b'{"id":"","messages":[]}\n'
    )
    kept, reader, _ = read_all(path)
    assert [c.id for c in kept] == ["ok"]
    first, second = reader.report.issues
    assert str(first) == (
        f"{path}:2: messages.0.latency_ms: Input should be greater than or equal to 0"
    )
    assert str(second) == f"{path}:3: id: String should have at least 1 character"


def test_last_rejected_line_without_newline_gets_one_in_rejects(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    cut = line("b")[:-3]
    path.write_bytes(line("a") + b"\n" + cut)
    kept, reader, rejects = read_all(path)
    assert [c.id for c in kept] == ["a"]
    assert reader.report.issues[0].line == 2
    assert rejects == cut + b"\n"


def test_line_at_the_limit_is_accepted_and_one_byte_over_is_not(tmp_path: Path) -> None:
    exact = line("exact")
    path = tmp_path / "edge.jsonl"
    path.write_bytes(exact + b"\n" + line("over", "hellooo") + b"\n" + exact)
    kept, reader, rejects = read_all(path, max_line_bytes=len(exact))
    # The limit counts the record, not its newline; the last line has no newline at all.
    assert [c.id for c in kept] == ["exact", "exact"]
    assert reader.report.rejected == 1
    assert reader.report.issues[0].line == 2
    assert rejects == line("over", "hellooo") + b"\n"


def test_long_lines_are_streamed_to_rejects(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    long_line = line("long", "y" * 5000)
    path.write_bytes(line("a") + b"\n" + long_line + b"\n" + long_line + b"\n" + line("b"))
    kept, reader, rejects = read_all(path, max_line_bytes=100)
    assert [c.id for c in kept] == []  # even the short ones exceed 100 bytes
    assert reader.report.read == 4
    assert rejects == line("a") + b"\n" + long_line + b"\n" + long_line + b"\n" + line("b") + b"\n"
    kept, reader, rejects = read_all(path, max_line_bytes=1000)
    assert [c.id for c in kept] == ["a", "b"]
    assert [i.line for i in reader.report.issues] == [2, 3]
    assert rejects == (long_line + b"\n") * 2


def test_fifty_megabyte_line_is_rejected_under_the_default_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = line("huge", "z" * 50_000_000) + b"\n"
    assert len(huge) > DEFAULT_MAX_LINE_BYTES
    path = tmp_path / "huge.jsonl"
    path.write_bytes(line("before") + b"\n" + huge + line("after") + b"\n")
    rejects_path = tmp_path / "rejects.jsonl"
    with rejects_path.open("wb") as rejects:
        reader = read_conversations(path, rejects=rejects)
        kept = [c.id for c in reader]
    assert kept == ["before", "after"]
    report = reader.report
    assert (report.read, report.kept, report.rejected) == (3, 2, 1)
    (issue,) = report.issues
    assert issue.line == 2
    assert issue.message.startswith(
        f"line is {len(huge):,} bytes, over the {DEFAULT_MAX_LINE_BYTES:,}-byte limit"
    )
    assert issue.message.endswith("raise the limit with CONVSIM_MAX_LINE_BYTES")
    assert rejects_path.read_bytes() == huge
    # The knob the message names exists and works.
    monkeypatch.setenv("CONVSIM_MAX_LINE_BYTES", str(128 << 20))
    assert [c.id for c in read_conversations(path)] == ["before", "huge", "after"]
    monkeypatch.setenv("CONVSIM_MAX_LINE_BYTES", "lots")
    with pytest.raises(TraceImportError, match="CONVSIM_MAX_LINE_BYTES='lots' is not a number"):
        list(read_conversations(path))


def test_gzip_input_is_read_transparently(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(line("a") + b"\n{oops\n" + line("b") + b"\n")
    kept, reader, rejects = read_all(path)
    assert [c.id for c in kept] == ["a", "b"]
    assert [str(i).split(": ")[0] for i in reader.report.issues] == [f"{path}:2"]
    assert rejects == b"{oops\n"


def test_blank_only_file_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b"\n\r\n  \n")
    kept, reader, rejects = read_all(path)
    assert kept == []
    assert (reader.report.read, reader.report.kept, reader.report.rejected) == (0, 0, 0)
    assert rejects == b""


def test_empty_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(TraceImportError, match=r"empty\.jsonl: the file is empty; nothing to read"):
        list(read_conversations(path))


def test_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(TraceImportError, match="is a directory; pass the files inside it"):
        list(read_conversations(tmp_path))


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(TraceImportError, match="no such file"):
        list(read_conversations(tmp_path / "nope.jsonl"))


def test_issues_stored_are_capped_but_all_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"x\n" * (MAX_KEPT_ISSUES + 5))
    kept, reader, rejects = read_all(path)
    assert kept == []
    assert reader.report.rejected == MAX_KEPT_ISSUES + 5
    assert len(reader.report.issues) == MAX_KEPT_ISSUES
    assert rejects.count(b"\n") == MAX_KEPT_ISSUES + 5


def test_custom_parser_record_errors_name_their_field(tmp_path: Path) -> None:
    def parse(text: str) -> int:
        value = json.loads(text)
        if not isinstance(value, int):
            raise RecordError("value", f"expected an integer, got {type(value).__name__}")
        return value

    path = tmp_path / "ints.jsonl"
    path.write_bytes(b'1\n"two"\n3\n{\n')
    reader = JsonlReader(path, parse)
    assert list(reader) == [1, 3]
    assert [str(i) for i in reader.report.issues] == [
        f"{path}:2: value: expected an integer, got str",
        f"{path}:4: invalid JSON (Expecting property name enclosed in double quotes at column 2);"
        " is the line truncated?",
    ]


def test_custom_parser_value_error_rejects_the_line(tmp_path: Path) -> None:
    # The reader documents ValueError as a way for a parser to reject one record.
    def parse(text: str) -> int:
        return int(text)

    path = tmp_path / "ints.jsonl"
    path.write_bytes(b"1\nseven\n3\n")
    rejects = io.BytesIO()
    reader = JsonlReader(path, parse, rejects=rejects)
    assert list(reader) == [1, 3]
    assert (reader.report.read, reader.report.kept, reader.report.rejected) == (3, 2, 1)
    assert [str(i) for i in reader.report.issues] == [
        f"{path}:2: invalid literal for int() with base 10: 'seven'"
    ]
    assert rejects.getvalue() == b"seven\n"


def test_custom_parser_bugs_are_not_swallowed(tmp_path: Path) -> None:
    def parse(text: str) -> int:
        raise KeyError(text)

    path = tmp_path / "ints.jsonl"
    path.write_bytes(b"1\n")
    with pytest.raises(KeyError):
        list(JsonlReader(path, parse))


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    originals = [conversation(f"c{i}", f"text {i} ✓") for i in range(5)]
    assert write_jsonl(path, originals) == 5
    kept, reader, rejects = read_all(path)
    assert kept == originals
    assert reader.report.rejected == 0
    assert path.read_bytes() == b"".join(dump_line(c).encode() + b"\n" for c in originals)


# --- fuzzing -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz")


_FRAGMENTS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "\\",
    '"id"',
    '"c"',
    '"messages"',
    '"role"',
    '"user"',
    '"assistant"',
    '"tool"',
    '"tool_call_id"',
    '"tool_calls"',
    '"content"',
    '"x"',
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "NaN",
    '"\\ud800"',
    "\ufeff",
    " ",
    "\r",
    "é",
    "\x00",
]

json_fragments = st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map(
    lambda parts: "".join(parts).encode()
)


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    data = bytearray(dump_line(draw(conversations(max_messages=6))).encode())
    how = draw(st.sampled_from(["truncate", "flip", "both", "none"]))
    if how in ("flip", "both") and data:
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            at = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[at] ^= draw(st.integers(min_value=1, max_value=255))
    if how in ("truncate", "both"):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return bytes(data)


fuzz_lines = st.one_of(st.binary(max_size=200), json_fragments, mutated_lines())


@given(
    lines=st.lists(fuzz_lines, max_size=8),
    endings=st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=8, max_size=8),
    final_newline=st.booleans(),
    max_line_bytes=st.sampled_from([64, 1000, DEFAULT_MAX_LINE_BYTES]),
)
def test_reader_never_crashes_and_counts_add_up(
    fuzz_dir: Path,
    lines: list[bytes],
    endings: list[bytes],
    final_newline: bool,
    max_line_bytes: int,
) -> None:
    content = b"".join(text + end for text, end in zip(lines, endings, strict=False))
    if not final_newline:
        content = content.removesuffix(b"\n")
    path = fuzz_dir / "fuzz.jsonl"
    path.write_bytes(content)
    rejects = io.BytesIO()
    reader = read_conversations(path, rejects=rejects, max_line_bytes=max_line_bytes)
    if not content:
        with pytest.raises(TraceImportError, match="the file is empty"):
            list(reader)
        return
    kept = list(reader)
    report = reader.report
    assert report.read == report.kept + report.rejected
    assert report.kept == len(kept)
    # Every rejected line lands in the rejects file, each ending in exactly one newline.
    assert rejects.getvalue().count(b"\n") == report.rejected
    assert len(report.issues) == report.rejected
    line_count = content.count(b"\n") + (0 if content.endswith(b"\n") else 1)
    assert report.read <= line_count
    assert all(1 <= i.line <= line_count for i in report.issues)
    for c in kept:
        # Whatever was kept is valid and can be written back.
        assert find_problems(c) == []
        assert Conversation.model_validate_json(dump_line(c)) == c


@given(st.lists(conversations(max_messages=6), max_size=5))
def test_valid_conversations_are_all_kept(fuzz_dir: Path, originals: list[Conversation]) -> None:
    path = fuzz_dir / "valid.jsonl"
    path.write_bytes(b"".join(dump_line(c).encode() + b"\n" for c in originals) or b"\n")
    kept, reader, rejects = read_all(path)
    assert kept == originals
    assert (reader.report.read, reader.report.rejected) == (len(originals), 0)
    assert rejects == b""


# --- append-only datasets ----------------------------------------------------------------


def case(case_id: str, text: str = "hello", split: str = "test") -> EvalCase:
    return EvalCase.model_validate(
        {"id": case_id, "conversation": conversation(f"conv-{case_id}", text), "split": split}
    )


def test_append_cases_creates_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    assert append_cases(path, [case("a"), case("b")]) == (2, 0)
    first = path.read_bytes()
    assert first == b"".join(dump_line(c).encode() + b"\n" for c in [case("a"), case("b")])

    assert append_cases(path, [case("a"), case("c"), case("b"), case("d", "bye")]) == (2, 2)
    second = path.read_bytes()
    assert second.startswith(first)
    reader = JsonlReader(path, EvalCase.model_validate_json)
    assert [c.id for c in reader] == ["a", "b", "c", "d"]


def test_append_cases_skips_identical_duplicates_in_one_batch(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    assert append_cases(path, [case("a"), case("a")]) == (1, 1)
    assert path.read_bytes().count(b"\n") == 1


def test_append_cases_refuses_changed_content(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    append_cases(path, [case("a"), case("b")])
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"case 'b' already exists with different content"):
        append_cases(path, [case("new"), case("b", split="holdout")])
    # Nothing from the refused batch was written, not even the new case before it.
    assert path.read_bytes() == before


def test_append_cases_refuses_changed_content_within_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    with pytest.raises(ConfigError, match="append-only"):
        append_cases(path, [case("a"), case("a", "changed")])
    assert not path.exists()


def test_append_cases_refuses_a_corrupt_dataset(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    append_cases(path, [case("a")])
    with path.open("ab") as f:
        f.write(b"{broken\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"1 invalid line\(s\), first: .*cases\.jsonl:2: "):
        append_cases(path, [case("b")])
    assert path.read_bytes() == before


def test_append_cases_to_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_bytes(b"")
    assert append_cases(path, [case("a")]) == (1, 0)
    assert path.read_bytes() == dump_line(case("a")).encode() + b"\n"


def _append_many(path: str, prefix: str) -> None:
    for i in range(15):
        append_cases(path, [case(f"{prefix}-{i}")])


def test_concurrent_appends_lose_no_case(tmp_path: Path) -> None:
    import multiprocessing

    path = str(tmp_path / "cases.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, p)) for p in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ids = [c.id for c in JsonlReader(Path(path), EvalCase.model_validate_json)]
    assert sorted(ids) == sorted(f"{p}-{i}" for p in "abc" for i in range(15))


def test_appending_through_a_link_updates_the_linked_file_and_keeps_its_mode(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared" / "cases.jsonl"
    shared.parent.mkdir()
    append_cases(shared, [case("a")])
    shared.chmod(0o640)
    link = tmp_path / "cases.jsonl"
    link.symlink_to(shared)
    assert append_cases(link, [case("b")]) == (1, 0)
    assert link.is_symlink()
    assert [c.id for c in JsonlReader(shared, EvalCase.model_validate_json)] == ["a", "b"]
    assert shared.stat().st_mode & 0o777 == 0o640


def test_case_needs_a_conversation_or_persona() -> None:
    with pytest.raises(ValueError, match="needs a conversation or a persona"):
        EvalCase(id="x")
    assert EvalCase(id="p", persona="angry-customer").conversation is None
