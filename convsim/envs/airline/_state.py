"""The airline database as copy-on-write tables over a shared, read-only initial state.

A fresh environment must not pay for a copy of the whole 5 MB database: conversations
touch a handful of records, so each environment shares the initial data and copies a
record only when a tool first writes to it. Hashes are built the same way, from cached
per-record digests of the initial data plus digests of the records this environment owns.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from ...errors import ConfigError
from ...tools import hash_state

TABLES = ("flights", "reservations", "users")
"""The database's tables, each a JSON object of records keyed by id."""


class InitialData:
    """An initial database that any number of environments share; never modified."""

    def __init__(self, db: Mapping[str, Any]) -> None:
        """Take ``db`` as the initial state; the caller must not modify it afterwards."""
        if set(db) != set(TABLES):
            raise ConfigError(
                f"an airline database has exactly the keys {', '.join(TABLES)}; got "
                f"{', '.join(sorted(map(str, db))) or 'none'}"
            )
        for name in TABLES:
            if not isinstance(db[name], dict):
                raise ConfigError(f"airline database table {name!r} must be a JSON object")
        self.tables: dict[str, dict[str, Any]] = {name: db[name] for name in TABLES}
        self._digests: dict[str, dict[str, str]] | None = None
        self._tau_pieces: dict[str, dict[str, str]] | None = None

    def digests(self, table: str) -> dict[str, str]:
        """Digest of every initial record of ``table``, computed once."""
        if self._digests is None:
            self._digests = {
                name: {k: hash_state(v) for k, v in self.tables[name].items()} for name in TABLES
            }
        return self._digests[table]

    def tau_pieces(self, table: str) -> dict[str, str]:
        """tau-bench's hash text of every initial record of ``table``, computed once."""
        if self._tau_pieces is None:
            self._tau_pieces = {
                name: {k: _tau_piece(k, v) for k, v in self.tables[name].items()} for name in TABLES
            }
        return self._tau_pieces[table]


class Table:
    """One table's records: the shared initial ones, overridden by this state's own."""

    __slots__ = ("_initial", "_own")

    def __init__(self, initial: dict[str, Any]) -> None:
        """A view of ``initial`` with no changes yet."""
        self._initial = initial
        self._own: dict[str, Any] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._own or key in self._initial

    def __getitem__(self, key: str) -> Any:
        """The record, for reading only: it may be shared with other environments."""
        own = self._own
        return own[key] if key in own else self._initial[key]

    def edit(self, key: str) -> Any:
        """The record, safe to modify: copied from the initial data on first write."""
        own = self._own
        if key not in own:
            own[key] = copy.deepcopy(self._initial[key])
        return own[key]

    def put(self, key: str, record: Any) -> None:
        """Add or replace a record."""
        self._own[key] = record

    def values(self) -> Iterator[Any]:
        """Every record, in the initial order and then in order of addition."""
        own, initial = self._own, self._initial
        if not own:
            yield from initial.values()
            return
        for key, record in initial.items():
            yield own.get(key, record)
        for key, record in own.items():
            if key not in initial:
                yield record

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every ``(id, record)`` pair, in the order of :meth:`values`."""
        own, initial = self._own, self._initial
        for key, record in initial.items():
            yield key, own.get(key, record)
        for key, record in own.items():
            if key not in initial:
                yield key, record

    @property
    def own(self) -> dict[str, Any]:
        """Records written or added since the last reset (read only)."""
        return self._own

    def reset(self) -> None:
        """Forget every change."""
        self._own.clear()


class AirlineState:
    """The three tables of one environment."""

    __slots__ = ("flights", "initial", "reservations", "users")

    def __init__(self, initial: InitialData) -> None:
        """A state equal to ``initial``."""
        self.initial = initial
        self.flights = Table(initial.tables["flights"])
        self.reservations = Table(initial.tables["reservations"])
        self.users = Table(initial.tables["users"])

    def table(self, name: str) -> Table:
        """A table by name."""
        table: Table = getattr(self, name)
        return table

    def reset(self) -> None:
        """Back to the initial state."""
        for name in TABLES:
            self.table(name).reset()

    def snapshot(self) -> dict[str, Any]:
        """A deep, JSON-serialisable copy of the whole database."""
        merged = {name: dict(self.table(name).items()) for name in TABLES}
        # A JSON round trip is both the fastest deep copy here and a guarantee that the
        # result serialises.
        snapshot: dict[str, Any] = json.loads(json.dumps(merged))
        return snapshot

    def digest(self) -> str:
        """A hash of the state built from per-record digests (equal states, equal hashes)."""
        tree: dict[str, dict[str, str]] = {}
        for name in TABLES:
            table = self.table(name)
            digests = self.initial.digests(name)
            if table.own:
                digests = {**digests, **{k: hash_state(v) for k, v in table.own.items()}}
            tree[name] = digests
        return hash_state(tree)

    def tau_bench_hash(self) -> str:
        """The hash tau-bench's ``Env.get_data_hash`` computes for this state.

        tau-bench turns the database into nested tuples with dict items sorted by key and
        hashes their ``str``; this builds the same text from cached per-record pieces.
        """
        tables = []
        for name in TABLES:
            table = self.table(name)
            pieces = self.initial.tau_pieces(name)
            if table.own:
                pieces = {**pieces, **{k: _tau_piece(k, v) for k, v in table.own.items()}}
            ordered = [pieces[k] for k in sorted(pieces)]
            tables.append(f"({name!r}, {_tuple_text(ordered)})")
        return hashlib.sha256(_tuple_text(tables).encode("utf-8")).hexdigest()


def _tau_hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _tau_hashable(v)) for k, v in sorted(value.items()))
    if isinstance(value, list):
        return tuple(_tau_hashable(v) for v in value)
    return value


def _tau_piece(key: str, record: Any) -> str:
    return repr((key, _tau_hashable(record)))


def _tuple_text(items: list[str]) -> str:
    # How Python prints a tuple whose elements print as ``items``.
    if len(items) == 1:
        return f"({items[0]},)"
    return f"({', '.join(items)})"
