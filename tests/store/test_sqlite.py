import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from pydantic import JsonValue

from convsim.errors import ResumeMismatch, StoreError
from convsim.store import (
    ConversationResult,
    RunRecord,
    SQLiteStore,
    WindowScore,
    store_writer,
)
from convsim.trace import Conversation, Score, ScoreFailure, UserMessage


def _run(run_id: str = "r1", config: dict[str, JsonValue] | None = None) -> RunRecord:
    cfg: dict[str, JsonValue] = config or {"agent": "a:b", "trials": 3}
    return RunRecord(
        run_id=run_id,
        kind="simulate",
        config_hash=json.dumps(cfg, sort_keys=True),
        config=cfg,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _result(case: str, trial: int, run_id: str = "r1") -> ConversationResult:
    conv = Conversation(id=f"{case}-{trial}", messages=[UserMessage(content=f"hi {case}")])
    return ConversationResult(
        run_id=run_id, case_id=case, trial=trial, termination="user_stop", conversation=conv
    )


def test_wal_mode_and_named_migrations(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        assert store.applied_migrations() == ["m001_initial", "m002_anchors", "m003_run_leases"]
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Re-opening applies nothing twice.
    with SQLiteStore(path) as store:
        assert store.applied_migrations() == ["m001_initial", "m002_anchors", "m003_run_leases"]


def test_a_store_of_the_first_schema_is_upgraded_with_its_scores(tmp_path: Path) -> None:
    from convsim.store._sqlite import _M001_INITIAL

    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        _M001_INITIAL
        + "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT);"
        + "INSERT INTO schema_migrations VALUES ('m001_initial', 'then');"
    )
    s = Score(conversation_id="c1", name="tone", value=4, kind="ordinal", grader="judge")
    old.execute(
        "INSERT INTO scores (run_id, window, conversation_id, name, kind, source, grader, record)"
        " VALUES (NULL, 'w1', 'c1', 'tone', 'ordinal', 'rule', 'judge', ?)",
        (s.model_dump_json(),),
    )
    old.close()
    with SQLiteStore(path) as store:
        assert store.applied_migrations() == ["m001_initial", "m002_anchors", "m003_run_leases"]
        assert [x.value for x in store.scores(window="w1")] == [4.0]


def test_anchor_scores_live_beside_the_windows_own_and_the_set_persists(tmp_path: Path) -> None:
    conv = Conversation(id="c1", messages=[UserMessage(content="hi")])
    with SQLiteStore(tmp_path / "s.db") as store:
        assert store.anchor_set() == []
        assert store.add_anchors("w1", [(0.2, conv), (0.1, conv.model_copy(update={"id": "c0"}))])
        assert store.add_anchors("w2", [(0.05, conv)]) == 0  # already in the set
        assert [c.id for c in store.anchor_set()] == ["c0", "c1"]
        s = Score(conversation_id="c1", name="rubric.goal", value=True, kind="binary")
        anchor = s.model_copy(update={"value": False, "anchor": True})
        store.write_batch(
            [WindowScore(window="w1", score=s), WindowScore(window="w1", score=anchor)]
        )
        got = sorted((x.anchor, x.value) for x in store.scores(window="w1"))
        assert got == [(False, True), (True, False)]


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        SQLiteStore(bad)
    with pytest.raises(StoreError, match="is a directory"):
        SQLiteStore(tmp_path)


def test_resume_returns_finished_keys_and_refuses_changed_config(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        assert store.start_run(_run()) == set()
        store.write_batch([_result("a", 0), _result("a", 1)])
        with pytest.raises(StoreError, match="--resume"):
            store.start_run(_run())
        assert store.start_run(_run(), resume=True) == {("a", 0), ("a", 1)}
        with pytest.raises(ResumeMismatch) as err:
            store.start_run(_run(config={"agent": "a:b", "trials": 5}), resume=True)
        assert '-  "trials": 3' in str(err.value) and '+  "trials": 5' in str(err.value)


def test_results_are_never_duplicated(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.start_run(_run())
        store.write_batch([_result("a", 0)])
        store.write_batch([_result("a", 0), _result("b", 0)])
        assert [r.key for r in store.results("r1")] == [("r1", "a", 0), ("r1", "b", 0)]


def test_scores_failures_windows_and_export(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        s1 = Score(conversation_id="c1", name="tone", value=4, kind="ordinal", grader="judge")
        s2 = Score(conversation_id="c2", name="pii", value=True, kind="binary")
        fail = ScoreFailure(
            conversation_id="c3",
            name="tone",
            grader="judge",
            error_type="invalid_output",
            message="judge returned no verdict",
        )
        store.write_batch([WindowScore(window="2026-W01", score=s1), s2, fail])
        # Re-grading replaces instead of duplicating.
        store.write_batch(
            [
                WindowScore(
                    window="2026-W01", score=Score.model_validate(s1.model_dump() | {"value": 5})
                )
            ]
        )
        assert [s.value for s in store.scores(window="2026-W01")] == [5.0]
        assert [s.name for s in store.scores()] == ["pii", "tone"]
        assert [f.message for f in store.score_failures()] == ["judge returned no verdict"]
        out = tmp_path / "scores.jsonl"
        assert store.export_jsonl("scores", out) == 2
        lines = [Score.model_validate_json(x) for x in out.read_text().splitlines()]
        assert {s.name for s in lines} == {"pii", "tone"}


def test_review_queue(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        assert store.enqueue_review("w1", "{}", "c1", ["pii leak"], score=0.1)
        assert not store.enqueue_review("w1", "{}", "c1", ["again"], score=0.1)
        assert store.enqueue_review("w1", "{}", "c2", ["low tone"], score=0.05)
        items = store.review_items("w1", "pending")
        assert [i["conversation_id"] for i in items] == ["c2", "c1"]
        store.set_review(items[0]["id"], "confirmed", reviewer="ana", label="rude")
        assert [i["conversation_id"] for i in store.review_items("w1", "confirmed")] == ["c2"]
        with pytest.raises(StoreError):
            store.set_review(999, "rejected", reviewer="ana")


async def test_single_writer_under_many_concurrent_producers(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    store.start_run(_run())

    async def produce(n: int, send: object) -> None:
        from anyio.streams.memory import MemoryObjectSendStream

        assert isinstance(send, MemoryObjectSendStream)
        async with send:
            for k in range(50):
                await send.send(_result(f"case{n}", k))
                if k % 10 == 0:
                    await anyio.lowlevel.checkpoint()

    async with (
        store_writer(store, batch_size=32, buffer=16) as send,
        anyio.create_task_group() as tg,
    ):
        for n in range(40):
            tg.start_soon(produce, n, send.clone())
    store.close()
    # Read back through an independent connection: everything was committed.
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*), count(DISTINCT case_id) FROM results").fetchone() == (
        2000,
        40,
    )
