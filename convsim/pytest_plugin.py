"""convsim's pytest plugin: evaluation cases as pytest tests.

Every pytest session of every user who installed convsim loads this module, so it
imports only pytest and the standard library at the top; convsim itself is imported
when a test asks for the ``convsim_session`` fixture.

Usage::

    @pytest.mark.convsim(cassette="tests/data/refund.jsonl", conversation="refund-1",
                         expect=[{"type": "tool_called", "name": "refund"}])
    async def test_refund(convsim_session):
        result = await convsim_session.run(my_agent)
        assert result.passed, result.explain()

By default the recorded user turns are replayed against the agent (no model calls).
With ``--live``, the persona is simulated by a user model instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .store import ConversationResult
    from .trace import Score, ScoreFailure

_GRADES_KEY = pytest.StashKey[list[tuple[str, str, str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--live`` and the paired ``convsim_store`` ini key / option."""
    group = parser.getgroup("convsim")
    group.addoption(
        "--live",
        action="store_true",
        default=False,
        help="convsim: simulate users with a model instead of replaying recordings",
    )
    group.addoption(
        "--convsim-store",
        dest="convsim_store",
        default=None,
        help="convsim: SQLite store for results (default: none)",
    )
    group.addoption(
        "--convsim-user-model",
        dest="convsim_user_model",
        default=None,
        help="convsim: litellm model that plays users with --live",
    )
    parser.addini("convsim_store", "convsim: SQLite store for results", default="")
    parser.addini(
        "convsim_user_model", "convsim: litellm model that plays users with --live", default=""
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker and prepare the grade summary."""
    config.addinivalue_line(
        "markers",
        "convsim(cassette=None, conversation=None, persona=None, rubric=None, expect=None, "
        "env=None, max_turns=10): an evaluation case run by the convsim_session fixture",
    )
    config.stash[_GRADES_KEY] = []


@dataclass
class CaseResult:
    """What one evaluation case produced."""

    result: ConversationResult
    """The conversation and how it ended."""
    scores: list[Score] = field(default_factory=list)
    """Every score the graders gave."""
    failures: list[ScoreFailure] = field(default_factory=list)
    """Grader failures (never counted as passes or fails)."""

    @property
    def passed(self) -> bool:
        """All binary outcome, guardrail and rubric scores passed, with no grader failure."""
        checked = [
            s for s in self.scores if s.kind == "binary" and not s.name.startswith("signal.")
        ]
        return not self.failures and all(s.value is True for s in checked)

    def explain(self) -> str:
        """Why the case failed, one line per failing score."""
        lines = [f"ended by {self.result.termination}"]
        lines += [
            f"{s.name}: {s.reason}"
            for s in self.scores
            if s.kind == "binary" and s.value is False and not s.name.startswith("signal.")
        ]
        lines += [f"{f.name}: grader failed: {f.message}" for f in self.failures]
        return "\n".join(lines)


class ConvsimSession:
    """Runs the case described by the test's ``convsim`` marker."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        marker = request.node.get_closest_marker("convsim")
        self.options: dict[str, Any] = dict(marker.kwargs) if marker else {}
        self.live: bool = bool(request.config.getoption("live"))
        self._root = Path(str(request.config.rootpath))

    def _path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self._root / p

    async def run(self, agent: Any) -> CaseResult:
        """Replay (default) or simulate the case against ``agent``, then grade it."""
        from .agents import FunctionAgent
        from .graders import OutcomeChecks, run_graders
        from .trace import ScoreFailure

        if not hasattr(agent, "respond"):
            agent = FunctionAgent(agent)
        result = await (self._simulate(agent) if self.live else self._replay(agent))
        graders: list[Any] = [OutcomeChecks(self.options.get("expect") or [])]
        rubric = self.options.get("rubric")
        if rubric:
            graders.append(self._judge(rubric))
        outputs = await run_graders(result.conversation, graders)
        case = CaseResult(result=result)
        for out in outputs:
            if isinstance(out, ScoreFailure):
                case.failures.append(out)
            else:
                case.scores.append(out)
        grades = self._request.config.stash[_GRADES_KEY]
        for s in case.scores:
            grades.append((self._request.node.nodeid, s.name, str(s.value)))
        for f in case.failures:
            grades.append((self._request.node.nodeid, f.name, f"failed: {f.error_type}"))
        return case

    def _judge(self, rubric: str) -> Any:
        from .graders import RubricJudge, load_rubric
        from .testing import OfflineJudge

        if self.live:
            from ._llm import LiteLLMClient

            model = self._user_model()
            return RubricJudge(load_rubric(self._path(rubric)), client=LiteLLMClient(), model=model)
        return RubricJudge(
            load_rubric(self._path(rubric)), client=OfflineJudge(), model="offline-rules"
        )

    def _user_model(self) -> str:
        config = self._request.config
        model = config.getoption("convsim_user_model") or config.getini("convsim_user_model")
        if not model:
            pytest.fail(
                "--live needs --convsim-user-model MODEL (or the convsim_user_model ini key)"
            )
        return str(model)

    async def _replay(self, agent: Any) -> ConversationResult:
        from .datasets import read_conversations
        from .replay import ReplayOptions, replay
        from .runner import RunConfig

        cassette = self.options.get("cassette")
        if not cassette:
            pytest.fail("the convsim marker needs cassette=PATH to replay (or run with --live)")
        wanted = self.options.get("conversation")
        recordings = [c for c in read_conversations(self._path(cassette)) if wanted in (None, c.id)]
        if not recordings:
            pytest.fail(f"no conversation {wanted!r} in {cassette}")
        env = self.options.get("env")
        options = ReplayOptions(policy="live" if env else "fail", environment=_env(env))
        return await self._run_one(
            lambda cfg, store: replay(cfg, recordings[:1], agent, store=store, options=options),
            RunConfig(run_id=self._run_id(), kind="replay", agent="pytest", progress=False),
        )

    async def _simulate(self, agent: Any) -> ConversationResult:
        from .runner import RunConfig
        from .simulate import make_user_factory, simulate
        from .users import load_persona

        persona_path = self.options.get("persona")
        if not persona_path:
            pytest.fail("the convsim marker needs persona=PATH to simulate with --live")
        persona = load_persona(self._path(persona_path))
        users = make_user_factory(self._user_model())
        env = self.options.get("env")
        config = RunConfig(
            run_id=self._run_id(),
            agent="pytest",
            user="live",
            max_turns=int(self.options.get("max_turns", 10)),
            progress=False,
        )
        return await self._run_one(
            lambda cfg, store: simulate(
                cfg, [persona], agent, store=store, user_factory=users, environment=_env(env)
            ),
            config,
        )

    def _run_id(self) -> str:
        return f"pytest::{self._request.node.nodeid}::{os.getpid()}"

    async def _run_one(self, run: Any, config: Any) -> ConversationResult:
        from .store import SQLiteStore

        configured = self._request.config.getoption("convsim_store") or self._request.config.getini(
            "convsim_store"
        )
        path = (
            Path(configured)
            if configured
            else self._request.getfixturevalue("tmp_path") / "convsim.db"
        )
        with SQLiteStore(path) as store:
            await run(config, store)
            (result,) = list(store.results(config.run_id))
        return result


def _env(name: str | None) -> Any:
    if not name:
        return None
    from .envs import environment_factory

    return environment_factory(name)


@pytest.fixture
def convsim_session(request: pytest.FixtureRequest) -> Iterator[ConvsimSession]:
    """Runs the test's ``convsim`` case: ``await convsim_session.run(agent)``."""
    yield ConvsimSession(request)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print every grade the convsim cases produced."""
    grades = config.stash.get(_GRADES_KEY, [])
    if not grades:
        return
    terminalreporter.section("convsim grades")
    width = max(len(g[0]) for g in grades)
    for nodeid, name, value in grades:
        terminalreporter.write_line(f"{nodeid:<{width}}  {name:<28} {value}")
