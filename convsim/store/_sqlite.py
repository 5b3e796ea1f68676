"""The embedded result store: stdlib SQLite in WAL mode with ordered, named migrations.

Records are stored as their canonical JSON plus the columns needed to query them, so
export back to JSONL is exact and the schema of the records can evolve without a
migration for every new field.
"""

from __future__ import annotations

import difflib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from .._files import atomic_output
from ..errors import ResumeMismatch, RunBusy, StoreError
from ..trace import Conversation, Score, ScoreFailure
from ._records import ConversationResult, RunRecord

DEFAULT_STORE_PATH = Path(".convsim") / "convsim.db"
"""Where the store lives unless ``--store`` or ``CONVSIM_STORE`` says otherwise."""

ReviewStatus = Literal["pending", "confirmed", "rejected"]
"""Where a review-queue item stands."""


_M001_INITIAL = """
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            window TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            record TEXT NOT NULL
        );
        CREATE TABLE results (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            case_id TEXT NOT NULL,
            trial INTEGER NOT NULL,
            conversation_id TEXT NOT NULL,
            termination TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (run_id, case_id, trial)
        );
        CREATE TABLE scores (
            id INTEGER PRIMARY KEY,
            run_id TEXT,
            window TEXT,
            conversation_id TEXT NOT NULL,
            trial INTEGER,
            message_index INTEGER,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            value_num REAL,
            value_text TEXT,
            source TEXT NOT NULL,
            grader TEXT NOT NULL,
            record TEXT NOT NULL
        );
        CREATE UNIQUE INDEX scores_key ON scores (
            coalesce(run_id, ''), coalesce(window, ''), conversation_id, coalesce(trial, -1),
            coalesce(message_index, -1), name, grader
        );
        CREATE INDEX scores_by_window ON scores (window, name);
        CREATE TABLE score_failures (
            id INTEGER PRIMARY KEY,
            run_id TEXT,
            window TEXT,
            conversation_id TEXT NOT NULL,
            name TEXT NOT NULL,
            grader TEXT NOT NULL,
            record TEXT NOT NULL
        );
        CREATE TABLE review_queue (
            id INTEGER PRIMARY KEY,
            window TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            reasons TEXT NOT NULL,
            score REAL,
            cluster TEXT,
            label TEXT,
            expected TEXT,
            reviewer TEXT,
            reviewed_at TEXT,
            conversation TEXT NOT NULL,
            UNIQUE (window, conversation_id)
        );
"""

# Anchor re-judgments share window, conversation and name with the window's own
# scores when an anchor was drawn from that very window, so the flag joins the key.
_M002_ANCHORS = """
        ALTER TABLE scores ADD COLUMN anchor INTEGER NOT NULL DEFAULT 0;
        DROP INDEX scores_key;
        CREATE UNIQUE INDEX scores_key ON scores (
            coalesce(run_id, ''), coalesce(window, ''), conversation_id, coalesce(trial, -1),
            coalesce(message_index, -1), name, grader, anchor
        );
        CREATE TABLE anchor_set (
            conversation_id TEXT PRIMARY KEY,
            added_window TEXT NOT NULL,
            draw REAL NOT NULL,
            conversation TEXT NOT NULL
        );
"""

# Who is running a run right now, so a second process resuming it is refused instead
# of repeating the first one's work (and its model costs).
_M003_LEASES = """
        CREATE TABLE run_leases (
            run_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            heartbeat_at REAL NOT NULL
        );
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("m001_initial", _M001_INITIAL),
    ("m002_anchors", _M002_ANCHORS),
    ("m003_run_leases", _M003_LEASES),
]
"""Schema migrations (name, SQL), applied in order, each exactly once, recorded by name."""


LEASE_TTL_S = 60.0
"""A run's lease lapses when its holder has not been heard from for this long (a holder
on another host, or one whose process id was reused); a holder on this host whose
process is gone loses it at once."""

HEARTBEAT_S = 10.0
"""How often a running run renews its lease."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _dump(record: BaseModel) -> str:
    return record.model_dump_json(exclude_none=True)


class SQLiteStore:
    """Runs, results, scores, score failures and the review queue in one SQLite file.

    Only one task should write at a time (see :func:`convsim.store.store_writer`); any
    number may read. WAL mode lets readers run while the writer commits.
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_STORE_PATH) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory; give the store a file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        try:
            # The writer runs its batches in a worker thread, and a run's heartbeat renews
            # its lease from another; SQLite serialises the calls on one connection, and
            # a renewal that lands inside a batch's transaction commits with it.
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._check()
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"{self.path}: cannot open the store ({e}); is it a convsim store?"
            ) from e

    def _check(self) -> None:
        """Refuse a damaged store at open, before any write can make it worse."""
        problems = [r[0] for r in self.db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            self.db.close()
            raise StoreError(
                f"{self.path}: the store is damaged ({'; '.join(problems)}). Nothing was "
                "written to it. Restore it from a backup, or salvage what can be read: "
                f"sqlite3 {self.path} .recover | sqlite3 recovered.db"
            )

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        done = {r[0] for r in self.db.execute("SELECT name FROM schema_migrations")}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            # One script, one transaction: a migration is applied whole or not at all.
            try:
                self.db.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\n"
                    f"INSERT INTO schema_migrations VALUES ('{name}', '{_now()}');\nCOMMIT;"
                )
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def applied_migrations(self) -> list[str]:
        """Names of the migrations applied to this file, in order."""
        return [r[0] for r in self.db.execute("SELECT name FROM schema_migrations ORDER BY name")]

    # -- runs -------------------------------------------------------------------------

    def start_run(self, run: RunRecord, *, resume: bool = False) -> set[tuple[str, int]]:
        """Register a run and return the (case, trial) keys already finished in it.

        Raises:
            StoreError: the run exists and ``resume`` is false.
            ResumeMismatch: resuming a run whose configuration changed; shows the diff.
        """
        row = self.db.execute("SELECT record FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (
                    run.run_id,
                    run.kind,
                    run.config_hash,
                    run.window,
                    run.started_at.isoformat(),
                    _dump(run),
                ),
            )
            return set()
        old = RunRecord.model_validate_json(row[0])
        if not resume:
            raise StoreError(
                f"run {run.run_id!r} already exists in {self.path}; pass --resume to continue "
                "it or choose another run name"
            )
        if old.config_hash != run.config_hash:
            raise ResumeMismatch(
                f"run {run.run_id!r} was started with a different configuration; start a new "
                f"run or restore the old settings:\n{config_diff(old.config, run.config)}"
            )
        return self.completed_keys(run.run_id)

    def acquire_run(self, run_id: str) -> None:
        """Take the lease on a run for this store connection (its process).

        Raises:
            RunBusy: another live process holds it; it names the process.
        """
        host = socket.gethostname()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute(
                "SELECT owner, host, pid, heartbeat_at FROM run_leases WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            if row is not None and row[0] != self.owner and _alive(row[1], row[2], row[3]):
                age = time.time() - row[3]
                raise RunBusy(
                    f"run {run_id!r} is being run by another process (pid {row[2]} on "
                    f"{row[1]}, last heard from {age:.0f}s ago); wait for it to finish "
                    "or stop it: running it here too would repeat its work"
                )
            self.db.execute(
                "INSERT OR REPLACE INTO run_leases VALUES (?, ?, ?, ?, ?)",
                (run_id, self.owner, host, os.getpid(), time.time()),
            )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def renew_run(self, run_id: str) -> bool:
        """Renew this connection's lease on a run (see :data:`HEARTBEAT_S`).

        Returns:
            False when the lease is no longer this connection's: it lapsed and another
            process took the run over, so this one must stop.
        """
        cursor = self.db.execute(
            "UPDATE run_leases SET heartbeat_at = ? WHERE run_id = ? AND owner = ?",
            (time.time(), run_id, self.owner),
        )
        return cursor.rowcount == 1

    def release_run(self, run_id: str) -> None:
        """Give up this connection's lease on a run, if it holds it."""
        self.db.execute(
            "DELETE FROM run_leases WHERE run_id = ? AND owner = ?", (run_id, self.owner)
        )

    def finish_run(self, run_id: str) -> None:
        """Mark a run finished."""
        row = self.db.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        run = RunRecord.model_validate_json(row[0])
        run.finished_at = datetime.now(UTC)
        self.db.execute(
            "UPDATE runs SET finished_at = ?, record = ? WHERE run_id = ?",
            (run.finished_at.isoformat(), _dump(run), run_id),
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        row = self.db.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else RunRecord.model_validate_json(row[0])

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        rows = self.db.execute("SELECT record FROM runs ORDER BY started_at, run_id")
        return [RunRecord.model_validate_json(r[0]) for r in rows]

    def completed_keys(self, run_id: str) -> set[tuple[str, int]]:
        """The (case, trial) keys with a stored result in this run."""
        rows = self.db.execute("SELECT case_id, trial FROM results WHERE run_id = ?", (run_id,))
        return {(r[0], r[1]) for r in rows}

    # -- writes (called by the single writer) -----------------------------------------

    def write_batch(self, items: Iterable[StoreItem]) -> None:
        """Write results, scores and failures in one transaction.

        A result whose (run, case, trial) is already stored is ignored, so a resumed run
        can never duplicate one; a re-graded score replaces the old one.
        """
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    self._write_one(item)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as e:
            raise StoreError(
                f"{self.path}: cannot write the store ({e}); what was committed before is "
                "kept, and a run resumes with --resume once the cause is fixed"
            ) from e

    def _write_one(self, item: StoreItem) -> None:
        if isinstance(item, ConversationResult):
            self.db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                (
                    item.run_id,
                    item.case_id,
                    item.trial,
                    item.conversation.id,
                    item.termination,
                    _dump(item),
                ),
            )
        elif isinstance(item, WindowScore):
            self._write_score(item.score, item.window)
        elif isinstance(item, Score):
            self._write_score(item, None)
        else:
            self.db.execute(
                "INSERT INTO score_failures (run_id, window, conversation_id, name, grader, record)"
                " VALUES (?, NULL, ?, ?, ?, ?)",
                (item.run_id, item.conversation_id, item.name, item.grader, _dump(item)),
            )

    def _write_score(self, s: Score, window: str | None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO scores (run_id, window, conversation_id, trial, message_index,"
            " name, kind, value_num, value_text, source, grader, record, anchor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.run_id,
                window,
                s.conversation_id,
                s.trial,
                s.message_index,
                s.name,
                s.kind,
                s.numeric,
                s.value if isinstance(s.value, str) else None,
                s.source,
                s.grader,
                _dump(s),
                int(s.anchor),
            ),
        )

    # -- the anchor set ---------------------------------------------------------------

    def anchor_set(self) -> list[Conversation]:
        """The anchor conversations the judges see again every window, in draw order."""
        rows = self.db.execute("SELECT conversation FROM anchor_set ORDER BY draw, conversation_id")
        return [Conversation.model_validate_json(r[0]) for r in rows]

    def add_anchors(self, window: str, anchors: Iterable[tuple[float, Conversation]]) -> int:
        """Add conversations (with their anchor draws) to the anchor set; returns how many.

        A conversation already in the set is kept as it was first stored.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO anchor_set VALUES (?, ?, ?, ?)",
                [(c.id, window, draw, _dump(c)) for draw, c in anchors],
            )
            added = self.db.total_changes - before
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return added

    # -- reads ------------------------------------------------------------------------

    def results(self, run_id: str) -> Iterator[ConversationResult]:
        """A run's results, ordered by case and trial."""
        rows = self.db.execute(
            "SELECT record FROM results WHERE run_id = ? ORDER BY case_id, trial", (run_id,)
        )
        for (record,) in rows:
            yield ConversationResult.model_validate_json(record)

    def scores(self, *, run_id: str | None = None, window: str | None = None) -> Iterator[Score]:
        """Scores filtered by run and/or window, in insertion order."""
        sql, args = _filtered("SELECT record FROM scores", run_id, window)
        for (record,) in self.db.execute(sql + " ORDER BY id", args):
            yield Score.model_validate_json(record)

    def score_failures(
        self, *, run_id: str | None = None, window: str | None = None
    ) -> Iterator[ScoreFailure]:
        """Grader failures filtered by run and/or window."""
        sql, args = _filtered("SELECT record FROM score_failures", run_id, window)
        for (record,) in self.db.execute(sql + " ORDER BY id", args):
            yield ScoreFailure.model_validate_json(record)

    def count(
        self, table: Literal["runs", "results", "scores", "score_failures", "review_queue"]
    ) -> int:
        """Rows in one table."""
        return int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    # -- review queue -----------------------------------------------------------------

    def enqueue_review(
        self,
        window: str,
        conversation: str,
        conversation_id: str,
        reasons: list[str],
        score: float | None = None,
        cluster: str | None = None,
    ) -> bool:
        """Add a conversation to the review queue; False if it is already queued."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO review_queue (window, conversation_id, reasons, score, cluster,"
            " conversation) VALUES (?, ?, ?, ?, ?, ?)",
            (window, conversation_id, json.dumps(reasons), score, cluster, conversation),
        )
        return cur.rowcount == 1

    def review_items(
        self, window: str | None = None, status: ReviewStatus | None = None
    ) -> list[dict[str, Any]]:
        """Review-queue items as dicts, lowest score first."""
        clauses, args = [], []
        if window is not None:
            clauses.append("window = ?")
            args.append(window)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        cur = self.db.execute(
            f"SELECT * FROM review_queue{where} ORDER BY score IS NULL, score, id", args
        )
        names = [d[0] for d in cur.description]
        items = [dict(zip(names, row, strict=True)) for row in cur]
        for item in items:
            item["reasons"] = json.loads(item["reasons"])
        return items

    def set_review(
        self,
        item_id: int,
        status: ReviewStatus,
        *,
        reviewer: str,
        label: str | None = None,
        expected: str | None = None,
    ) -> None:
        """Record a reviewer's decision on one queue item."""
        cur = self.db.execute(
            "UPDATE review_queue SET status = ?, label = ?, expected = ?, reviewer = ?,"
            " reviewed_at = ? WHERE id = ?",
            (status, label, expected, reviewer, _now(), item_id),
        )
        if cur.rowcount != 1:
            raise StoreError(f"no review item {item_id} in {self.path}")

    # -- export -----------------------------------------------------------------------

    def export_jsonl(
        self,
        table: Literal["runs", "results", "scores", "score_failures"],
        path: str | os.PathLike[str],
        *,
        run_id: str | None = None,
        window: str | None = None,
    ) -> int:
        """Write one table's records (optionally filtered) as JSONL; return the count."""
        if table == "runs":
            sql, args = _filtered("SELECT record FROM runs", run_id, window)
            sql += " ORDER BY started_at, run_id"
        elif table == "results":
            sql, args = _filtered("SELECT record FROM results", run_id, None)
            sql += " ORDER BY run_id, case_id, trial"
        else:
            sql, args = _filtered(f"SELECT record FROM {table}", run_id, window)
            sql += " ORDER BY id"
        n = 0
        with atomic_output(Path(path)) as f:
            for (record,) in self.db.execute(sql, args):
                f.write(record + "\n")
                n += 1
        return n


def _alive(host: str, pid: int, heartbeat_at: float) -> bool:
    """Whether a lease holder is still running."""
    if time.time() - heartbeat_at > LEASE_TTL_S:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _filtered(sql: str, run_id: str | None, window: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    if run_id is not None:
        clauses.append("run_id = ?")
        args.append(run_id)
    if window is not None:
        clauses.append("window = ?")
        args.append(window)
    return (f"{sql} WHERE {' AND '.join(clauses)}" if clauses else sql), args


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """A unified diff of two run configurations, one key per line."""
    a = json.dumps(old, indent=2, sort_keys=True, default=str).splitlines()
    b = json.dumps(new, indent=2, sort_keys=True, default=str).splitlines()
    return "\n".join(difflib.unified_diff(a, b, "stored run", "this run", lineterm=""))


class WindowScore(BaseModel):
    """A score written under an online window label."""

    window: str
    """The window label, e.g. ``2026-W47``."""
    score: Score
    """The score."""


StoreItem = ConversationResult | Score | WindowScore | ScoreFailure
"""Anything the single writer accepts."""
