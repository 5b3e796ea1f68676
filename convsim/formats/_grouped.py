"""Shared machinery for formats whose conversations are spread over many records.

Span and run exports (OpenTelemetry, OpenInference, LangSmith, Langfuse, the Responses
API) store one conversation as many records, in any order, and re-send the whole history
on every model call. :func:`read_grouped` reads such a file in two passes:

1. an index pass parses each record and keeps only small facts per *unit* (a trace, a
   response): its grouping key, links to other units and the last record it appears in;
2. a build pass parses the records again, buffers the pieces of each open conversation
   and builds the conversation as soon as its last record has been read, then frees it.

Memory therefore holds the index (a few hundred bytes per unit) plus the conversations
that are still open, not the file. Counts follow the conversations: every conversation
assembled counts as one record read, and so does every record or piece that could not
be parsed at all, so ``read == kept + rejected`` holds as for one-record formats.

:class:`History` rebuilds one main line of messages from model calls that each re-send
the history: repeated messages are matched by their normalised source form (falling back
to their canonical content), divergent histories are kept as branches and reported.
"""

from __future__ import annotations

import gc
import heapq
import inspect
import json
import math
import weakref
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from pydantic import JsonValue

from ..datasets import (
    JsonlReader,
    ReadReport,
    RecordError,
    RecordIssue,
    RejectSink,
    describe_parse_error,
)
from ..datasets._jsonl import MAX_KEPT_ISSUES, line_limit, open_input
from ..errors import TraceImportError
from ..trace import (
    AssistantMessage,
    Conversation,
    Message,
    Provenance,
    ToolMessage,
    UserMessage,
)
from ._base import read_json_records

SPAN_MAX_LINE_BYTES = 512 * 1024 * 1024
"""Longest record accepted from span exports; a whole-file JSON document counts as one."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T")

Note = tuple[int, str | None, str]
"""A non-fatal issue: (record number, field path or None, message)."""

NOT_KEPT = "not kept: "
"""Prefix of a note whose subject was dropped, not kept anywhere: such a note makes its
conversation count as lossy."""


class SourceError(RecordError):
    """A :class:`RecordError` that also names the record (line) the bad field is in."""

    def __init__(self, line: int, field: str | None, message: str) -> None:
        super().__init__(field, message)
        self.line = line


@dataclass(slots=True)
class Piece:
    """The part of one source record that belongs to one unit (a trace, a run, a response)."""

    number: int
    """Record (line) number the piece was read from."""
    where: str
    """Path of the piece inside its record, for error messages."""
    unit: str
    """The unit it belongs to: trace id, response id, ..."""
    data: Any
    """The piece as parsed from JSON."""
    hint: tuple[int, str, str] | None = None
    """(priority, key name, value) of a grouping key it carries; lower priority wins."""
    link: str | None = None
    """A unit (or alias) whose conversation this unit continues."""
    aliases: tuple[str, ...] = ()
    """Other ids that name this unit (run ids of a trace), for links to resolve."""
    extra: Any = None
    """Format-specific context (resource attributes, ...)."""
    own: str | None = None
    """The piece's id within its unit (a span id), when other pieces may anchor to it."""
    anchor: str | None = None
    """The ``own`` id of the piece this one belongs with (a log record's span)."""


@dataclass(slots=True)
class Group:
    """All pieces of one conversation, in file order."""

    key: str
    """The conversation id."""
    key_name: str
    """What the key is: ``gen_ai.conversation.id``, ``session.id``, ``trace_id``, ..."""
    pieces: list[Piece]
    """The pieces, in the order they were read."""
    conflicts: list[str] = field(default_factory=list[str])
    """Other grouping keys seen on the same units (reported as notes)."""
    units: list[str] = field(default_factory=list[str])
    """Unit ids in order of first appearance."""


Problem = tuple[str, str, Any]
"""A piece that cannot be used: (field path, message, the raw piece)."""


class GroupedFormat(Protocol):
    """What :func:`read_grouped` needs from one format."""

    name: str
    """Format name, used in provenance."""
    default_key: str
    """Key name used when a unit has no grouping key and is its own conversation."""

    def split(self, record: Any, number: int, problems: list[Problem]) -> list[Piece]:
        """Cut one record into pieces; unusable pieces go to ``problems``.

        Raises:
            RecordError: the record as a whole is unusable.
        """
        ...

    def build(self, group: Group, notes: list[Note]) -> Conversation:
        """Build the conversation of one group, adding non-fatal issues to ``notes``."""
        ...

    def rewrap(self, pieces: list[Piece]) -> list[Any]:
        """Records in the source format holding exactly these pieces (for the rejects file)."""
        ...


def file_layout(path: Path, max_line_bytes: int | None = None) -> str:
    """``"array"``, ``"object"`` (one pretty-printed JSON document) or ``"jsonl"``.

    Only the first line is read (up to ``max_line_bytes``), so telling JSONL apart costs
    nothing even when its lines are long.
    """
    if max_line_bytes is None:
        max_line_bytes = line_limit(SPAN_MAX_LINE_BYTES)
    with open_input(path) as f:
        first = f.readline(max_line_bytes).removeprefix(b"\xef\xbb\xbf")
        while first and not first.strip():
            first = f.readline(max_line_bytes)
    text = first.lstrip()
    if text.startswith(b"["):
        return "array"
    if text.startswith(b"{"):
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            return "object"
    return "jsonl"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while parsing or converting one record.

    Parsed JSON has no reference cycles, but every container it creates counts towards
    the collector's thresholds, and collections rescan everything still alive: on big
    records that more than doubles the parse time. The collector is never paused while
    control is back with the caller.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Settled:
    """Keeps a streaming read's held records out of the cycle collector's rescans.

    The reader holds the decoded records of every open conversation until it ends. They
    contain no reference cycles, yet every full collection walks them again, and on
    interleaved exports (many conversations open at once) that was a third of the import
    time. After each record, :func:`gc.freeze` moves what is alive to the permanent
    generation, which collections skip; reference counting still frees those objects the
    moment the reader drops them. Only done when nothing else has frozen objects, and
    undone when the read ends; cyclic garbage the caller makes meanwhile is collected
    then.
    """

    def __init__(self) -> None:
        self.owner = gc.isenabled() and gc.get_freeze_count() == 0

    def settle(self) -> None:
        if self.owner:
            gc.freeze()

    def release(self) -> None:
        if self.owner:
            self.owner = False
            gc.unfreeze()


def _without_gc(source: Iterator[T]) -> Iterator[T]:
    while True:
        with paused_gc():
            try:
                item = next(source)
            except StopIteration:
                return
        yield item


def _records(
    path: Path, scratch: ReadReport, rejects: RejectSink | None, max_line_bytes: int
) -> Iterator[tuple[int, Any]]:
    yield from _without_gc(_raw_records(path, scratch, rejects, max_line_bytes))


def _raw_records(
    path: Path, scratch: ReadReport, rejects: RejectSink | None, max_line_bytes: int
) -> Iterator[tuple[int, Any]]:
    if file_layout(path, max_line_bytes) != "jsonl":

        def keep(record: Any, number: int) -> tuple[int, Any]:
            return number, record

        yield from read_json_records(
            path, keep, report=scratch, rejects=rejects, max_line_bytes=max_line_bytes
        )
        return

    def parse(text: str) -> tuple[int, Any]:
        return reader.line, json.loads(text)

    reader = JsonlReader(
        path, parse, rejects=rejects, max_line_bytes=max_line_bytes, report=scratch
    )
    yield from reader


class _Plan:
    """The result of the index pass: which conversation each unit belongs to.

    Most units need no entry: when every piece of a unit carries the same grouping key,
    that key is the conversation. ``unit_key`` holds only the others (units with pieces
    that carry no key, linked units, conflicting keys), so it stays small.
    """

    def __init__(self) -> None:
        self.unit_key: dict[str, str] = {}
        self.key_name: dict[str, str] = {}
        self.first: dict[str, int] = {}
        self.ending: dict[int, list[str]] = {}
        self.conflicts: dict[str, list[str]] = {}
        self.peer_rank: dict[str, int] = {}
        """Units holding several conversations of one rank (sessions of a batch trace):
        the rank their keys share."""
        self.anchor_key: dict[tuple[str, str], str] = {}
        """(unit, own id) of pieces whose key is not their unit's, for anchored pieces."""

    def key_of(self, piece: Piece, record_hints: dict[str, str]) -> str:
        """The conversation a piece belongs to.

        ``record_hints`` maps the units of the piece's record to the grouping key their
        other pieces carry, so a piece without a key (a tool span) finds its trace's.
        In a unit that holds several conversations of one rank, a piece with such a
        key is its conversation's, and an anchored piece follows the piece it names.
        """
        rank = self.peer_rank.get(piece.unit)
        if rank is not None:
            if piece.hint is not None and piece.hint[0] == rank:
                return piece.hint[2]
            if piece.anchor is not None:
                anchored = self.anchor_key.get((piece.unit, piece.anchor))
                if anchored is not None:
                    return anchored
        key = self.unit_key.get(piece.unit)
        if key is not None:
            return key
        if piece.hint is not None:
            return piece.hint[2]
        return record_hints.get(piece.unit, piece.unit)


class _Index:
    """Facts gathered per unit in the index pass, stored compactly (arrays by unit number)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.first = array("q")
        self.last = array("q")
        self.hint: list[tuple[int, str, str] | None] = []
        self.hintless = bytearray()
        self.links: dict[int, list[str]] = {}
        self.aliases: dict[str, str] = {}
        self.other_hints: dict[int, set[str]] = {}
        self.peers: dict[int, dict[str, tuple[int, str, str]]] = {}
        self.own_hint: dict[tuple[str, str], str] = {}
        self._interned: dict[tuple[int, str, str], tuple[int, str, str]] = {}

    def add_record(self, pieces: list[Piece]) -> None:
        """Index the pieces of one record."""
        hinted = {p.unit for p in pieces if p.hint is not None}
        for piece in pieces:
            self.add(piece, alone=piece.hint is None and piece.unit not in hinted)

    def add(self, piece: Piece, *, alone: bool = True) -> None:
        """Index one piece; ``alone`` when no piece of its unit in its record has a key."""
        i = self.ids.get(piece.unit)
        if i is None:
            i = len(self.first)
            self.ids[piece.unit] = i
            self.first.append(piece.number)
            self.last.append(piece.number)
            self.hint.append(None)
            self.hintless.append(0)
        else:
            self.last[i] = piece.number
        hint = piece.hint
        if hint is None:
            if alone:
                self.hintless[i] = 1
        else:
            hint = self._interned.setdefault(hint, hint)
            best = self.hint[i]
            if best is None or hint[0] < best[0]:
                if best is not None and best[2] != hint[2]:
                    self.other_hints.setdefault(i, set()).add(best[2])
                self.hint[i] = hint
            elif hint[2] != best[2]:
                if hint[0] == best[0]:
                    # Another conversation of the same rank in this unit: its own group.
                    self.peers.setdefault(i, {}).setdefault(hint[2], hint)
                else:
                    self.other_hints.setdefault(i, set()).add(hint[2])
            current = self.hint[i]
            if piece.own is not None and current is not None and current[2] != hint[2]:
                # Only pieces keyed apart from their unit are remembered: the others'
                # anchored pieces find them through the unit's key.
                self.own_hint[(piece.unit, piece.own)] = hint[2]
        if piece.link is not None and piece.link != piece.unit:
            targets = self.links.setdefault(i, [])
            if piece.link not in targets:
                targets.append(piece.link)
        for alias in piece.aliases:
            self.aliases.setdefault(alias, piece.unit)

    def plan(self, default_key: str) -> _Plan:
        parent: dict[int, int] = {}

        def find(u: int) -> int:
            root = u
            while parent.get(root, root) != root:
                root = parent[root]
            while u != root:  # path compression
                nxt = parent[u]
                parent[u] = root
                u = nxt
            return root

        has_parent: set[int] = set()
        linked: set[int] = set()
        for i, targets in self.links.items():
            for target in targets:
                other = self.ids.get(self.aliases.get(target, target))
                if other is None or other == i:
                    continue
                has_parent.add(i)
                linked.update((i, other))
                a, b = find(i), find(other)
                if a != b:  # keep the earlier unit as representative, for stable keys
                    if self.first[a] <= self.first[b]:
                        parent[b] = a
                    else:
                        parent[a] = b
        names = list(self.ids)
        plan = _Plan()
        last: dict[str, int] = {}

        def place(i: int, key: str, name: str, conflicts: set[str]) -> None:
            hint = self.hint[i]
            own = hint[2] if hint is not None else names[i]
            if own != key or (self.hintless[i] and hint is not None):
                plan.unit_key[names[i]] = key
            plan.key_name.setdefault(key, name)
            first = self.first[i]
            if first < plan.first.get(key, first + 1):
                plan.first[key] = first
            if self.last[i] > last.get(key, -1):
                last[key] = self.last[i]
            if conflicts:
                known = plan.conflicts.setdefault(key, [])
                for alt in sorted(conflicts):
                    if alt != key and alt not in known:
                        known.append(alt)

        # Units not linked to others (traces) are their own component: no temporaries.
        for i in range(len(names)):
            if i in linked:
                continue
            hint = self.hint[i]
            key, name = (hint[2], hint[1]) if hint is not None else (names[i], default_key)
            merged = set(self.other_hints.get(i, set()))
            peers = self.peers.get(i, {})
            same = [p for p in peers.values() if hint is not None and p[0] == hint[0]]
            # Peers outranked by a later, better key merge into it like any other key.
            merged.update(p[2] for p in peers.values() if p not in same)
            place(i, key, name, merged)
            if same and hint is not None:
                plan.peer_rank[names[i]] = hint[0]
                for _, peer_name, peer in same:
                    plan.key_name.setdefault(peer, peer_name)
                    # Ends with its unit: a piece anchored to it may come last.
                    if self.first[i] < plan.first.get(peer, self.first[i] + 1):
                        plan.first[peer] = self.first[i]
                    last[peer] = max(last.get(peer, -1), self.last[i])
        plan.anchor_key = {k: v for k, v in self.own_hint.items() if k[0] in plan.peer_rank}
        # Linked units (response chains, feedback): the best key of the component, else
        # its root (the first unit without a parent).
        components: dict[int, list[int]] = {}
        for i in linked:
            components.setdefault(find(i), []).append(i)
        for members in components.values():
            members.sort()
            keyed = [i for i in members if self.hint[i] is not None]
            conflicts: set[str] = set()
            for i in members:
                conflicts.update(self.other_hints.get(i, set()))
            if keyed:
                top = min(
                    keyed,
                    key=lambda i: (cast(tuple[int, str, str], self.hint[i])[0], self.first[i]),
                )
                _, name, key = cast(tuple[int, str, str], self.hint[top])
                conflicts.update(cast(tuple[int, str, str], self.hint[i])[2] for i in keyed)
            else:
                roots = [i for i in members if i not in has_parent] or members
                key, name = names[min(roots, key=lambda i: self.first[i])], default_key
            for i in members:
                place(i, key, name, conflicts)
        for key, number in last.items():
            plan.ending.setdefault(number, []).append(key)
        return plan


@runtime_checkable
class Ordered(Protocol):
    """A format whose records can be merged across files by time (see :class:`_Inputs`)."""

    def order_key(self, record: Any) -> int | None:
        """The record's earliest time (any monotonic unit), or None when it has none."""
        ...


class _Inputs:
    """Several input files read as one stream of records, numbered in reading order.

    Pieces of one conversation may be spread over files (spans in one, their log
    records or feedback in another). Read one file after the other, every conversation
    would stay open until the last file reached it, so memory would grow with the input.
    For a format with an ``order_key`` the files are instead merged by the time of their
    records, as a collector wrote them, and a conversation ends soon after its last
    call. Records are numbered in reading order, the same in both passes of
    :func:`read_grouped`, and :meth:`locate` turns a number back into the file and line
    a user can open.
    """

    def __init__(self, paths: Sequence[Path], max_line_bytes: int, fmt: GroupedFormat) -> None:
        self.paths = list(paths)
        self.names = [str(p) for p in self.paths]
        self.in_array = [file_layout(p, max_line_bytes) == "array" for p in self.paths]
        self.max_line_bytes = max_line_bytes
        self.order_key: Callable[[Any], int | None] | None = (
            fmt.order_key if isinstance(fmt, Ordered) and len(self.paths) > 1 else None
        )
        # Multi-file reads map reading order to file and line (10 bytes a record); a
        # single file's records are numbered by their line.
        self.file = array("h")
        self.line = array("q")

    def records(
        self, scratches: list[ReadReport] | None, rejects: RejectSink | None
    ) -> Iterator[tuple[int, Any]]:
        streams = [
            _records(
                path,
                scratches[k] if scratches is not None else ReadReport(file=self.names[k]),
                rejects,
                self.max_line_bytes,
            )
            for k, path in enumerate(self.paths)
        ]
        if len(streams) == 1:
            yield from streams[0]
            return
        for seq, (k, line, record) in enumerate(self._merged(streams)):
            if seq == len(self.line):
                self.file.append(k)
                self.line.append(line)
            elif (self.file[seq], self.line[seq]) != (k, line):
                raise TraceImportError(
                    f"{self.names[k]} changed while it was being read; import it again"
                )
            yield seq, record

    def _merged(self, streams: list[Iterator[tuple[int, Any]]]) -> Iterator[tuple[int, int, Any]]:
        key = self.order_key
        if key is None:
            for k, stream in enumerate(streams):
                for line, record in stream:
                    yield k, line, record
            return
        # A k-way merge on (time, file, line); a record without a time keeps its file's
        # last time, so it stays where the file put it.
        last = [-(1 << 62)] * len(streams)
        heap: list[tuple[int, int, int, Any]] = []

        def push(k: int) -> None:
            item = next(streams[k], None)
            if item is None:
                return
            line, record = item
            t = key(record)
            last[k] = t if t is not None and t > last[k] else last[k]
            heapq.heappush(heap, (last[k], k, line, record))

        for k in range(len(streams)):
            push(k)
        while heap:
            _, k, line, record = heapq.heappop(heap)
            yield k, line, record
            push(k)

    def issue(self, number: int, field: str | None, message: str) -> RecordIssue:
        """A :class:`RecordIssue` at the file and line of a record number."""
        k = self.file[number] if self.line else 0
        return RecordIssue(
            self.names[k],
            self.line[number] if self.line else number,
            field,
            message,
            in_array=self.in_array[k],
            lost=message.startswith(NOT_KEPT),
        )

    def locate(self, number: int) -> tuple[str, int]:
        """The file name and line of a record number."""
        if not self.line:
            return self.names[0], number
        return self.names[self.file[number]], self.line[number]


def read_grouped(
    path: Path | Sequence[Path],
    fmt: GroupedFormat,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
    max_line_bytes: int | None = None,
) -> Iterator[Conversation]:
    """Yield the conversations of a multi-record export, one as soon as it is complete.

    Args:
        path: JSONL, a JSON array or one JSON document; or several such files read as
            one input, for exports whose records of one conversation are spread over
            files (traces and logs, runs and feedback).
        fmt: The format's splitting and building rules.
        report: Receives counts, issues and notes.
        rejects: Receives unreadable records, unusable pieces and the records of rejected
            conversations (re-wrapped in the source format, one per line).
        keep_source: Keep the conversation's source records in ``provenance.record``.
        max_line_bytes: Longest JSONL line accepted (default: ``CONVSIM_MAX_LINE_BYTES``
            when set, else :data:`SPAN_MAX_LINE_BYTES`).
    """
    if max_line_bytes is None:
        max_line_bytes = line_limit(SPAN_MAX_LINE_BYTES)
    settled = _Settled()
    try:
        yield from _read_grouped(path, fmt, report, rejects, keep_source, max_line_bytes, settled)
    finally:
        settled.release()


def _read_grouped(
    path: Path | Sequence[Path],
    fmt: GroupedFormat,
    report: ReadReport,
    rejects: RejectSink | None,
    keep_source: bool,
    max_line_bytes: int,
    settled: _Settled,
) -> Iterator[Conversation]:
    inputs = _Inputs([path] if isinstance(path, Path) else path, max_line_bytes, fmt)
    index = _Index()
    for number, record in inputs.records(None, None):
        try:
            with paused_gc():
                pieces = fmt.split(record, number, [])
        except (RecordError, ValueError, RecursionError):  # reported by the build pass
            continue
        index.add_record(pieces)
        settled.settle()
    plan = index.plan(fmt.default_key)
    del index

    scratches = [ReadReport(file=n) for n in inputs.names]
    synced = [0] * len(scratches)
    synced_issues = [0] * len(scratches)
    open_groups: dict[str, Group] = {}

    def sync() -> None:
        # Unreadable records are counted by the record reader in each file's scratch.
        for k, scratch in enumerate(scratches):
            delta = scratch.rejected - synced[k]
            report.read += delta
            report.rejected += delta
            for issue in scratch.issues[synced_issues[k] :]:
                if len(report.issues) < MAX_KEPT_ISSUES:
                    report.issues.append(issue)
            synced[k], synced_issues[k] = scratch.rejected, len(scratch.issues)

    def write_reject(records: list[Any]) -> None:
        if rejects is None:
            return
        for rec in records:
            rejects.write(json.dumps(rec, ensure_ascii=False, default=str).encode() + b"\n")

    def emit(group: Group) -> Iterator[Conversation]:
        report.read += 1
        notes: list[Note] = []
        first = plan.first.get(group.key, group.pieces[0].number)
        try:
            notes.extend(
                (
                    first,
                    None,
                    f"the same units also carry the grouping key {other!r}; "
                    f"grouped under {group.key!r}",
                )
                for other in plan.conflicts.get(group.key, [])
            )
            with paused_gc():
                conv = fmt.build(group, notes)
        except Exception as e:
            line = e.line if isinstance(e, SourceError) else first
            fld, msg = describe_parse_error(e)
            report.reject(inputs.issue(line, fld, f"conversation {group.key!r}: {msg}"))
            write_reject(fmt.rewrap(group.pieces))
            return
        if conv.provenance is None:
            conv.provenance = Provenance(source_format=fmt.name)
        conv.provenance.source_file, conv.provenance.source_line = inputs.locate(first)
        if keep_source:
            conv.provenance.record = fmt.rewrap(group.pieces)
        report.kept += 1
        failed = conv.metadata.get("failed_calls")
        report.failed_calls += len(failed) if isinstance(failed, list) else 0
        report.keep_noted([inputs.issue(ln, fld, msg) for ln, fld, msg in notes])
        yield conv

    for number, record in inputs.records(scratches, rejects):
        sync()
        problems: list[Problem] = []
        try:
            with paused_gc():
                pieces = fmt.split(record, number, problems)
        except Exception as e:
            fld, msg = describe_parse_error(e)
            report.read += 1
            report.reject(inputs.issue(number, fld, msg))
            write_reject([record])
            continue
        for where, msg, raw in problems:
            report.read += 1
            report.reject(inputs.issue(number, where, msg))
            write_reject([raw])
        record_hints: dict[str, str] = {}
        best_prio: dict[str, int] = {}
        for piece in pieces:
            if piece.hint is not None and piece.hint[0] < best_prio.get(piece.unit, 1 << 30):
                best_prio[piece.unit] = piece.hint[0]
                record_hints[piece.unit] = piece.hint[2]
        for piece in pieces:
            key = plan.key_of(piece, record_hints)
            group = open_groups.get(key)
            if group is None:
                group = Group(key, plan.key_name.get(key, fmt.default_key), [])
                open_groups[key] = group
            group.pieces.append(piece)
            if not group.units or group.units[-1] != piece.unit:
                if piece.unit not in group.units:
                    group.units.append(piece.unit)
        settled.settle()
        for key in plan.ending.pop(number, ()):
            done = open_groups.pop(key, None)
            if done is not None:
                yield from emit(done)
    sync()
    for group in list(open_groups.values()):  # only if the two passes disagreed
        yield from emit(group)


# --------------------------------------------------------------------------------------
# Small value helpers shared by the span formats.


def nanos_to_datetime(ns: int | None) -> datetime | None:
    """A UTC datetime (microsecond precision) from Unix nanoseconds; None for 0 or None."""
    if not ns:
        return None
    try:
        return EPOCH + timedelta(microseconds=ns // 1000)
    except OverflowError:
        return None


def datetime_to_nanos(value: datetime) -> int:
    """Unix nanoseconds of a datetime (exact for microsecond datetimes)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(microseconds=1) * 1000


def parse_iso(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (``Z`` allowed) as a UTC datetime, or None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def count(value: Any) -> int | None:
    """A non-negative token count, or None when the value is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def money(value: Any) -> float | None:
    """A non-negative, finite cost, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def json_safe(value: Any) -> JsonValue:
    """``value`` with non-finite floats replaced by their names, so it stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def text_of(value: Any) -> str | None:
    """A tool result or similar payload as text: strings as they are, JSON otherwise."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(json_safe(value), ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------
# Rebuilding one conversation from calls that each re-send the history.


@dataclass(slots=True)
class Origin:
    """Where a message came from: record number and field path."""

    line: int
    where: str


_VOLATILE = frozenset(
    {"metadata", "timestamp", "latency_ms", "id", "model", "usage", "finish_reason"}
)


def _fingerprint(m: Message) -> dict[str, Any]:
    data = m.model_dump(mode="json", exclude=set(_VOLATILE), exclude_none=True)
    if data.get("content") == "":  # tracers write an empty reply as "" or null
        del data["content"]
    if data.get("role") == "tool":  # only some forms repeat the tool name or error flag
        data.pop("name", None)
        data.pop("is_error", None)
    return data


def content_key(messages: list[Message]) -> str:
    """A canonical, order-preserving fingerprint of messages' role and content."""
    return json.dumps([_fingerprint(m) for m in messages], sort_keys=True, ensure_ascii=False)


Converter = Callable[[Any, Origin], list[Message]]
"""Turns one source message (normalised form) into canonical messages."""


Normalizer = Callable[[Any], Any]
"""Drops fields that differ between a call's output and the same message re-sent later."""


def _same(raw: Any) -> Any:
    return raw


@dataclass(slots=True)
class _Entry:
    raw: Any
    messages: list[Message]
    origin: Origin
    key: str | None = None


def _weakly(convert: Converter) -> Converter:
    """``convert`` without a strong reference to the object it is a method of.

    Builders keep their history and hand it their own bound method; held strongly that
    is a reference cycle, so every conversation's whole graph of decoded records waited
    for the cycle collector, which then spent about a third of an OTLP import walking it.
    """
    if not inspect.ismethod(convert):
        return convert
    ref = weakref.WeakMethod(convert)

    def call(raw: Any, origin: Origin) -> list[Message]:
        method = ref()
        if method is None:
            raise RuntimeError("a history outlived the builder that converts its messages")
        converted: list[Message] = method(raw, origin)
        return converted

    return call


class History:
    """The main line of a conversation, rebuilt from calls that each re-send the history.

    Args:
        convert: Maps one source message to canonical messages (raises
            :class:`RecordError` naming the field when it cannot).
        notes: Where non-fatal issues (branches, extra choices) are reported.
        normalize: Maps a source message to the form compared for equality.
        trim_window: How far back a trimmed context window is looked for.
    """

    def __init__(
        self,
        convert: Converter,
        notes: list[Note],
        normalize: Normalizer = _same,
        trim_window: int = 128,
    ) -> None:
        self.convert = _weakly(convert)
        self.normalize = normalize
        self.notes = notes
        self.trim_window = trim_window
        self.entries: list[_Entry] = []
        self.branches: list[dict[str, JsonValue]] = []
        self.edits = 0
        self.retries = 0
        self.outputs: dict[str, _Entry] = {}
        self.failures: list[dict[str, JsonValue]] = []

    # -- matching --------------------------------------------------------------------

    def _key(self, entry: _Entry) -> str:
        if entry.key is None:
            entry.key = content_key(entry.messages)
        return entry.key

    def _matches(self, raw: Any, origin: Origin, i: int) -> bool:
        entry = self.entries[i]
        if self.normalize(raw) == entry.raw:
            return True
        try:
            converted = self.convert(raw, origin)
        except RecordError:
            return False
        return content_key(converted) == self._key(entry)

    def _entry(self, raw: Any, origin: Origin) -> _Entry:
        return _Entry(self.normalize(raw), self.convert(raw, origin), origin)

    def start_of(self, position: int) -> int:
        """Index in :meth:`messages` of the first message of entry ``position``."""
        return sum(len(e.messages) for e in self.entries[:position])

    # -- building --------------------------------------------------------------------

    def add_call(
        self,
        inputs: list[tuple[Any, Origin]],
        outputs: list[tuple[Any, Origin]],
        *,
        label: str,
        apply: Callable[[list[Message], bool], None] | None = None,
    ) -> None:
        """Merge one model call: the history it was given and the message(s) it returned.

        ``apply(messages, new)`` adds call details (model, usage, timing) to the output's
        messages; ``new`` is False when the output was already known, so only missing
        details should be filled in. Outputs after the first are alternative choices and
        are kept in the first output's metadata.
        """
        entries = self.entries
        n, size = len(inputs), len(entries)
        p = 0
        while p < n and p < size and self._matches(inputs[p][0], inputs[p][1], p):
            p += 1
        fresh = inputs[p:]
        if p < size:
            if p == n:
                # The call re-sent a prefix of the history: a nested or repeated call, or a
                # regenerated answer.
                if not outputs:
                    return
                raw, origin = outputs[0]
                if self._matches(raw, origin, p):
                    entry = entries[p]
                    if apply is not None:
                        apply(entry.messages, False)
                    self.outputs.setdefault(label, entry)
                    return
                self._branch(p, outputs[0], label, regenerated=True)
            else:
                q = self._find_trim(inputs, p)
                if q is not None:
                    fresh = inputs[p + (size - q) :]
                else:
                    self._branch(p, inputs[p], label, regenerated=False)
        for raw, origin in fresh:
            self.entries.append(self._entry(raw, origin))
        if not outputs:
            return
        raw, origin = outputs[0]
        entry = self._entry(raw, origin)
        if apply is not None:
            apply(entry.messages, True)
        if len(outputs) > 1:
            extra = [json_safe(o[0]) for o in outputs[1:]]
            entry.messages[-1].metadata.setdefault("other_choices", extra)
            self.notes.append(
                (
                    origin.line,
                    origin.where,
                    f"{len(outputs)} choices returned; the first continues the conversation, "
                    "the others are kept in metadata.other_choices",
                )
            )
        self.entries.append(entry)
        self.outputs[label] = entry

    def add_failed_call(
        self,
        inputs: list[tuple[Any, Origin]],
        *,
        label: str,
        error_type: str | None,
        message: str | None,
        details: dict[str, JsonValue] | None = None,
    ) -> None:
        """Record a model call that failed (a 429, a timeout): it returned no message.

        Its inputs extend the conversation when they continue it (the user did send that
        message, and got an error instead of an answer); when they do not, the main line
        is left alone and the inputs are kept with the failure. Either way the failure
        goes to ``metadata.failed_calls`` and is reported, never dropped.
        """
        n, size = len(inputs), len(self.entries)
        p = 0
        while p < n and p < size and self._matches(inputs[p][0], inputs[p][1], p):
            p += 1
        failure: dict[str, JsonValue] = {"call": label}
        if error_type:
            failure["error_type"] = error_type
        if message:
            failure["message"] = message
        failure.update(details or {})
        if p == size:
            for raw, at in inputs[p:]:
                self.entries.append(self._entry(raw, at))
            failure["after_message"] = self.start_of(len(self.entries)) - 1
        else:
            failure["inputs"] = [json_safe(raw) for raw, _ in inputs]
        self.failures.append(failure)
        last = inputs[-1][1] if inputs else None
        self.notes.append(
            (
                last.line if last else 0,
                last.where if last else None,
                f"{label} failed ({error_type or 'error'}"
                + (f": {message[:80]}" if message else "")
                + f"); kept in metadata.failed_calls[{len(self.failures) - 1}]",
            )
        )

    def extend_if_continued(self, messages: list[tuple[Any, Origin]], label: str) -> bool | None:
        """Add messages from a call that is not a model call (an agent span).

        When the known history is a prefix of ``messages`` the rest is appended; when
        none of them is known yet they are all appended (a delta); when all are known,
        nothing happens. Returns False when they could not be placed (caller reports).
        """
        if not messages:
            return True
        size = len(self.entries)
        p = 0
        while p < len(messages) and p < size and self._matches(*messages[p], p):
            p += 1
        if p == size:
            for raw, origin in messages[p:]:
                self.entries.append(self._entry(raw, origin))
            return True
        known = {self._key(e) for e in self.entries}
        keys = [content_key(self.convert(raw, origin)) for raw, origin in messages]
        if all(k in known for k in keys):
            return None
        if not any(k in known for k in keys):
            for raw, origin in messages:
                self.entries.append(self._entry(raw, origin))
            return True
        return False

    def _find_trim(self, inputs: list[tuple[Any, Origin]], p: int) -> int | None:
        size = len(self.entries)
        raw, origin = inputs[p]
        for q in range(size - 1, max(p, size - self.trim_window), -1):
            span = size - q
            if p + span > len(inputs) or not self._matches(raw, origin, q):
                continue
            if all(self._matches(*inputs[p + j], q + j) for j in range(1, span)):
                return q
        return None

    def _branch(
        self, p: int, first_new: tuple[Any, Origin], label: str, *, regenerated: bool
    ) -> None:
        old = self.entries[p:]
        at = self.start_of(p)
        dropped = [m for e in old for m in e.messages]
        origin = first_new[1]
        kind = "regenerated" if regenerated else "edited"
        if not regenerated:
            try:
                new_first = self.convert(*first_new)
            except RecordError:
                new_first = []
            if (
                dropped
                and new_first
                and isinstance(dropped[0], UserMessage)
                and isinstance(new_first[0], UserMessage)
            ):
                self.edits += 1
            elif (
                dropped
                and new_first
                and isinstance(dropped[0], AssistantMessage)
                and isinstance(new_first[0], AssistantMessage)
            ):
                self.retries += 1
                kind = "regenerated"
            else:
                kind = "diverged"
        else:
            self.retries += 1
        self.branches.append(
            {
                "at": at,
                "kind": kind,
                "replaced_by": label,
                "messages": [m.model_dump(mode="json", exclude_none=True) for m in dropped],
            }
        )
        self.notes.append(
            (
                origin.line,
                origin.where,
                f"history {kind} at message {at}: {len(dropped)} earlier message(s) set aside "
                f"in metadata.branches[{len(self.branches) - 1}]; the conversation follows "
                f"{label}",
            )
        )
        del self.entries[p:]

    # -- results ---------------------------------------------------------------------

    def messages(self) -> list[Message]:
        """The main line, flattened."""
        return [m for e in self.entries for m in e.messages]

    def origins(self) -> list[Origin]:
        """The origin of every message of :meth:`messages`."""
        return [e.origin for e in self.entries for _ in e.messages]

    def output_index(self, label: str) -> int | None:
        """Index in :meth:`messages` of the (last) message a call produced, if still there."""
        entry = self.outputs.get(label)
        if entry is None:
            return None
        position = 0
        for e in self.entries:
            if e is entry:
                return position + len(e.messages) - 1
            position += len(e.messages)
        return None


def check_links(messages: list[Message], origins: list[Origin]) -> None:
    """Raise :class:`SourceError` naming the source of the first broken tool link or id.

    Mirrors :func:`convsim.trace.find_problems`, but points at the record and field the
    offending message came from.
    """
    open_calls: dict[str, int] = {}
    seen_ids: set[str] = set()
    for i, m in enumerate(messages):
        origin = origins[i]
        if m.id is not None:
            if m.id in seen_ids:
                raise SourceError(origin.line, origin.where, f"duplicate message id {m.id!r}")
            seen_ids.add(m.id)
        if isinstance(m, AssistantMessage):
            for c in m.tool_calls:
                if c.id in open_calls:
                    raise SourceError(
                        origin.line,
                        origin.where,
                        f"tool call id {c.id!r} reused while an earlier call with that id is "
                        "still unanswered",
                    )
                open_calls[c.id] = i
        elif isinstance(m, ToolMessage):
            if m.tool_call_id not in open_calls:
                raise SourceError(
                    origin.line,
                    origin.where,
                    f"tool result for call id {m.tool_call_id!r} answers no earlier tool call "
                    "in this conversation",
                )
            del open_calls[m.tool_call_id]


def insert_tool_results(
    messages: list[Message], origins: list[Origin], results: list[tuple[ToolMessage, Origin]]
) -> None:
    """Insert results for calls that have none, right after the call's other results.

    Each result must answer a call in ``messages`` that has no result yet (the caller
    checked). Works in one pass, so many results cost linear time.
    """
    if not results:
        return
    by_call: dict[str, tuple[ToolMessage, Origin]] = {m.tool_call_id: (m, o) for m, o in results}
    out: list[Message] = []
    out_origins: list[Origin] = []
    pending: list[tuple[ToolMessage, Origin]] = []
    for m, o in zip(messages, origins, strict=True):
        if pending and not isinstance(m, ToolMessage):
            for pm, po in pending:
                out.append(pm)
                out_origins.append(po)
            pending = []
        out.append(m)
        out_origins.append(o)
        if isinstance(m, AssistantMessage):
            pending = [by_call.pop(c.id) for c in m.tool_calls if c.id in by_call]
    for pm, po in pending:
        out.append(pm)
        out_origins.append(po)
    messages[:] = out
    origins[:] = out_origins


def merge_metadata(message: Message, key: str, values: dict[str, JsonValue]) -> None:
    """Merge ``values`` into ``message.metadata[key]`` without overwriting known entries."""
    if not values:
        return
    current = message.metadata.get(key)
    if isinstance(current, dict):
        for k, v in values.items():
            current.setdefault(k, v)
    else:
        message.metadata[key] = dict(values)


@dataclass(slots=True)
class ToolRun:
    """One tool execution recorded outside the message history (a tool span or run)."""

    call_id: str | None
    """Id of the call it answers, when the source recorded one."""
    name: str | None
    """Tool name, used to match calls when there is no id."""
    result: str | None
    """The result (or error) text."""
    is_error: bool
    """The execution failed."""
    timestamp: datetime | None
    """When it finished."""
    latency_ms: float | None
    """How long it ran."""
    extra: dict[str, JsonValue]
    """Unmapped source fields, kept in the tool message's metadata under ``extra_key``."""
    origin: Origin
    """Record and field of the call id (for errors)."""
    label: str
    """How to name it in notes: ``tool span 1a2b``."""
    raw: Any = None
    """The source record, kept (made JSON-safe) only when it cannot be attached."""


def attach_tool_runs(
    runs: list[ToolRun],
    messages: list[Message],
    origins: list[Origin],
    *,
    branches: list[dict[str, JsonValue]],
    notes: list[Note],
    metadata: dict[str, JsonValue],
    extra_key: str,
    unattached_key: str,
) -> int:
    """Attach tool executions to the conversation; returns how many kept ``extra`` fields.

    A run whose call already has a result enriches it (timing, error flag, missing
    content); a run for a call without a result adds one right after the call's other
    results. A run without a call id answers the first unanswered call of its tool, else
    enriches the first answered one no other run has enriched yet. A run
    whose call id matches no call rejects the conversation (:class:`SourceError`), unless
    the call is in a set-aside branch (then it is reported and skipped); a run with no id
    and no candidate call is kept verbatim in ``metadata[unattached_key]`` and reported.
    """
    if not runs:
        return 0
    call_names: dict[str, str] = {}
    calls_in_order: list[str] = []
    results: dict[str, ToolMessage] = {}
    for m in messages:
        if isinstance(m, AssistantMessage):
            for c in m.tool_calls:
                call_names[c.id] = c.name
                calls_in_order.append(c.id)
        elif isinstance(m, ToolMessage):
            results[m.tool_call_id] = m
    branch_calls: set[Any] = set()
    for b in branches:
        dropped = b.get("messages")
        for old in dropped if isinstance(dropped, list) else []:
            calls = old.get("tool_calls") if isinstance(old, dict) else None
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, dict):
                    branch_calls.add(call.get("id"))
    new_results: list[tuple[ToolMessage, Origin]] = []
    unattached: list[JsonValue] = []
    kept = 0
    enriched: set[str] = set()
    for run in runs:
        call_id = run.call_id
        if not call_id:
            candidates = [
                cid
                for cid in calls_in_order
                if call_names.get(cid) == run.name and cid not in results
            ] or [
                # The result came with the next model call's input (as exporters that
                # record tools by name send it): the run still gives its timing.
                cid
                for cid in calls_in_order
                if call_names.get(cid) == run.name and cid not in enriched
            ]
            if not candidates:
                unattached.append(json_safe(run.raw))
                notes.append(
                    (
                        run.origin.line,
                        run.origin.where,
                        f"{run.label} has no call id and matches no unanswered call of "
                        f"{run.name!r}; kept in metadata[{unattached_key!r}]",
                    )
                )
                continue
            call_id = candidates[0]
        existing = results.get(call_id)
        enriched.add(call_id)
        if existing is not None:
            if existing.content is None and existing.parts is None and run.result is not None:
                existing.content = run.result
            existing.is_error = existing.is_error or run.is_error
            if existing.timestamp is None:
                existing.timestamp = run.timestamp
            if existing.latency_ms is None:
                existing.latency_ms = run.latency_ms
            if run.extra:
                merge_metadata(existing, extra_key, run.extra)
                kept += 1
            continue
        if call_id in call_names:
            msg = ToolMessage(
                tool_call_id=call_id,
                content=run.result,
                is_error=run.is_error,
                timestamp=run.timestamp,
                latency_ms=run.latency_ms,
            )
            if run.extra:
                msg.metadata[extra_key] = dict(run.extra)
                kept += 1
            results[call_id] = msg
            new_results.append((msg, run.origin))
            continue
        if call_id in branch_calls:
            notes.append(
                (
                    run.origin.line,
                    run.origin.where,
                    f"{run.label} answers call {call_id!r} of a set-aside branch; not attached",
                )
            )
            continue
        raise SourceError(
            run.origin.line,
            run.origin.where,
            f"{run.label} answers call id {call_id!r}, which matches no tool call in this "
            "conversation",
        )
    if unattached:
        metadata[unattached_key] = unattached
    insert_tool_results(messages, origins, new_results)
    return kept


def latency(start: datetime | None, end: datetime | None) -> float | None:
    """Milliseconds from ``start`` to ``end``; None if either is missing or out of order."""
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() * 1000.0


def kept_note(first_line: int, kept: dict[str, int]) -> Note | None:
    """One note summing up what was kept verbatim in metadata, by key."""
    if not kept:
        return None
    what = ", ".join(f"{k} ({n}x)" for k, n in sorted(kept.items()))
    return (first_line, None, f"kept verbatim, no canonical field: {what}")


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty dict (for optional sub-objects)."""
    return value if isinstance(value, dict) else {}
