"""Careless paths never lose data and never print a traceback.

Hypothesis draws a command and one to three of its paths, and turns each into something
a careless user types: a missing file, a folder, an empty or binary file, one they may
not read, an output that names an input or the store, a folder that does not exist or
that they may not write. Every command then either works (exit 0) or refuses in one
line (exit 2), and afterwards every input, and the store when the command failed, is
byte for byte what it was.

Permissions mean nothing to root, so when the tests run as root the commands run in a
worker process that has given up the two capabilities that let root ignore them
(``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``): "unreadable" and "read-only" are then
real, which the fixture checks before any example runs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convsim.cli import cli

ROOT = Path(__file__).parents[2]

# The worker: runs `convsim ARGS` in-process for each JSON request line. One process for
# every example keeps the cost of importing convsim out of the loop. Root keeps its
# uid (the interpreter may live under /root) and drops only the capabilities that
# bypass file permissions.
WORKER = r"""
import ctypes, json, os, sys, traceback
if os.geteuid() == 0:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()
    assert libc.capget(ctypes.byref(header), data) == 0, ctypes.get_errno()
    keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    data[0].effective &= keep
    data[0].permitted &= keep
    data[0].inheritable &= keep
    assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()
from click.testing import CliRunner
from convsim.cli import cli
for line in sys.stdin:
    args = json.loads(line)
    r = CliRunner().invoke(cli, args)
    exc = r.exception
    crash = None
    if exc is not None and not isinstance(exc, SystemExit):
        crash = "".join(traceback.format_exception(exc))
    print(json.dumps({"code": r.exit_code, "output": r.output, "crash": crash}), flush=True)
"""


class Worker:
    """A long-lived ``convsim`` runner, bound by file permissions even as root."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            text=True,
        )

    def run(self, args: list[str]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the worker died"
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@dataclass(frozen=True)
class Slot:
    """One path argument of a command."""

    role: str
    """``in`` (a file read), ``tree`` (a file or folder read), ``out`` or ``store``."""
    name: str
    """The template file it names (for ``out``: the file name to write)."""
    aside: bool = False
    """A rejects file or report: written even when the command then refuses, since it
    holds what was set aside and why."""
    appends: bool = False
    """An append-only file: its existing contents must be valid, so garbage is refused."""
    prefix: str = ""
    """Typed before the path (``@`` of ``--system-prompt @FILE``)."""
    suffix: str = ""
    """Typed after the path (``:agent`` of ``--agent FILE.py:agent``)."""


# Each command, as a user runs it on good files; `Slot`s are the paths Hypothesis
# may spoil.
COMMANDS: dict[str, list[str | Slot]] = {
    "import": ["import", "openai", Slot("in", "openai.jsonl"),
               "--out", Slot("out", "imp.jsonl"),
               "--rejects", Slot("out", "imp.rejects.jsonl", aside=True),
               "--json", Slot("out", "imp.json", aside=True)],
    "export": ["export", "openai", Slot("in", "convs.jsonl"), "--out", Slot("out", "exp.jsonl")],
    "stats": ["stats", Slot("in", "convs.jsonl"), "--json", Slot("out", "stats.json")],
    "grade": ["grade", Slot("in", "convs.jsonl"), "--checks", Slot("in", "checks.yaml"),
              "--rubrics", Slot("tree", "rubrics"), "--labels", Slot("in", "labels.jsonl"),
              "--out", Slot("out", "g.jsonl"), "--json", Slot("out", "g.json")],
    "online": ["online", Slot("in", "convs.jsonl"), "--policy", Slot("in", "policy.yaml"),
               "--window", "w2", "--rubrics", Slot("tree", "rubric.yaml"),
               "--checks", Slot("in", "checks.yaml"), "--store", Slot("store", "store.db"),
               "--out", Slot("out", "on.jsonl"), "--log", Slot("out", "on.log.jsonl"),
               "--rejects", Slot("out", "on.rejects.jsonl", aside=True),
               "--json", Slot("out", "on.json")],
    "drift": ["drift", Slot("in", "scores.jsonl"), Slot("in", "scores2.jsonl"),
              "--rubrics", Slot("tree", "rubrics"), "--json", Slot("out", "d.json"),
              "--html", Slot("out", "d.html"), "--markdown", Slot("out", "d.md")],
    "compare": ["compare", Slot("in", "results.jsonl"), Slot("in", "results2.jsonl"),
                "--max-regression", "50", "--json", Slot("out", "c.json"),
                "--markdown", Slot("out", "c.md"), "--junit", Slot("out", "c.xml")],
    "replay": ["replay", Slot("in", "convs.jsonl"),
               "--agent", Slot("in", "agent.yaml"),
               "--store", Slot("store", "store.db"), "--out", Slot("out", "rep.jsonl"),
               "--html", Slot("out", "rep.html"), "--json", Slot("out", "rep.json"),
               "--no-progress"],
    "simulate": ["simulate", "--agent", Slot("in", "agent.py", suffix=":agent"),
                 "--personas", Slot("tree", "personas"),
                 "--system-prompt", Slot("in", "prompt.txt", prefix="@"),
                 "--store", Slot("store", "store.db"),
                 "--out", Slot("out", "sim.jsonl"), "--json", Slot("out", "sim.json"),
                 "--no-progress"],
    "review": ["review", "--store", Slot("store", "store.db"),
               "--decisions", Slot("in", "decisions.yaml"), "--json", Slot("out", "rev.json")],
    "harvest": ["harvest", "--store", Slot("store", "store.db"),
                "--dataset", Slot("out", "dataset.jsonl", appends=True),
                "--json", Slot("out", "h.json")],
}  # fmt: skip

KINDS = {
    "in": ["missing", "directory", "empty", "binary", "unreadable", "the store",
           "in a missing folder", "in a read-only folder"],
    "tree": ["missing", "empty folder", "binary", "unreadable", "a folder holding x.yaml/",
             "in a read-only folder"],
    "out": ["directory", "existing empty", "existing binary", "unwritable", "an input",
            "the store", "in a missing folder", "in a read-only folder"],
    "store": ["missing", "directory", "binary", "unreadable", "an input",
              "in a missing folder", "in a read-only folder"],
}  # fmt: skip

# Spoilt paths that are not mistakes: the command works with them.
HARMLESS = {
    ("in", "in a read-only folder"),
    ("tree", "a folder holding x.yaml/"),
    ("tree", "in a read-only folder"),
    ("out", "existing empty"),
    ("out", "existing binary"),
}
# Exit codes of a command that worked: two runs of one persona cannot tell a regression.
WORKS = {"compare": 3}
# A new store is made where none is, except by the commands that read what others stored.
CREATES_STORE = {"online", "replay", "simulate"}


@dataclass(frozen=True)
class Fault:
    """Which path of the command to spoil, and how."""

    position: int
    kind: str


def _world_writable(path: Path) -> None:
    # The worker, whoever it runs as, must read every good file and write where outputs go.
    for p in [path, *path.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="convsim-careless-"))
    base.chmod(0o777)
    tpl = base / "template"
    tpl.mkdir()
    runner = _InProcess()
    runner(
        "import", "tau-bench", str(ROOT / "convsim/_assets/tau_bench/gpt-4o-airline.json.gz"),
        "--out", str(base / "all.jsonl"),
    )  # fmt: skip
    lines = (base / "all.jsonl").read_text().splitlines(keepends=True)
    (tpl / "convs.jsonl").write_text("".join(lines[:6]))
    shutil.copy(ROOT / "examples" / "checks.yaml", tpl / "checks.yaml")
    shutil.copy(ROOT / "examples" / "sampling.yaml", tpl / "policy.yaml")
    shutil.copy(ROOT / "rubrics" / "goal_completion.yaml", tpl / "rubric.yaml")
    (tpl / "rubrics").mkdir()
    shutil.copy(ROOT / "rubrics" / "goal_completion.yaml", tpl / "rubrics" / "goal.yaml")
    (tpl / "personas").mkdir()
    (tpl / "personas" / "p1.yaml").write_text(
        "name: p1\ngoal: get help\nscripted_turns: [hello, thanks]\n"
    )
    (tpl / "agent.py").write_text("def agent(conversation):\n    return 'ok'\n")
    (tpl / "agent.yaml").write_text("kind: python\ntarget: agent.py:agent\n")
    (tpl / "prompt.txt").write_text("You are helpful.\n")
    t = str(tpl)
    runner("export", "openai", f"{t}/convs.jsonl", "--out", f"{t}/openai.jsonl")
    runner("grade", f"{t}/convs.jsonl", "--checks", f"{t}/checks.yaml", "--rubrics",
           f"{t}/rubric.yaml", "--out", f"{t}/scores.jsonl")  # fmt: skip
    shutil.copy(tpl / "scores.jsonl", tpl / "scores2.jsonl")
    first = json.loads((tpl / "scores.jsonl").read_text().splitlines()[0])
    label = {**first, "source": "human", "name": "rubric.goal_completion", "kind": "binary"}
    label.pop("details", None)
    (tpl / "labels.jsonl").write_text(json.dumps(label) + "\n")
    runner("simulate", "--agent", f"{t}/agent.py:agent", "--personas", f"{t}/personas",
           "--trials", "2", "--out", f"{t}/results.jsonl", "--store", f"{t}/store.db",
           "--no-progress")  # fmt: skip
    shutil.copy(tpl / "results.jsonl", tpl / "results2.jsonl")
    runner("online", f"{t}/convs.jsonl", "--policy", f"{t}/policy.yaml", "--window", "w1",
           "--checks", f"{t}/checks.yaml", "--store", f"{t}/store.db",
           "--review-top", "2")  # fmt: skip
    queue = json.loads(runner("review", "--store", f"{t}/store.db", "--list", "--json", "-"))
    first, second = (i["conversation_id"] for i in queue["items"][:2])
    # One item confirmed already, for harvest; one left for review to decide.
    (base / "d.yaml").write_text(f"- {{window: w1, conversation_id: {first}, decision: confirm}}\n")
    runner("review", "--store", f"{t}/store.db", "--decisions", str(base / "d.yaml"))
    (tpl / "decisions.yaml").write_text(
        f"- {{window: w1, conversation_id: {second}, decision: confirm}}\n"
    )
    for leftover in tpl.glob("*.db-*"):
        leftover.unlink()
    _world_writable(base)
    yield tpl
    for p in base.rglob("*"):
        if p.is_dir():
            p.chmod(0o777)
    shutil.rmtree(base)


class _InProcess:
    def __call__(self, *args: str) -> str:
        from click.testing import CliRunner

        r = CliRunner().invoke(cli, list(args))
        assert r.exit_code == 0, (args, r.output)
        return r.stdout


@pytest.fixture(scope="module")
def worker(template: Path) -> Iterator[Worker]:
    w = Worker()
    try:
        # The kinds "unreadable" and "read-only" test nothing unless permissions bind it.
        probe = template.parent / "probe.jsonl"
        probe.write_bytes((template / "convs.jsonl").read_bytes())
        probe.chmod(0o000)
        refused = w.run(["stats", str(probe)])
        assert refused["code"] == 2, refused
        assert any(w in refused["output"] for w in ("not readable", "permission denied"))
        probe.unlink()
        yield w
    finally:
        w.close()


def _spoil(ws: Path, slot: Slot, kind: str, inputs: list[Path], store: Path) -> Path:
    """The path to give instead of the good one, made as ``kind`` says."""
    good = ws / slot.name
    if kind == "missing":
        if good.is_dir():
            shutil.rmtree(good)
        else:
            good.unlink(missing_ok=True)
        return good
    if kind in ("directory", "empty folder"):
        spoilt = ws / f"spoilt-{slot.name}.d"
        spoilt.mkdir(exist_ok=True)
        return spoilt
    if kind in ("empty", "existing empty"):
        spoilt = ws / f"spoilt-empty-{slot.name}"
        spoilt.write_bytes(b"")
        return spoilt
    if kind in ("binary", "existing binary"):
        spoilt = ws / f"spoilt-binary-{slot.name}"
        spoilt.write_bytes(bytes(range(256)) * 8)
        return spoilt
    if kind in ("unreadable", "unwritable"):
        spoilt = ws / f"spoilt-locked-{slot.name}"
        if good.is_dir():
            shutil.copytree(good, spoilt)
        elif good.exists():
            shutil.copy(good, spoilt)
        else:
            spoilt.write_bytes(b"previous contents\n")
        spoilt.chmod(0o000 if kind == "unreadable" else 0o444)
        return spoilt
    if kind == "the store":
        return store
    if kind == "an input":
        return inputs[0]
    if kind == "in a missing folder":
        return ws / "no-such-folder" / slot.name
    if kind == "in a read-only folder":
        folder = ws / "read-only"
        folder.mkdir(exist_ok=True)
        if (ws / "agent.py").is_file():
            shutil.copy(ws / "agent.py", folder / "agent.py")  # what agent.yaml names
        if good.is_dir():
            shutil.copytree(good, folder / slot.name, dirs_exist_ok=True)
        elif good.exists():
            shutil.copy(good, folder / slot.name)
        return folder / slot.name
    if kind == "a folder holding x.yaml/":
        if good.is_dir():
            (good / "x.yaml").mkdir()
            return good
        folder = ws / f"spoilt-tree-{slot.name}"
        folder.mkdir()
        shutil.copy(good, folder / good.name)
        (folder / "x.yaml").mkdir()
        return folder
    raise AssertionError(kind)


def _snapshot(ws: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for p in ws.rglob("*"):
        # The shared-memory index changes whenever a store is opened; the WAL holds data.
        if p.is_file() and not p.name.endswith("-shm"):
            try:
                out[str(p.relative_to(ws))] = p.read_bytes()
            except PermissionError:  # pragma: no cover - the test runs as root or owner
                pass
    return out


def _has(command: str, role: str) -> bool:
    return any(isinstance(a, Slot) and a.role == role for a in COMMANDS[command])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, list[Fault]]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    slots = [i for i, a in enumerate(COMMANDS[command]) if isinstance(a, Slot)]
    # Mostly one mistake at a time, so that the harmless kinds often run to the end.
    most = draw(st.sampled_from([1, 1, 1, 2, 3]))
    positions = draw(st.lists(st.sampled_from(slots), min_size=1, max_size=most, unique=True))
    faults = []
    for i in positions:
        slot = COMMANDS[command][i]
        assert isinstance(slot, Slot)
        kinds = [
            k
            for k in KINDS[slot.role]
            if not (k == "an input" and not _has(command, "in"))
            and not (k == "the store" and slot.role == "out" and not _has(command, "store"))
        ]
        faults.append(Fault(i, draw(st.sampled_from(kinds))))
    return command, faults


def _is_mistake(command: str, slot: Slot, kind: str) -> bool:
    if slot.appends and kind == "existing binary":
        return True
    if (slot.role, kind) in HARMLESS:
        return False
    # A store, like the default .convsim/store.db, is created with its folder.
    new_store = kind in ("missing", "in a missing folder")
    return not (slot.role == "store" and new_store and command in CREATES_STORE)


@settings(
    max_examples=int(os.environ.get("CONVSIM_CARELESS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_careless_paths_never_lose_data_or_print_a_traceback(
    scenario: tuple[str, list[Fault]], template: Path, worker: Worker
) -> None:
    command, faults = scenario
    template_args = COMMANDS[command]
    ws = Path(tempfile.mkdtemp(prefix="ws-", dir=template.parent))
    try:
        shutil.copytree(template, ws, dirs_exist_ok=True)
        _world_writable(ws)
        paths = {i: ws / a.name for i, a in enumerate(template_args) if isinstance(a, Slot)}
        # Inputs first, so that "an input" names the input the command really reads.
        order = {"in": 0, "tree": 0, "store": 1, "out": 2}
        for f in sorted(faults, key=lambda f: order[_slot(template_args, f).role]):
            ins = [paths[i] for i, a in enumerate(template_args) if _role(a) == "in"]
            stores = [paths[i] for i, a in enumerate(template_args) if _role(a) == "store"]
            store = stores[0] if stores else ws / "store.db"
            paths[f.position] = _spoil(ws, _slot(template_args, f), f.kind, ins, store)
        args = [
            f"{a.prefix}{paths[i].as_posix()}{a.suffix}" if isinstance(a, Slot) else a
            for i, a in enumerate(template_args)
        ]
        written = {paths[i] for i, a in enumerate(template_args) if _role(a) in ("out", "store")}
        aside = {paths[i] for i, a in enumerate(template_args) if isinstance(a, Slot) and a.aside}
        before = _snapshot(ws)
        _lock_down(ws)
        result = worker.run(args)
        _unlock(ws)

        where = f"convsim {' '.join(args)}\n{result['output']}"
        assert result["crash"] is None, f"{where}\n{result['crash']}"
        assert "Traceback" not in result["output"], where
        mistakes = [f.kind for f in faults if _is_mistake(command, _slot(template_args, f), f.kind)]
        expected = 2 if mistakes else WORKS.get(command, 0)
        assert result["code"] == expected, f"{mistakes}: {where}"
        if expected == 2:
            last = result["output"].strip().splitlines()[-1:]
            assert last and last[0].lower().startswith("error: "), where
        after = _snapshot(ws)
        for name, data in before.items():
            if (result["code"] != 2 and ws / name in written) or ws / name in aside:
                continue
            assert after.get(name) == data, f"{name} changed: {where}"
        if result["code"] == 2:
            # A refusal creates nothing but what says what it set aside (and the lock a
            # dataset append takes, or an empty WAL beside a store it opened).
            new = {ws / n for n in set(after) - set(before)}
            unexpected = [p.name for p in new - aside if not _says_what_was_set_aside(p, after, ws)]
            assert not unexpected, f"a refused command created {unexpected}: {where}"
        if result["code"] != 2:
            for out in written - aside:
                assert out.is_file(), f"{out} not written: {where}"
        leftovers = [p.name for p in [*ws.rglob(".*.tmp"), *ws.rglob("*.partial")]]
        assert not leftovers, f"temporary files left behind: {leftovers}: {where}"
    finally:
        _unlock(ws)
        shutil.rmtree(ws)


def _says_what_was_set_aside(path: Path, after: dict[str, bytes], ws: Path) -> bool:
    if path.name.endswith((".rejects.jsonl", ".lock")):  # OUT.rejects.jsonl, append lock
        return True
    return path.name.endswith("-wal") and not after[str(path.relative_to(ws))]


def _role(arg: str | Slot) -> str | None:
    return arg.role if isinstance(arg, Slot) else None


def _slot(args: list[str | Slot], fault: Fault) -> Slot:
    slot = args[fault.position]
    assert isinstance(slot, Slot)
    return slot


def _store_position(args: list[str | Slot]) -> int:
    return next(i for i, a in enumerate(args) if isinstance(a, Slot) and a.role == "store")


def _lock_down(ws: Path) -> None:
    # Folders lose their write bit last, once everything in them is in place.
    folder = ws / "read-only"
    if folder.exists():
        for p in [*folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
        folder.chmod(0o555)


def _unlock(ws: Path) -> None:
    for p in [ws, *ws.rglob("*")]:
        if p.is_dir():
            p.chmod(p.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR | 0o777)
