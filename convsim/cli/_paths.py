"""Paths a user types: checked before anything is opened, written all at once.

Every command checks its inputs and outputs here first, so a mistake costs nothing: an
output that names an input or the store is refused before either is touched, and a
missing or read-only folder is reported before an hour-long run rather than after it.
Outputs are written to a temporary file in their own folder and renamed into place, so
a full disk or a crash leaves the previous file whole, never a cut-off one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .._files import atomic_output, write_text_atomically
from ._common import UsageFailure

__all__ = [
    "atomic_output",
    "check_paths",
    "distinct",
    "input_file",
    "output_file",
    "same_file",
    "write_text_atomically",
]


def input_file(path: Path, what: str) -> Path:
    """``path``, checked to be a readable file.

    Raises:
        UsageFailure: naming the path and what is wrong with it.
    """
    if path.is_dir():
        raise UsageFailure(f"{path}: is a directory; give the {what} file")
    if not path.exists():
        raise UsageFailure(f"{path}: no such file; give the {what} file")
    if not os.access(path, os.R_OK):
        raise UsageFailure(f"{path}: cannot read the {what} file (permission denied)")
    return path


def output_file(
    path: Path,
    what: str,
    *,
    inputs: Iterable[Path] = (),
    store: Path | None = None,
) -> Path:
    """``path``, checked to be a file convsim may create or replace.

    Args:
        path: The output path.
        what: What it holds, for messages (``scores``, ``HTML report``).
        inputs: The command's input files: an output must never be one of them.
        store: The store file, which an output must never be either.

    Returns:
        ``path``.

    Raises:
        UsageFailure: naming the path and what is wrong with it.
    """
    if path.is_dir():
        raise UsageFailure(f"{path}: is a directory; give a file name for the {what}")
    folder = path.parent
    if not folder.is_dir():
        raise UsageFailure(
            f"{path}: the folder {folder} does not exist; create it first, or choose another "
            f"place for the {what}"
        )
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageFailure(f"{path}: cannot write the {what} here (permission denied)")
    for other in inputs:
        if same_file(path, other):
            raise UsageFailure(
                f"{path}: the {what} would overwrite the input {other}; choose another name"
            )
    if store is not None and (same_file(path, store) or _store_companion(path, store)):
        raise UsageFailure(
            f"{path}: the {what} would overwrite the store {store}; choose another name"
        )
    return path


def distinct(*named: tuple[str, Path | None]) -> None:
    """Refuse two outputs (or an output and the store) that name one file.

    Args:
        named: ``(what, path)`` pairs; None paths are skipped.

    Raises:
        UsageFailure: naming both.
    """
    given = [(w, p) for w, p in named if p is not None]
    for i, (w1, p1) in enumerate(given):
        for w2, p2 in given[i + 1 :]:
            if same_file(p1, p2):
                raise UsageFailure(f"{p1}: given as both the {w1} and the {w2}; use two files")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (the same path, a link to it, or a hard link)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _store_companion(path: Path, store: Path) -> bool:
    # SQLite keeps the write-ahead log and shared memory beside the store: writing over
    # either corrupts it as surely as writing over the store itself.
    real = os.path.realpath(path)
    base = os.path.realpath(store)
    return real in (base + "-wal", base + "-shm", base + "-journal")


def check_paths(
    *,
    inputs: dict[str, Path | None] | None = None,
    trees: dict[str, Path | None] | None = None,
    outputs: dict[str, Path | str | None] | None = None,
    store: Path | None = None,
    existing_store: bool = False,
) -> None:
    """Check every path of a command before it opens any of them.

    Args:
        inputs: ``{what: path}`` of input files (None: not given).
        trees: ``{what: path}`` of inputs that may be a file or a folder of files.
        outputs: ``{what: path}`` of outputs; ``-`` (stdout) and None are skipped.
        store: The store file the command opens, if any.
        existing_store: The command only reads what earlier commands stored: a store that
            does not exist is a mistyped path, not a new store to create.

    Raises:
        UsageFailure: one line, naming the first path that is wrong and why.
    """
    given_inputs: list[Path] = []
    for what, p in (inputs or {}).items():
        if p is not None:
            given_inputs.append(input_file(p, what))
    for what, p in (trees or {}).items():
        if p is None:
            continue
        if not p.exists():
            raise UsageFailure(f"{p}: no such {what} file or folder")
        if p.is_file():
            given_inputs.append(input_file(p, what))
    if store is not None and store.is_dir():
        raise UsageFailure(f"{store}: is a directory; give the store a file name")
    if store is not None and existing_store and not store.exists():
        raise UsageFailure(
            f"{store}: no such store; give the --store that `convsim online` wrote to"
        )
    named: list[tuple[str, Path | None]] = [("store", store)]
    for what, out in (outputs or {}).items():
        if out is None or out == "-":
            continue
        path = Path(out)
        output_file(path, what, inputs=given_inputs, store=store)
        named.append((what, path))
    distinct(*named)
