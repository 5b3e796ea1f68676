"""Shared helpers for the format tests: golden files, import runs and input mangling."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from convsim.datasets import ReadReport, dump_line
from convsim.formats import IMPORTERS
from convsim.trace import Conversation
from tests.strategies import json_values

DATA = Path(__file__).parent / "data"
UPDATE = bool(os.environ.get("CONVSIM_UPDATE_GOLDEN"))
"""Set CONVSIM_UPDATE_GOLDEN=1 to rewrite the expected files (then review the diff)."""


def run_import(
    fmt: str, path: Path, *, keep_source: bool = False
) -> tuple[list[Conversation], ReadReport, list[bytes]]:
    """Import a file; returns the conversations, the report and the rejected lines."""
    report = ReadReport(file=str(path))
    rejected: list[bytes] = []

    class Sink:
        def write(self, data: bytes, /) -> int:
            rejected.append(data)
            return len(data)

    convs = list(IMPORTERS[fmt](path, report=report, rejects=Sink(), keep_source=keep_source))
    assert report.read == report.kept + report.rejected
    assert report.kept == len(convs)
    return convs, report, rejected


def golden(fmt: str, name: str) -> tuple[list[Conversation], ReadReport]:
    """Import ``data/NAME`` and compare with ``data/STEM.expected.jsonl`` line by line.

    Provenance names the file relative to the data directory, so the expected file does
    not depend on where the repository lives.
    """
    path = DATA / name
    convs, report, _ = run_import(fmt, path)
    lines: list[str] = []
    for c in convs:
        assert c.provenance is not None and c.provenance.source_file == str(path)
        fixed = c.model_copy(
            update={"provenance": c.provenance.model_copy(update={"source_file": name})}
        )
        lines.append(dump_line(fixed))
    expected = DATA / (name.split(".")[0] + ".expected.jsonl")
    if UPDATE:
        expected.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    want = expected.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(want)
    for got, exp in zip(lines, want, strict=True):
        assert json.loads(got) == json.loads(exp)
    return convs, report


def load_records(name: str) -> list[Any]:
    """The records of a golden input: array elements or JSONL lines."""
    text = (DATA / name).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        records: list[Any] = json.loads(text)
        return records
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


_WRONG: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**20),
    st.sampled_from(["", "x", "0", "NaN", "call_w1", "user", "tool", "zz", "AAAA"]),
    st.just([]),
    st.just({}),
    json_values,
)


@st.composite
def mangled_file(draw: st.DrawFn, records: list[Any], as_array: bool) -> bytes:
    """The records with a few random edits, serialised, sometimes truncated.

    Edits: delete a key or list item, replace a value with a wrong-typed one, duplicate a
    record, drop a record, or join two records' worth of pieces.
    """
    data = json.loads(json.dumps(records))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        action = draw(st.sampled_from(["replace", "replace", "delete", "dup", "drop"]))
        if action in ("dup", "drop") and data:
            i = draw(st.integers(min_value=0, max_value=len(data) - 1))
            if action == "dup":
                data.insert(i, json.loads(json.dumps(data[i])))
            else:
                del data[i]
            continue
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_WRONG)
    if as_array:
        text = json.dumps(data).encode()
    else:
        text = b"".join(json.dumps(r).encode() + b"\n" for r in data)
    if draw(st.integers(min_value=0, max_value=4)) == 0 and len(text) > 2:
        text = text[: draw(st.integers(min_value=1, max_value=len(text) - 1))]
    return text
