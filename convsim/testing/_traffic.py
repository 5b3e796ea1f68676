"""Synthetic production traffic with a known truth, for checking drift end to end.

The drift engine has its own columnar simulator (``convsim.stats.drift.simulate_windows``)
for fast studies of the tests themselves. This one produces what a team actually feeds
convsim: weeks of :class:`~convsim.trace.Conversation` records, as an importer writes
them, that go through the online sampler, the graders, the store and back, so a study
on it checks the whole path a user runs.

The model of one week:

- **Users** come from a pool shared by both weeks, each with an activity level
  (Gamma, so a few users have many conversations) and a quality effect on every
  score's latent scale. The user effect's share of the latent variance is the
  user-level intra-class correlation (``user_icc``, 0.3 by default): one user's
  conversations are alike, also across weeks. Their id is in ``metadata.user_id``
  unless ``user_ids`` is off.
- **Cohorts**: language x vertical, with a mix per week and fixed cohort effects.
  Escalated conversations (``signals.escalated``, a share per week) score lower.
- **Turns**: 1 + Poisson(1) user turns, each answered by the assistant.
- **Truth**: per conversation, in ``metadata.truth``: whether the goal was met, a
  latent tone, whether each assistant message kept to the policy (with a
  conversation effect, so turns of one conversation are alike), whether the issue was
  resolved, and the latency. Week 2 can shift any score's latent value per cohort.

Two graders read the truth the way real ones read a transcript:
:class:`TrafficChecks` is a deterministic rule grader (census scores ``check.resolved``
and ``meta.latency_ms``); :class:`TrafficJudge` is a judge (``rubric.goal``, binary;
``rubric.tone``, ordinal 1-5; ``rubric.policy``, binary per assistant message) with a
configurable error profile. Its errors are mostly fixed per item (a hard conversation
is misjudged every time, as a temperature-0 judge does) plus a little call-to-call
noise, and a changed profile keeps the same model name and prompt hash: the judge
change a provider makes without telling anyone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray
from pydantic import JsonValue

from ..graders._base import GradeOutput, ScoreBuilder
from ..trace import AssistantMessage, Conversation, UserMessage, UserSignals

SCORES = ("rubric.goal", "rubric.tone", "rubric.policy", "check.resolved", "meta.latency_ms")
"""Score names the traffic graders produce."""

_TONE_CUTS = np.array([-2.2, -0.9, 0.6, 2.0])
"""Latent cut points of the tone levels 1-5."""


@dataclass(frozen=True)
class _Latent:
    intercept: float
    cell_scale: float
    escalation: float
    user_loading: float


_LATENTS: Mapping[str, _Latent] = {
    "goal": _Latent(1.5, 0.5, -1.0, 1.0),
    "tone": _Latent(0.8, 0.4, -0.6, 1.0),
    "policy": _Latent(2.2, 0.4, -0.5, 1.0),
    "resolved": _Latent(1.2, 0.5, -1.2, 1.0),
    "latency": _Latent(math.log(1500.0), 0.3, 0.3, 0.25),
}
_SHIFT_OF = {
    "rubric.goal": "goal",
    "rubric.tone": "tone",
    "rubric.policy": "policy",
    "check.resolved": "resolved",
    "meta.latency_ms": "latency",
}


@dataclass(frozen=True)
class JudgeProfile:
    """How a judge errs. Item-level errors repeat on every call; ``flip`` does not."""

    sensitivity: float = 0.95
    """Share of truly passing items judged pass (binary rubrics)."""
    specificity: float = 0.9
    """Share of truly failing items judged fail (binary rubrics)."""
    tone_bias: float = 0.0
    """Shift of the judge's tone reading on the latent scale (ordinal rubric)."""
    flip: float = 0.02
    """Chance that a call disagrees with the judge's usual verdict (nondeterminism)."""
    tone_noise: float = 0.15
    """Call-to-call noise of the tone reading on the latent scale."""


@dataclass(frozen=True)
class TrafficConfig:
    """Two weeks of traffic (defaults: nothing changes between them)."""

    population: tuple[int, int] = (2500, 2500)
    """Conversations in each week (all of them; the sampler picks which are judged)."""
    users: int = 1200
    """Users in the pool shared by both weeks."""
    activity_shape: float = 0.5
    """Gamma shape of the users' activity: smaller means a few very active users."""
    user_icc: float = 0.3
    """Share of a score's latent variance that belongs to the user."""
    conversation_icc: float = 0.3
    """Share of the per-message policy score's latent variance shared by a conversation."""
    user_ids: bool = True
    """Whether conversations carry ``metadata.user_id``."""
    languages: tuple[str, ...] = ("de", "en")
    """Language cohorts."""
    verticals: tuple[str, ...] = ("banking", "retail", "telecom", "travel")
    """Vertical cohorts."""
    mix: tuple[tuple[float, ...] | None, tuple[float, ...] | None] = (None, None)
    """Share of each language x vertical cell (language-major) per week; None: fixed
    unequal shares."""
    escalated: tuple[float, float] = (0.08, 0.08)
    """Share of escalated conversations per week."""
    shifts: Mapping[str, float | tuple[float, ...]] = field(default_factory=dict)
    """Per score name, a shift of its latent value in week 2 (one per cell, or one for all)."""
    cell_scale: float = 1.0
    """Multiplier on the spread of cohort effects (large values make Simpson cases)."""
    design_seed: int = 20261207
    """Seed of the fixed cohort effects."""

    @property
    def cells(self) -> int:
        """Cohort cells."""
        return len(self.languages) * len(self.verticals)

    def cell_mix(self, week: int) -> NDArray[np.float64]:
        """Population share of each cohort cell in ``week`` (0 or 1)."""
        raw = self.mix[week]
        m = np.linspace(1.0, 2.0, self.cells) if raw is None else np.asarray(raw, float)
        out: NDArray[np.float64] = m / m.sum()
        return out

    def cell_effects(self, latent: str) -> NDArray[np.float64]:
        """The fixed cohort effects of one latent score."""
        spec = _LATENTS[latent]
        rng = np.random.default_rng([self.design_seed, *latent.encode()])
        return rng.normal(0.0, spec.cell_scale * self.cell_scale, self.cells)

    def shift(self, name: str) -> NDArray[np.float64]:
        """Week 2's latent shift of a score, per cohort cell."""
        s = self.shifts.get(name, 0.0)
        if isinstance(s, tuple):
            return np.asarray(s, dtype=np.float64)
        return np.full(self.cells, float(s))

    @property
    def user_sd(self) -> float:
        """Standard deviation of the user effect: ICC / (1 - ICC) of the logistic noise."""
        return math.sqrt(self.user_icc / (1.0 - self.user_icc) * math.pi**2 / 3.0)


def traffic_weeks(
    cfg: TrafficConfig, seed: int, labels: tuple[str, str] = ("w1", "w2")
) -> tuple[list[Conversation], list[Conversation]]:
    """Two weeks of conversations from one draw of the user pool.

    Args:
        cfg: The scenario.
        seed: Replication seed (users, conversations, truths).
        labels: Prefixes of the two weeks' conversation ids.

    Returns:
        ``(week 1, week 2)``.
    """
    rng = np.random.default_rng(seed)
    activity = rng.gamma(cfg.activity_shape, 1.0, cfg.users)
    activity /= activity.sum()
    user_effect = rng.normal(0.0, cfg.user_sd, cfg.users)
    return (
        _week(cfg, 0, rng, labels[0], activity, user_effect),
        _week(cfg, 1, rng, labels[1], activity, user_effect),
    )


def _week(
    cfg: TrafficConfig,
    week: int,
    rng: np.random.Generator,
    label: str,
    activity: NDArray[np.float64],
    user_effect: NDArray[np.float64],
) -> list[Conversation]:
    n = cfg.population[week]
    user = rng.choice(cfg.users, size=n, p=activity)
    cell = rng.choice(cfg.cells, size=n, p=cfg.cell_mix(week))
    esc = rng.random(n) < cfg.escalated[week]
    turns = 1 + rng.poisson(1.0, n)
    eta = {}
    for latent, spec in _LATENTS.items():
        name = next(k for k, v in _SHIFT_OF.items() if v == latent)
        eta[latent] = (
            spec.intercept
            + cfg.cell_effects(latent)[cell]
            + spec.escalation * esc
            + spec.user_loading * user_effect[user]
            + (cfg.shift(name)[cell] if week == 1 else 0.0)
        )
    goal = rng.random(n) < _expit(eta["goal"])
    tone = eta["tone"] + rng.logistic(0.0, 1.0, n)
    resolved = rng.random(n) < _expit(eta["resolved"])
    latency = np.rint(np.exp(eta["latency"] + rng.normal(0.0, 0.5, n)))
    conv_sd = math.sqrt(cfg.conversation_icc / (1.0 - cfg.conversation_icc) * math.pi**2 / 3.0)
    conv_policy = rng.normal(0.0, conv_sd, n)
    n_lang = len(cfg.verticals)
    out: list[Conversation] = []
    for i in range(n):
        k = int(turns[i])
        policy = rng.random(k) < _expit(eta["policy"][i] + conv_policy[i])
        messages: list[UserMessage | AssistantMessage] = []
        for t in range(k):
            messages.append(UserMessage(content=f"question {t + 1}"))
            messages.append(AssistantMessage(content=f"answer {t + 1}"))
        c = int(cell[i])
        meta: dict[str, JsonValue] = {
            "truth": {
                "goal": bool(goal[i]),
                "tone": float(tone[i]),
                "policy": [bool(x) for x in policy],
                "resolved": bool(resolved[i]),
                "latency_ms": float(latency[i]),
            }
        }
        if cfg.user_ids:
            meta["user_id"] = f"u{int(user[i])}"
        out.append(
            Conversation(
                id=f"{label}-{i}",
                messages=list(messages),
                tags={
                    "language": cfg.languages[c // n_lang],
                    "vertical": cfg.verticals[c % n_lang],
                },
                metadata=meta,
                signals=UserSignals(escalated=True) if esc[i] else UserSignals(),
            )
        )
    return out


def _expit(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-x))
    return out


def _draw(*keys: object) -> float:
    """A uniform number in [0, 1) fixed by its keys (the same in every process)."""
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


_STANDARD_NORMAL = NormalDist()


def _normal(*keys: object) -> float:
    """A standard normal number fixed by its keys."""
    return _STANDARD_NORMAL.inv_cdf(min(max(_draw(*keys), 1e-12), 1.0 - 1e-12))


class TrafficJudge:
    """A judge that reads the truth through its error profile (see the module docstring).

    ``call_seed`` separates one judging pass from another: the anchor set judged again
    next week gets fresh call noise but the same item-level errors, unless the profile
    changed.
    """

    def __init__(
        self,
        profile: JudgeProfile | None = None,
        *,
        call_seed: str = "",
        model: str = "judge-a",
        prompt_hash: str = "p1",
    ) -> None:
        self.profile = profile or JudgeProfile()
        self.call_seed = call_seed
        self.model = model
        self.prompt_hash = prompt_hash
        self.name = "traffic-judge"
        self.version = "1"

    def grade_sync(self, conversation: Conversation) -> Sequence[GradeOutput]:
        """The three rubric scores of one conversation."""
        truth = _truth(conversation)
        p = self.profile
        b = ScoreBuilder(self.name, self.version, conversation, source="model")
        model, prompt = self.model, self.prompt_hash
        cid = conversation.id
        goal = self._binary(cid, "goal", -1, truth.goal)
        b.score("rubric.goal", goal, "binary", judge_model=model, prompt_hash=prompt)
        reading = (
            truth.tone
            + p.tone_bias
            + 0.5 * _normal(cid, "item", "tone")
            + p.tone_noise * _normal(cid, self.call_seed, "tone")
        )
        level = 1 + int(np.searchsorted(_TONE_CUTS, reading))
        b.score("rubric.tone", float(level), "ordinal", judge_model=model, prompt_hash=prompt)
        assistant = [i for i, m in enumerate(conversation.messages) if m.role == "assistant"]
        for index, ok in zip(assistant, truth.policy, strict=False):
            verdict = self._binary(cid, "policy", index, ok)
            b.score(
                "rubric.policy",
                verdict,
                "binary",
                message_index=index,
                judge_model=model,
                prompt_hash=prompt,
            )
        return b.out

    def _binary(self, cid: str, what: str, index: int, truth: bool) -> bool:
        p = self.profile
        # The item's difficulty decides the judge's usual verdict: a hard item is
        # misjudged every time; a change of profile moves the boundary.
        d = _draw(cid, "item", what, index)
        usual = d < p.sensitivity if truth else d >= p.specificity
        if _draw(cid, self.call_seed, what, index) < p.flip:
            return not usual
        return usual


class TrafficChecks:
    """Deterministic checks over every conversation: resolved, and latency."""

    name = "traffic-checks"
    version = "1"

    def grade_sync(self, conversation: Conversation) -> Sequence[GradeOutput]:
        """The census scores of one conversation."""
        truth = _truth(conversation)
        b = ScoreBuilder(self.name, self.version, conversation)
        b.score("check.resolved", truth.resolved, "binary")
        b.score("meta.latency_ms", truth.latency_ms, "continuous")
        return b.out


@dataclass(frozen=True)
class _Truth:
    goal: bool
    tone: float
    policy: list[bool]
    resolved: bool
    latency_ms: float


def _truth(conversation: Conversation) -> _Truth:
    t = conversation.metadata.get("truth")
    if not isinstance(t, dict):
        raise ValueError(f"conversation {conversation.id!r} has no metadata.truth")
    policy = t.get("policy")
    return _Truth(
        goal=bool(t.get("goal")),
        tone=float(t.get("tone") or 0.0),  # type: ignore[arg-type]
        policy=[bool(x) for x in policy] if isinstance(policy, list) else [],
        resolved=bool(t.get("resolved")),
        latency_ms=float(t.get("latency_ms") or 0.0),  # type: ignore[arg-type]
    )


def true_effect(cfg: TrafficConfig, name: str) -> float:
    """The change of a binary score's true pass rate that the drift tests estimate.

    Strata are cohort cell x escalated (what the sampling rules separate); each stratum's
    pass rate integrates the user effect out (Gauss-Hermite), and the strata count with
    their population shares averaged over the two weeks, as the tests standardise.

    Args:
        cfg: The scenario.
        name: ``rubric.goal`` or ``check.resolved`` (before any judge error).

    Returns:
        Week 2 minus week 1, in pass-rate units.
    """
    latent = _SHIFT_OF[name]
    if latent not in ("goal", "resolved"):
        raise ValueError("true_effect covers the binary scores rubric.goal and check.resolved")
    spec = _LATENTS[latent]
    x, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    sd = spec.user_loading * cfg.user_sd
    base = spec.intercept + cfg.cell_effects(latent)
    out = 0.0
    for esc in (0.0, 1.0):
        shares = [
            cfg.cell_mix(k) * (cfg.escalated[k] if esc else 1.0 - cfg.escalated[k]) for k in (0, 1)
        ]
        wbar = (shares[0] + shares[1]) / 2.0
        for c in range(cfg.cells):
            mu = base[c] + spec.escalation * esc
            before = float(w @ _expit(mu + sd * x))
            after = float(w @ _expit(mu + cfg.shift(name)[c] + sd * x))
            out += float(wbar[c]) * (after - before)
    return out
