"""Writing a file all at once: a temporary file beside it, renamed into place.

A full disk, a crash or Ctrl-C in the middle of a write then leaves the previous file
exactly as it was, never a cut-off one. Every command output and store export goes
through here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal


@contextlib.contextmanager
def atomic_output(path: Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file beside it, renamed into place on success.

    On any error (a full disk, a crash, Ctrl-C) the temporary file is removed and the
    previous ``path``, if any, is left exactly as it was.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if mode == "wb":
            f: IO[Any] = tmp.open("wb")
        else:
            f = tmp.open("w", encoding="utf-8")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (see :func:`atomic_output`)."""
    with atomic_output(path) as f:
        f.write(text)
