"""Seeded generator of realistic window pairs, for calibrating the drift tests.

Protocol (docs/statistics.md, drift section): users with a Zipf number of conversations, each
conversation with a logit-normal random intercept (shared in part with its user), turns
scored with extra per-turn noise; cohorts are language x vertical with a mix per window;
escalated conversations are sampled with probability 1 and routine ones with a lower
known probability (stratified sampling with known inclusion probabilities); binary
labels pass through a judge with fixed sensitivity and specificity.

Scores (``base`` specs, repeated with suffixes to reach ``n_scores``):

================== =========== ============ ===========================================
name               kind        level        model
================== =========== ============ ===========================================
goal_completion    binary      conversation Bernoulli(expit(eta))
policy_adherence   binary      turn         Bernoulli(expit(eta_conv)) per turn
tone               ordinal     turn         latent logistic, thresholds to levels 1-5
helpfulness        ordinal     conversation latent logistic, thresholds to levels 1-5
groundedness       continuous  turn         expit(eta_conv + N(0, 1)) per turn
latency_ms         continuous  conversation lognormal, rounded to 1 ms
cost_usd           continuous  conversation lognormal, rounded to 0.0001
tool_calls         continuous  conversation Poisson counts (heavy ties)
escalation_reason  categorical conversation multinomial logit, one rare label
================== =========== ============ ===========================================

Shifts are given on each score's latent scale (logit, log) and apply to the current
window, to every cohort cell or per cell. :func:`true_standardized_effect` computes the
resulting population change in native units by quadrature, for power studies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ...trace import ScoreKind
from ._data import JudgeConfig, ScoreArrays, Tag, Window

_THRESHOLDS = np.array([-3.0, -1.8, -0.4, 1.2])
"""Ordinal cut points on the latent logistic scale: levels 1-5 with many ties."""

_META_USER = 0.3
"""Loading of the user effect on metadata and labels."""

_CATEGORIES = ("account", "billing", "legal", "none", "other", "technical")
_CAT_LOGITS = np.array([-1.6, -1.2, -5.5, 0.8, -2.0, -1.0])


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: ScoreKind
    turn_level: bool
    intercept: float
    cell_scale: float
    escalation: float


_BASE: tuple[_Spec, ...] = (
    _Spec("goal_completion", "binary", False, 1.4, 0.5, -0.8),
    _Spec("policy_adherence", "binary", True, 2.0, 0.4, -0.5),
    _Spec("tone", "ordinal", True, 0.6, 0.4, -0.4),
    _Spec("helpfulness", "ordinal", False, 0.5, 0.4, -0.6),
    _Spec("groundedness", "continuous", True, 1.0, 0.4, -0.3),
    _Spec("latency_ms", "continuous", False, math.log(1500.0), 0.3, 0.4),
    _Spec("cost_usd", "continuous", False, math.log(0.02), 0.3, 0.5),
    _Spec("tool_calls", "continuous", False, math.log(2.0), 0.3, 0.3),
    _Spec("escalation_reason", "categorical", False, 0.0, 0.4, 0.8),
)

USER_TAG = "user"
"""Tag holding the simulated user id (pass ``cluster=USER_TAG`` to compare_windows)."""

SCORE_NAMES: tuple[str, ...] = tuple(s.name for s in _BASE)
"""Names of the base scores the generator produces."""


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of a simulated window pair (defaults: the G1 null scenario)."""

    n_baseline: float = 2000.0
    """Expected sampled conversations in the baseline window."""
    n_current: float = 3000.0
    """Expected sampled conversations in the current window (unequal on purpose)."""
    languages: tuple[str, ...] = ("de", "en")
    """Language cohort values."""
    verticals: tuple[str, ...] = ("banking", "health", "retail", "telecom", "travel")
    """Vertical cohort values."""
    mix_baseline: tuple[float, ...] | None = None
    """Population share of each language x vertical cell (language-major); default fixed
    unequal shares."""
    mix_current: tuple[float, ...] | None = None
    """The same for the current window; default the baseline mix."""
    escalation_share: tuple[float, float] = (0.08, 0.08)
    """Share of escalated conversations in the population, per window."""
    inclusion: tuple[float, float] = (0.15, 1.0)
    """Sampling probability of routine and of escalated conversations."""
    inclusion_current: tuple[float, float] | None = None
    """The same in the current window when its rates differ (default: ``inclusion``)."""
    user_ids: bool = True
    """Whether the windows carry the user ids (``Window.users``)."""
    turns: int = 10
    """Scored turns per conversation (fixed), or the mean when ``variable_turns``."""
    variable_turns: bool = False
    """Draw turns as 1 + Poisson(turns - 1) instead of a fixed number."""
    icc: float = 0.3
    """Latent-scale intra-conversation correlation of turn-level scores."""
    user_share: float = 0.1
    """Share of the between-conversation latent variance that belongs to the user."""
    zipf: float = 2.5
    """Exponent of the Zipf law of conversations per user (truncated at 50)."""
    judge_se: tuple[float, float] = (0.95, 0.95)
    """Judge sensitivity for binary scores, per window."""
    judge_sp: tuple[float, float] = (0.9, 0.9)
    """Judge specificity for binary scores, per window."""
    judge_configs: tuple[JudgeConfig, JudgeConfig] = (
        JudgeConfig("judge-a", "p1", "1"),
        JudgeConfig("judge-a", "p1", "1"),
    )
    """Judge configuration recorded for each window's judged scores."""
    shifts: Mapping[str, float | tuple[float, ...]] = field(default_factory=dict)
    """Per score, a shift on its latent scale in the current window (scalar: every cell;
    tuple: per cell)."""
    cell_scale: float = 1.0
    """Multiplier on the spread of cohort-cell effects (large values make Simpson cases)."""
    n_scores: int | None = None
    """Number of scores (the base set repeated with suffixes); default the base set."""
    scores: tuple[str, ...] | None = None
    """Restrict to these base scores."""
    design_seed: int = 20240601
    """Seed of the fixed cohort effects (shared by both windows and all replications)."""

    @property
    def n_cells(self) -> int:
        """Cohort cells."""
        return len(self.languages) * len(self.verticals)

    def mix(self, window: int) -> NDArray[np.float64]:
        """Population share of each cell in window 0 (baseline) or 1 (current)."""
        default = np.linspace(1.0, 2.5, self.n_cells)
        raw = self.mix_baseline if window == 0 or self.mix_current is None else self.mix_current
        if window == 0 and self.mix_baseline is None:
            raw = None
        m = default if raw is None else np.asarray(raw, dtype=np.float64)
        out: NDArray[np.float64] = m / m.sum()
        return out


def _specs(cfg: SimulationConfig) -> list[_Spec]:
    base = [s for s in _BASE if cfg.scores is None or s.name in cfg.scores]
    if cfg.n_scores is None:
        return base
    out: list[_Spec] = []
    i = 0
    while len(out) < cfg.n_scores:
        s = base[i % len(base)]
        rep = i // len(base)
        name = s.name if rep == 0 else f"{s.name}_{rep + 1}"
        out.append(_Spec(name, s.kind, s.turn_level, s.intercept, s.cell_scale, s.escalation))
        i += 1
    return out


def _cell_effects(cfg: SimulationConfig, spec: _Spec) -> NDArray[np.float64]:
    rng = np.random.default_rng([cfg.design_seed, *spec.name.encode()])
    return rng.normal(0.0, spec.cell_scale * cfg.cell_scale, cfg.n_cells)


def _shift(cfg: SimulationConfig, name: str, window: int) -> NDArray[np.float64]:
    if window == 0 or name not in cfg.shifts:
        return np.zeros(cfg.n_cells)
    s = cfg.shifts[name]
    if isinstance(s, tuple):
        return np.asarray(s, dtype=np.float64)
    return np.full(cfg.n_cells, float(s))


def _between_sd(cfg: SimulationConfig) -> tuple[float, float]:
    # Latent logistic noise has variance pi^2/3, so an ICC of rho needs a random-intercept
    # variance of rho / (1 - rho) * pi^2 / 3, split between user and conversation.
    var_b = cfg.icc / (1.0 - cfg.icc) * math.pi**2 / 3.0
    return math.sqrt(cfg.user_share * var_b), math.sqrt((1 - cfg.user_share) * var_b)


def simulate_windows(
    cfg: SimulationConfig, seed: int, labels: tuple[str, str] = ("baseline", "current")
) -> tuple[Window, Window]:
    """Simulate a baseline and a current window.

    Args:
        cfg: Scenario.
        seed: Replication seed.
        labels: Window labels.

    Returns:
        ``(baseline, current)``.
    """
    rng = np.random.default_rng(seed)
    return _window(cfg, 0, rng, labels[0]), _window(cfg, 1, rng, labels[1])


def _window(cfg: SimulationConfig, a: int, rng: np.random.Generator, label: str) -> Window:
    n_exp = cfg.n_baseline if a == 0 else cfg.n_current
    esc_share = cfg.escalation_share[a]
    pi_r, pi_e = cfg.inclusion if a == 0 or cfg.inclusion_current is None else cfg.inclusion_current
    n_pop = int(round(n_exp / ((1 - esc_share) * pi_r + esc_share * pi_e)))
    # Users: a Zipf number of conversations each, until the population is covered.
    sizes = np.minimum(rng.zipf(cfg.zipf, size=n_pop), 50)
    n_users = int(np.searchsorted(np.cumsum(sizes), n_pop)) + 1
    user_of = np.repeat(np.arange(n_users), sizes[:n_users])[:n_pop]
    escalated = rng.random(n_pop) < esc_share
    prob = np.where(escalated, pi_e, pi_r)
    sampled = np.flatnonzero(rng.random(n_pop) < prob)
    n = sampled.size
    cell = rng.choice(cfg.n_cells, size=n, p=cfg.mix(a))
    esc = escalated[sampled].astype(np.float64)
    sd_u, sd_c = _between_sd(cfg)
    user_eff = rng.normal(0.0, sd_u, n_users)[user_of[sampled]]
    if cfg.variable_turns:
        turns = 1 + rng.poisson(cfg.turns - 1, n)
    else:
        turns = np.full(n, cfg.turns)
    scores: dict[str, ScoreArrays] = {}
    judge = cfg.judge_configs[a]
    for spec in _specs(cfg):
        eta = (
            spec.intercept
            + _cell_effects(cfg, spec)[cell]
            + spec.escalation * esc
            + _shift(cfg, spec.name, a)[cell]
        )
        scores[spec.name] = _score(cfg, spec, eta, user_eff, turns, rng, a, judge)
    n_lang = len(cfg.verticals)
    users, user_code = np.unique(user_of[sampled], return_inverse=True)
    tags = {
        "language": Tag((cell // n_lang).astype(np.int64), cfg.languages),
        "vertical": Tag((cell % n_lang).astype(np.int64), cfg.verticals),
        "escalated": Tag(esc.astype(np.int64), ("no", "yes")),
        # Users are drawn afresh for each window, so their ids carry the window label.
        USER_TAG: Tag(user_code.astype(np.int64), tuple(f"{label}:{u}" for u in users)),
    }
    return Window.from_arrays(
        label,
        scores,
        n_conversations=n,
        inclusion_prob=prob[sampled],
        tags=tags,
        # Users are drawn afresh for each window (see the tag above).
        user_ids=np.asarray(tags[USER_TAG].labels)[user_code] if cfg.user_ids else None,
    )


def _score(
    cfg: SimulationConfig,
    spec: _Spec,
    eta: NDArray[np.float64],
    user_eff: NDArray[np.float64],
    turns: NDArray[np.int64],
    rng: np.random.Generator,
    a: int,
    judge: JudgeConfig,
) -> ScoreArrays:
    n = eta.size
    _, sd_c = _between_sd(cfg)
    base = spec.name.split("_")[0]
    if spec.kind in ("binary", "ordinal") or base == "groundedness":
        eta = eta + user_eff + rng.normal(0.0, sd_c, n)
    else:
        # Metadata and labels carry their own conversation-level noise; the user adds a
        # little correlation between a heavy user's conversations.
        eta = eta + _META_USER * user_eff
    if spec.turn_level:
        conv = np.repeat(np.arange(n), turns)
        starts = np.repeat(np.cumsum(turns) - turns, turns)
        msg: NDArray[np.int64] | None = (np.arange(conv.size) - starts) * 2 + 1
        eta_r = eta[conv]
    else:
        conv = np.arange(n)
        msg = None
        eta_r = eta
    m = eta_r.size
    if spec.kind == "binary":
        truth = rng.random(m) < 1.0 / (1.0 + np.exp(-eta_r))
        se, sp = cfg.judge_se[a], cfg.judge_sp[a]
        u = rng.random(m)
        observed = np.where(truth, u < se, u >= sp)
        return ScoreArrays("binary", conv, observed, msg, judge)
    if spec.kind == "ordinal":
        latent = eta_r + rng.logistic(0.0, 1.0, m)
        level = 1 + np.searchsorted(_THRESHOLDS, latent)
        return ScoreArrays("ordinal", conv, level.astype(np.float64), msg, judge)
    if spec.kind == "continuous":
        v: NDArray[np.float64]
        if base == "groundedness":
            v = 1.0 / (1.0 + np.exp(-(eta_r + rng.normal(0.0, 1.0, m))))
        elif base == "latency":
            v = np.rint(np.exp(eta_r + rng.normal(0.0, 0.5, m)))
        elif base == "cost":
            v = np.maximum(np.rint(np.exp(eta_r + rng.normal(0.0, 0.6, m)) * 1e4) / 1e4, 1e-4)
        else:
            v = rng.poisson(np.exp(eta_r)).astype(np.float64)
        return ScoreArrays("continuous", conv, v, msg, JudgeConfig())
    logits = _CAT_LOGITS[None, :] + np.zeros((m, 1))
    # The cohort effect and the shift move the "billing" label; escalation moves "technical".
    logits[:, 1] += eta_r - spec.intercept
    gumbel = rng.gumbel(size=logits.shape)
    label = np.asarray(_CATEGORIES)[np.argmax(logits + gumbel, axis=1)]
    return ScoreArrays("categorical", conv, label, msg, judge)


def _gauss_hermite(k: int = 40) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, w = np.polynomial.hermite_e.hermegauss(k)
    return x, w / w.sum()


def stratum_means(cfg: SimulationConfig, name: str, window: int) -> NDArray[np.float64]:
    """True population mean of a binary, ordinal or continuous score per stratum.

    Strata are ``cell * 2 + escalated``; the mean is over conversations and turns with
    the random intercepts integrated out (Gauss-Hermite), before judge noise.

    Args:
        cfg: Scenario.
        name: Score name.
        window: 0 baseline, 1 current.

    Returns:
        Means, shape (2 * cells,).
    """
    spec = next(s for s in _specs(cfg) if s.name == name)
    x, w = _gauss_hermite()
    sd_u, sd_c = _between_sd(cfg)
    sd = math.hypot(sd_u, sd_c)
    user_var = (_META_USER * sd_u) ** 2
    eff = _cell_effects(cfg, spec) + _shift(cfg, name, window)
    out = np.zeros(2 * cfg.n_cells)
    for c in range(cfg.n_cells):
        for e in (0, 1):
            mu = spec.intercept + eff[c] + spec.escalation * e
            base = spec.name.split("_")[0]
            if spec.kind == "binary":
                val = float(w @ (1.0 / (1.0 + np.exp(-(mu + sd * x)))))
            elif spec.kind == "ordinal":
                cdf = 1.0 / (1.0 + np.exp(-(_THRESHOLDS[None, :] - (mu + sd * x)[:, None])))
                val = float(w @ (1.0 + (1.0 - cdf).sum(axis=1)))
            elif base == "groundedness":
                tot = math.hypot(sd, 1.0)
                val = float(w @ (1.0 / (1.0 + np.exp(-(mu + tot * x)))))
            elif base == "latency":
                val = math.exp(mu + 0.5 * (0.5**2 + user_var))
            elif base == "cost":
                val = math.exp(mu + 0.5 * (0.6**2 + user_var))
            else:
                val = math.exp(mu + 0.5 * user_var)
            out[2 * c + e] = val
    return out


def population_shares(cfg: SimulationConfig, window: int) -> NDArray[np.float64]:
    """Population share of each stratum ``cell * 2 + escalated`` in a window."""
    e = cfg.escalation_share[window]
    out: NDArray[np.float64] = (cfg.mix(window)[:, None] * np.array([1 - e, e])[None, :]).ravel()
    return out


def true_standardized_effect(cfg: SimulationConfig, name: str) -> float:
    """The population change the tests estimate: standardised to the pooled mix.

    Args:
        cfg: Scenario.
        name: A binary, ordinal or continuous score.

    Returns:
        ``sum_h wbar_h (m_cur,h - m_base,h)`` with ``wbar`` the average population shares.
    """
    wbar = (population_shares(cfg, 0) + population_shares(cfg, 1)) / 2.0
    return float(wbar @ (stratum_means(cfg, name, 1) - stratum_means(cfg, name, 0)))


def mix_weights(values: Sequence[float]) -> tuple[float, ...]:
    """Normalise cell weights to shares."""
    v = np.asarray(values, dtype=np.float64)
    return tuple(float(x) for x in v / v.sum())
