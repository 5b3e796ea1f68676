"""Convert whole input files into one canonical JSONL dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..datasets import ReadReport, RecordIssue, RejectSink, dump_line
from ..errors import ConfigError
from ._base import Importer


def import_files(
    importer: Importer,
    paths: Sequence[Path],
    out: Path,
    *,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> ReadReport:
    """Read every input with ``importer`` and write the valid conversations to ``out``.

    The output is written to a temporary file and moved into place at the end, so an
    interrupted import never leaves a half-written dataset. Conversation ids must be
    unique across all inputs; a repeated id is rejected, naming where it first appeared.

    Raises:
        ConfigError: ``out`` is a directory.
        TraceImportError: an input is missing, a directory or empty.
    """
    if out.is_dir():
        raise ConfigError(
            f"--out {out}: is a directory; give a file name such as {out}/traces.jsonl"
        )
    total = ReadReport(file=", ".join(str(p) for p in paths))
    first_seen: dict[str, str] = {}
    tmp = out.with_name(out.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for path in paths:
                report = ReadReport(file=str(path))
                for conv in importer(path, report=report, rejects=rejects, keep_source=keep_source):
                    line = conv.provenance.source_line if conv.provenance else None
                    if conv.id in first_seen:
                        report.kept -= 1
                        report.reject(
                            RecordIssue(
                                str(path),
                                line or 0,
                                "id",
                                f"duplicate conversation id {conv.id!r} "
                                f"(first at {first_seen[conv.id]}); ids must be unique",
                            )
                        )
                        if rejects is not None:
                            rejects.write(dump_line(conv).encode() + b"\n")
                        continue
                    first_seen[conv.id] = f"{path}:{line}" if line else str(path)
                    f.write(dump_line(conv))
                    f.write("\n")
                total.merge(report)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return total
