"""Writing a file all at once: a temporary file beside it, renamed into place.

A full disk, a crash or Ctrl-C in the middle of a write then leaves the previous file
exactly as it was, never a cut-off one. Every command output and store export goes
through here.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal


class AtomicFile:
    """A file written through a temporary file and renamed into place on success.

    The target is the file a symlink points to, so a linked output is updated where it
    lives, and a replaced file keeps its permissions. On an error, or after
    :meth:`abandon`, the temporary file is removed and the previous file is untouched.
    """

    def __init__(self, path: Path, mode: Literal["w", "wb"] = "w") -> None:
        self.path = Path(os.path.realpath(path))
        self.mode = mode
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._f: IO[Any] | None = None
        self._abandoned = False

    def open(self) -> IO[Any]:
        """Open the temporary file (once) and return it."""
        if self._f is None:
            if self.mode == "wb":
                self._f = self._tmp.open("wb")
            else:
                self._f = self._tmp.open("w", encoding="utf-8")
        return self._f

    @property
    def opened(self) -> bool:
        """Whether anything was opened for writing."""
        return self._f is not None

    def abandon(self) -> None:
        """Keep the previous file: what was written is dropped when the file is closed."""
        self._abandoned = True

    def commit(self) -> None:
        """Put what was written in place (nothing happens if nothing was opened)."""
        if self._f is None:
            return
        f, self._f = self._f, None
        try:
            with f:
                f.flush()
                os.fsync(f.fileno())
            if self._abandoned:
                return
            with contextlib.suppress(FileNotFoundError):
                os.chmod(self._tmp, stat.S_IMODE(os.stat(self.path).st_mode))
            os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Drop what was written; the previous file stays as it was."""
        if self._f is not None:
            f, self._f = self._f, None
            f.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextlib.contextmanager
def atomic_output(path: Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file beside it, renamed into place on success.

    On any error (a full disk, a crash, Ctrl-C) the temporary file is removed and the
    previous ``path``, if any, is left exactly as it was.
    """
    with AtomicFile(path, mode) as out:
        yield out.open()


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (see :func:`atomic_output`)."""
    with atomic_output(path) as f:
        f.write(text)
