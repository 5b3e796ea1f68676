"""Drift findings and the report that carries them (JSON and Markdown)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ...trace import ScoreKind

Headline = Literal["alarm", "significant", "underpowered"]
"""Groups of the report's headline: alarms, significant changes within the minimum
effect, and large effects the data could not confirm."""

SUGGESTIVE_P = 0.1
"""Uncorrected p-value at or below which a large effect that is not significant after
correction is listed among the "large but not significant" headline findings. Small
cohorts throw up large effects by chance every week; this keeps those that the data at
least lean toward, so the list points at what to look at, not at noise."""

FindingKind = Literal["score", "mix", "judge", "insufficient"]
"""What a finding is about: a score's change, the cohort mix, the judge, or too little data."""

Family = Literal["primary", "drilldown", "mix", "judge"]
"""The multiple-testing family a finding's p-value was corrected in."""

ALL: Final = "all"
"""Cohort value of findings over all cohorts."""


@dataclass(frozen=True)
class WindowStats:
    """One window's side of a finding: what a chart of the alarm needs."""

    label: str
    """Window label."""
    n: int
    """Conversations."""
    rows: int
    """Scores (turns, for turn-level scores)."""
    estimate: float | None
    """The window's own weighted (Hajek) pass rate or mean, at its own cohort mix."""
    ci_low: float | None
    """Lower 95% bound of ``estimate``."""
    ci_high: float | None
    """Upper 95% bound of ``estimate``."""
    standardized: float | None
    """The estimate at the pooled mix of both windows (what the effect compares)."""
    distribution: Mapping[str, float] = field(default_factory=dict)
    """Shares per level or category (weighted), or quantiles ``p10`` ... ``p90``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "n": self.n,
            "rows": self.rows,
            "estimate": _num(self.estimate),
            "ci_low": _num(self.ci_low),
            "ci_high": _num(self.ci_high),
            "standardized": _num(self.standardized),
            "distribution": {k: _num(v) for k, v in self.distribution.items()},
        }


@dataclass(frozen=True)
class SecondaryTest:
    """A shape or sensitivity test shown beside the primary one; it never raises alarms."""

    test: str
    """Test name."""
    statistic: float
    """Statistic."""
    p_value: float
    """Unadjusted p-value."""
    df: float | None = None
    """Degrees of freedom, when it has them."""
    effect: float | None = None
    """Its effect, when it has one (e.g. the ratio of geometric means)."""
    effect_name: str | None = None
    """What ``effect`` measures."""
    note: str = ""
    """Caveats."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "test": self.test,
            "statistic": _num(self.statistic),
            "p_value": _num(self.p_value),
            "df": _num(self.df),
            "effect": _num(self.effect),
            "effect_name": self.effect_name,
            "note": self.note,
        }


@dataclass(frozen=True)
class DecompositionRow:
    """One cohort's part in a Kitagawa decomposition."""

    cohort: Mapping[str, str]
    """The cohort cell."""
    share_baseline: float
    """Its weighted share of baseline conversations."""
    share_current: float
    """Its weighted share of current conversations."""
    mean_baseline: float | None
    """Its baseline pass rate or mean (None when absent)."""
    mean_current: float | None
    """Its current pass rate or mean (None when absent)."""
    mix: float
    """Its contribution to the mix component."""
    within: float
    """Its contribution to the within-cohort component."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "cohort": dict(self.cohort),
            "share_baseline": _num(self.share_baseline),
            "share_current": _num(self.share_current),
            "mean_baseline": _num(self.mean_baseline),
            "mean_current": _num(self.mean_current),
            "mix": _num(self.mix),
            "within": _num(self.within),
        }


@dataclass(frozen=True)
class Decomposition:
    """Kitagawa decomposition of a score's aggregate change: ``total = mix + within``.

    ``mix = sum_h (w_cur,h - w_base,h) (m_base,h + m_cur,h) / 2`` is what the change in
    the cohort (and sampling-stratum) mix alone would have done; ``within = sum_h
    (w_base,h + w_cur,h) / 2 (m_cur,h - m_base,h)`` is the change inside cohorts at the
    average mix. This is Kitagawa's (1955) symmetric form; the two terms add up to the
    total exactly. Strata seen in one window only count entirely as mix.
    """

    total: float
    """Current minus baseline weighted mean, each at its own mix."""
    mix: float
    """Part due to the cohort mix."""
    within: float
    """Part due to changes within cohorts."""
    rows: tuple[DecompositionRow, ...] = ()
    """Per cohort cell."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "total": _num(self.total),
            "mix": _num(self.mix),
            "within": _num(self.within),
            "rows": [r.to_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class Finding:
    """One comparison of one score (or the cohort mix, or a judge) between the windows.

    For charts, ``baseline`` and ``current`` carry each window's estimate with its
    interval and its distribution, and the effect interval is ``ci_low``..``ci_high``.
    """

    metric: str
    """Score name (``cohort_mix`` for the mix finding)."""
    cohort: Mapping[str, str] | Literal["all"]
    """The cohort cell, or ``"all"``."""
    kind: FindingKind
    """What the finding is about."""
    test: str
    """The primary test that produced ``p_value`` (empty for insufficient data)."""
    statistic: float | None
    """Its statistic."""
    p_value: float | None
    """Two-sided p-value in [0, 1]."""
    p_adjusted: float | None
    """p-value corrected within ``family`` (Holm or Benjamini-Hochberg)."""
    effect: float | None
    """Current minus baseline in the score's units (``effect_name`` says what)."""
    ci_low: float | None
    """Lower bound of the effect's 95% interval."""
    ci_high: float | None
    """Upper bound of the effect's 95% interval."""
    mde: float | None
    """Minimum detectable effect: the change this comparison finds significant 80% of
    the time, at the family's corrected level."""
    n_baseline: int
    """Baseline conversations (anchor pairs for judge findings)."""
    n_current: int
    """Current conversations (anchor pairs for judge findings)."""
    alarm: bool
    """Significant after correction and the effect interval beyond ``min_effect``."""
    note: str = ""
    """What a reader must know: why there is no alarm, judge warnings, caveats."""
    score_kind: ScoreKind | None = None
    """Kind of the score."""
    effect_name: str = ""
    """What ``effect`` measures, e.g. ``difference in pass rate``."""
    effect_label: str | None = None
    """For categorical scores, the category that moved most."""
    se: float | None = None
    """Standard error of ``effect`` (for sequential monitoring and charts)."""
    mde_alarm: float | None = None
    """The change that would raise an *alarm* 80% of the time (significance and the
    minimum-effect rule together)."""
    min_effect: float | None = None
    """The minimum meaningful effect the alarm rule used."""
    family: Family | None = None
    """Multiple-testing family."""
    significant: bool = False
    """``p_adjusted < alpha``."""
    p_method: str | None = None
    """``asymptotic``, ``permutation`` or ``exact``."""
    df: float | None = None
    """Degrees of freedom of the statistic, when it has them."""
    ci_method: str | None = None
    """How the effect interval was built."""
    secondary: tuple[SecondaryTest, ...] = ()
    """Shape and sensitivity tests (not used for alarms)."""
    baseline: WindowStats | None = None
    """Baseline side, for charts."""
    current: WindowStats | None = None
    """Current side, for charts."""
    decomposition: Decomposition | None = None
    """Kitagawa decomposition of the aggregate change (all-cohort score findings)."""
    judge_status: str | None = None
    """Judge findings: ``judge drift``, ``configuration changed, untested``,
    ``configuration changed, no effect on the anchors`` or ``stable on the anchors``."""

    @property
    def direction(self) -> Literal["up", "down", "none"]:
        """Sign of the effect."""
        if self.effect is None or self.effect == 0:
            return "none"
        return "up" if self.effect > 0 else "down"

    @property
    def cohort_label(self) -> str:
        """The cohort as text: ``all`` or ``key=value, key=value``."""
        if isinstance(self.cohort, str):
            return ALL
        return ", ".join(f"{k}={v}" for k, v in self.cohort.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (None for undefined numbers)."""
        return {
            "metric": self.metric,
            "cohort": self.cohort if isinstance(self.cohort, str) else dict(self.cohort),
            "kind": self.kind,
            "test": self.test,
            "statistic": _num(self.statistic),
            "p_value": _num(self.p_value),
            "p_adjusted": _num(self.p_adjusted),
            "effect": _num(self.effect),
            "ci_low": _num(self.ci_low),
            "ci_high": _num(self.ci_high),
            "mde": _num(self.mde),
            "n_baseline": self.n_baseline,
            "n_current": self.n_current,
            "alarm": self.alarm,
            "note": self.note,
            "score_kind": self.score_kind,
            "effect_name": self.effect_name,
            "effect_label": self.effect_label,
            "direction": self.direction,
            "se": _num(self.se),
            "mde_alarm": _num(self.mde_alarm),
            "min_effect": _num(self.min_effect),
            "family": self.family,
            "significant": self.significant,
            "p_method": self.p_method,
            "df": _num(self.df),
            "ci_method": self.ci_method,
            "secondary": [s.to_dict() for s in self.secondary],
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "current": None if self.current is None else self.current.to_dict(),
            "decomposition": None if self.decomposition is None else self.decomposition.to_dict(),
            "judge_status": self.judge_status,
        }


@dataclass(frozen=True)
class DriftReport:
    """Every finding of a window comparison, with the settings that produced them."""

    baseline: str
    """Baseline window label."""
    current: str
    """Current window label."""
    alpha: float
    """Significance level of every family."""
    by: tuple[str, ...]
    """Cohort keys of the drill-down."""
    findings: tuple[Finding, ...]
    """All findings: per score the all-cohort one first, then cohorts; mix; judge."""
    min_n: int
    """Conversations a cohort needs in each window to be tested."""
    clustering: str = ""
    """What the variances treat as correlated conversations (e.g. ``by user_id: ...``)."""
    caveats: tuple[str, ...] = ()
    """Assumptions a reader must know, e.g. that conversations were taken as independent."""

    @property
    def alarms(self) -> tuple[Finding, ...]:
        """Findings that raised an alarm."""
        return tuple(f for f in self.findings if f.alarm)

    @property
    def judge_warnings(self) -> tuple[Finding, ...]:
        """Judge findings that say the judge moved, or changed with nothing to check it."""
        return tuple(
            f
            for f in self.findings
            if f.kind == "judge"
            and f.judge_status in ("judge drift", "configuration changed, untested")
        )

    def headline(self) -> tuple[tuple[Headline, Finding], ...]:
        """What matters first: alarms, then significant, then large but unconfirmed.

        Alarms come first; then significant changes within the minimum effect; then
        effects beyond the minimum that the corrected tests could not confirm although
        their own p-value is at most :data:`SUGGESTIVE_P` (large but underpowered, with
        their MDE). Each group is sorted by size: the effect in multiples of its
        minimum meaningful effect, so points of pass rate, levels and milliseconds rank
        together.
        """
        out: list[tuple[Headline, Finding]] = []
        groups: dict[Headline, list[Finding]] = {"alarm": [], "significant": [], "underpowered": []}
        for f in self.findings:
            if f.kind not in ("score", "mix") or f.effect is None:
                continue
            if f.alarm:
                groups["alarm"].append(f)
            elif f.significant and "alarm suppressed" not in f.note:
                groups["significant"].append(f)
            elif (
                not f.significant
                and f.min_effect
                and abs(f.effect) >= f.min_effect
                and f.p_value is not None
                and f.p_value <= SUGGESTIVE_P
            ):
                groups["underpowered"].append(f)
        for key in ("alarm", "significant", "underpowered"):
            out.extend((key, f) for f in sorted(groups[key], key=_size, reverse=True))
        return tuple(out)

    def summary(self) -> dict[str, Any]:
        """Counts and settings, JSON-ready."""
        fam: dict[str, int] = {}
        for f in self.findings:
            if f.family is not None:
                fam[f.family] = fam.get(f.family, 0) + 1
        return {
            "baseline": self.baseline,
            "current": self.current,
            "alpha": self.alpha,
            "by": list(self.by),
            "min_n": self.min_n,
            "findings": len(self.findings),
            "alarms": len(self.alarms),
            "alarm_list": [
                {"metric": f.metric, "cohort": f.cohort_label, "kind": f.kind} for f in self.alarms
            ],
            "headline": [
                {
                    "group": group,
                    "metric": f.metric,
                    "cohort": f.cohort_label,
                    "effect": _num(f.effect),
                    "ci_low": _num(f.ci_low),
                    "ci_high": _num(f.ci_high),
                    "min_effect": _num(f.min_effect),
                    "mde": _num(f.mde),
                    "p_adjusted": _num(f.p_adjusted),
                }
                for group, f in self.headline()
            ],
            "judge_warnings": len(self.judge_warnings),
            "judge_checks": sum(1 for f in self.findings if f.kind == "judge"),
            "insufficient": sum(1 for f in self.findings if f.kind == "insufficient"),
            "families": fam,
            "clustering": self.clustering,
            "caveats": list(self.caveats),
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"summary": ..., "findings": [...]}``."""
        return {"summary": self.summary(), "findings": [f.to_dict() for f in self.findings]}

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_markdown(self) -> str:
        """A readable report: what matters first, then the judge, the mix, every finding.

        What matters first is :meth:`headline`: alarms, significant changes, and large
        effects that were not significant, each group by size.
        """
        s = self.summary()
        out = [
            f"# Drift report: {self.baseline} → {self.current}",
            "",
            f"{s['alarms']} alarm(s), {s['judge_warnings']} judge warning(s), "
            f"{s['insufficient']} comparison(s) with insufficient data. "
            f"alpha = {self.alpha:g}; the primary family (one finding per score over all "
            f"cohorts) is Holm-corrected, the per-cohort drill-down Benjamini-Hochberg. "
            "An alarm needs a significant corrected p-value *and* a 95% interval entirely "
            "beyond the score's minimum meaningful effect. "
            f"Clustering: {self.clustering or 'none'}.",
            "",
        ]
        for c in self.caveats:
            out += [f"> **Caveat.** {c}", ""]
        head = self.headline()
        for group in ("alarm", "significant", "underpowered"):
            rows = [f for g, f in head if g == group]
            if rows:
                out += [f"## {HEADLINE_TITLES[group]}", "", _TABLE_HEAD, _TABLE_RULE]
                out += [_row(f) for f in rows]
                out.append("")
        if not head:
            out += ["No alarm, no significant change, no large effect.", ""]
        judge = [f for f in self.findings if f.kind == "judge"]
        if judge:
            out += ["## Judge", ""]
            out += [f"- **{f.metric}** ({f.judge_status}): {f.note}" for f in judge]
            out.append("")
        mix = [f for f in self.findings if f.kind == "mix"]
        if mix:
            out += ["## Cohort mix", ""]
            for f in mix:
                out.append(
                    f"- {f.test}: total variation distance {_pp(f.effect)} "
                    f"(95% CI {_pp(f.ci_low)} to {_pp(f.ci_high)}), p = {_p(f.p_value)}"
                    f"{' — ALARM' if f.alarm else ''}. {f.note}"
                )
            decs = [f for f in self.findings if f.decomposition is not None]
            if decs:
                out += ["", "| metric | total change | mix part | within-cohort part |"]
                out.append("|---|---:|---:|---:|")
                for f in decs:
                    d = f.decomposition
                    assert d is not None
                    out.append(
                        f"| {f.metric} | {_fmt(d.total, f.score_kind)} | "
                        f"{_fmt(d.mix, f.score_kind)} | {_fmt(d.within, f.score_kind)} |"
                    )
            out.append("")
        for title, fam in (("Scores, all cohorts", "primary"), ("Drill-down", "drilldown")):
            rows = [f for f in self.findings if f.family == fam]
            if rows:
                out += [f"## {title}", "", _TABLE_HEAD, _TABLE_RULE]
                out += [_row(f) for f in rows]
                out.append("")
        small = [f for f in self.findings if f.kind == "insufficient"]
        if small:
            out += ["## Insufficient data", ""]
            out += [f"- {f.metric} [{f.cohort_label}]: {f.note}" for f in small]
            out.append("")
        return "\n".join(out)


def _size(f: Finding) -> float:
    """The effect in multiples of its minimum effect (or of its standard error)."""
    eff = abs(f.effect or 0.0)
    if f.min_effect:
        return eff / f.min_effect
    return eff / f.se if f.se else 0.0


HEADLINE_TITLES: Mapping[Headline, str] = {
    "alarm": "Alarms",
    "significant": "Significant, within the minimum effect",
    "underpowered": "Large but not significant (more data would tell)",
}
"""Section titles of the headline groups."""


_TABLE_HEAD = "| metric | cohort | effect (95% CI) | p | p adj. | MDE | verdict |"
_TABLE_RULE = "|---|---|---:|---:|---:|---:|---|"


def _verdict(f: Finding) -> str:
    if f.alarm:
        return "**ALARM**"
    if "alarm suppressed" in f.note:
        return "not compared (judge changed)"
    if f.significant:
        return "significant, within the minimum effect"
    if f.min_effect and f.effect is not None and abs(f.effect) >= f.min_effect:
        return (
            f"large but not significant (could detect ±{_fmt(f.mde, f.score_kind, signed=False)})"
        )
    return f"no drift detected (could detect ±{_fmt(f.mde, f.score_kind, signed=False)})"


def verdict(f: Finding) -> str:
    """A finding's verdict in a few words (Markdown emphasis stripped)."""
    return _verdict(f).replace("**", "")


def _row(f: Finding) -> str:
    label = f" [{f.effect_label}]" if f.effect_label else ""
    eff = (
        f"{_fmt(f.effect, f.score_kind)}{label} "
        f"({_fmt(f.ci_low, f.score_kind)} to {_fmt(f.ci_high, f.score_kind)})"
    )
    return (
        f"| {f.metric} | {f.cohort_label} | {eff} | {_p(f.p_value)} | {_p(f.p_adjusted)} | "
        f"{_fmt(f.mde, f.score_kind, signed=False)} | {_verdict(f)} |"
    )


def _num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _pp(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.1f} pp"


def _fmt(x: float | None, kind: ScoreKind | None, signed: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    sign = "+" if signed else ""
    if kind in ("binary", "categorical"):
        return f"{100 * x:{sign}.1f} pp"
    if kind == "ordinal":
        return f"{x:{sign}.2f} levels"
    return f"{x:{sign}.4g}"


def format_effect(x: float | None, kind: ScoreKind | None, signed: bool = True) -> str:
    """A value in the score's units: points for rates and shares, levels for ordinal scores."""
    return _fmt(x, kind, signed)
