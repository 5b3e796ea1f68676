"""Every runnable example in the docs runs: ```sh blocks as commands, ```python as scripts.

Blocks of a page run in order, in one scratch folder that holds links to the repository's
examples, personas, rubrics and bundled data, so a page can build on its earlier steps.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(page.read_text())]


def commands(script: str) -> list[list[str]]:
    joined = script.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(shlex.split(line))
    return out


RUNNABLE = [p for p in PAGES if blocks(p)]


def test_the_docs_have_runnable_examples() -> None:
    assert len(RUNNABLE) >= 5


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    for name in ("examples", "personas", "rubrics", "convsim"):
        (tmp_path / name).symlink_to(ROOT / name)
    for kind, body in blocks(page):
        if kind == "python":
            done = subprocess.run(
                [sys.executable, "-c", body],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{page.name}: python block failed:\n{done.stderr[-2000:]}"
            continue
        for argv in commands(body):
            assert argv[0] == "convsim", (
                f"{page.name}: only convsim commands run in sh blocks: {argv}"
            )
            done = subprocess.run(
                [sys.executable, "-m", "convsim.cli", *argv[1:]],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode in (0, 1, 3), (
                f"{page.name}: `{' '.join(argv)}` exited {done.returncode}:\n{done.stderr[-2000:]}"
            )
