"""The multi-record reader leaves nothing for the cycle collector and restores its state."""

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from convsim.datasets import ReadReport
from convsim.formats import read_openinference
from convsim.formats.langsmith import read_langsmith_files
from convsim.formats.otel import read_otel_files
from convsim.trace import Conversation

CAPTURED = Path(__file__).parent / "data" / "captured"
TRACES = CAPTURED / "otel_openai_v2_2.4b0_content_traces.jsonl"
LOGS = CAPTURED / "otel_openai_v2_2.4b0_content_logs.jsonl"


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _cyclic_garbage() -> int:
    found: int = gc.collect()
    return found


def _otel() -> list[Conversation]:
    return list(read_otel_files([TRACES, LOGS], report=ReadReport(file=str(TRACES))))


def _openinference() -> list[Conversation]:
    path = CAPTURED / "openinference_openai_0.1.66_traces.jsonl"
    return list(read_openinference(path, report=ReadReport(file=str(path))))


def _langsmith() -> list[Conversation]:
    runs = CAPTURED / "langsmith_0.15.1_runs.jsonl"
    feedback = CAPTURED / "langsmith_0.15.1_feedback.jsonl"
    return list(read_langsmith_files([runs, feedback], report=ReadReport(file=str(runs))))


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize("read", [_otel, _openinference, _langsmith])
def test_a_read_conversation_is_freed_by_reference_counting(
    read: Callable[[], list[Conversation]],
) -> None:
    # Builders used to hand their history a bound method of their own: a cycle per
    # conversation, so its whole decoded graph waited for (and slowed) the collector.
    _cyclic_garbage()
    conversations = read()
    assert conversations
    del conversations
    # What is left is the line reader's own closure, about ten objects per file and
    # pass, whatever the file holds; with the cycle these small captures left 191-597.
    assert _cyclic_garbage() <= 60


def test_freezing_is_undone_when_the_read_ends_or_is_abandoned() -> None:
    assert gc.get_freeze_count() == 0
    assert list(read_otel_files([TRACES, LOGS], report=ReadReport(file=str(TRACES))))
    assert gc.get_freeze_count() == 0
    reader = read_otel_files([TRACES, LOGS], report=ReadReport(file=str(TRACES)))
    next(reader)
    assert gc.get_freeze_count() > 0  # held records are kept out of the collector's walks
    del reader
    assert gc.get_freeze_count() == 0


def test_objects_someone_else_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        assert list(read_otel_files([TRACES, LOGS], report=ReadReport(file=str(TRACES))))
        assert gc.get_freeze_count() >= before
    finally:
        gc.unfreeze()
