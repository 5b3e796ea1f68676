"""Evaluation cases and append-only datasets."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, appends unguarded
    fcntl = None  # type: ignore[assignment]

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, model_validator

from .._files import atomic_output
from ..errors import ConfigError
from ..trace import Conversation
from ._jsonl import JsonlReader, dump_line

_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True)


def _empty(value: object) -> bool:
    return not value


class CaseProvenance(BaseModel):
    """Where an evaluation case came from, so a harvested failure can be traced back."""

    model_config = _CONFIG

    source: str
    """How the case was made: ``import``, ``harvest``, ``tau-bench``, ``hand-written``, ..."""
    window: str | None = None
    """Online window the conversation was harvested from."""
    conversation_id: str | None = None
    """Id of the production conversation the case was made from."""
    reviewer: str | None = None
    """Who confirmed the case."""
    label: str | None = None
    """The reviewer's label for the failure."""
    reviewed_at: datetime | None = None
    """When the case was confirmed (UTC)."""


class EvalCase(BaseModel):
    """One evaluation case: a recorded conversation or a persona, plus what should happen."""

    model_config = _CONFIG

    schema_version: Literal[1] = 1
    """Version of this schema."""
    id: str = Field(min_length=1)
    """Case id, unique and permanent within its dataset."""
    conversation: Conversation | None = None
    """A recorded conversation to replay or grade (a cassette)."""
    persona: str | None = None
    """Name or path of the persona to simulate."""
    expectations: list[dict[str, JsonValue]] = Field(default_factory=list, exclude_if=_empty)
    """Outcome checks, each an object with a ``type`` key understood by the graders."""
    tags: dict[str, str] = Field(default_factory=dict, exclude_if=_empty)
    """Cohort keys for drill-downs."""
    split: Literal["train", "dev", "test", "holdout"] = "test"
    """Which split the case belongs to; ``holdout`` cases keep the suite from being overfit."""
    provenance: CaseProvenance | None = None
    """Where the case came from."""

    @model_validator(mode="after")
    def _has_subject(self) -> EvalCase:
        if self.conversation is None and self.persona is None:
            raise ValueError(f"case {self.id!r} needs a conversation or a persona")
        return self


EvalCaseAdapter: TypeAdapter[EvalCase] = TypeAdapter(EvalCase)
"""Validates one evaluation case."""


def append_cases(path: str | os.PathLike[str], cases: list[EvalCase]) -> tuple[int, int]:
    """Append cases to a dataset file; return (added, already present).

    Datasets are append-only: an id, once written, always means the same case. A case
    whose id is already present with identical content is skipped; one with different
    content is refused, since silently changing a case would change every result that
    was ever measured against it.
    """
    target = Path(os.path.realpath(path))  # one lock however the dataset is reached
    # Read, check and rewrite under one lock: two harvests into one dataset must not
    # each rename their own copy over the other's.
    with _locked(target):
        return _append(target, cases)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    lock = target.with_name(f".{target.name}.lock")
    with lock.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _append(target: Path, cases: list[EvalCase]) -> tuple[int, int]:
    existing: dict[str, str] = {}
    if target.exists() and target.stat().st_size > 0:
        reader = JsonlReader(target, EvalCaseAdapter)
        for case in reader:
            existing[case.id] = dump_line(case)
        if reader.report.rejected:
            raise ConfigError(
                f"{target}: {reader.report.rejected} invalid line(s), first: "
                f"{reader.report.issues[0]}; fix the dataset before appending to it"
            )
    added, present = 0, 0
    new_lines: list[str] = []
    for case in cases:
        line = dump_line(case)
        if case.id in existing:
            if existing[case.id] != line:
                raise ConfigError(
                    f"{target}: case {case.id!r} already exists with different content; "
                    "datasets are append-only, so give the changed case a new id"
                )
            present += 1
            continue
        existing[case.id] = line
        new_lines.append(line)
        added += 1
    if new_lines:
        # Rewritten whole and renamed, not appended in place: a full disk mid-append
        # would leave a cut-off last line, and every later append would refuse the file.
        with atomic_output(target, "wb") as f:
            if target.exists():
                with target.open("rb") as old:
                    shutil.copyfileobj(old, f)
                    if old.tell() and not _ends_with_newline(old):
                        f.write(b"\n")
            f.writelines((line + "\n").encode() for line in new_lines)
    return added, present


def _ends_with_newline(f: BinaryIO) -> bool:
    f.seek(-1, os.SEEK_END)
    return f.read(1) == b"\n"
