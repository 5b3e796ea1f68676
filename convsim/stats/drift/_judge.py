"""The judge as an instrument that can drift.

A new judge model, prompt or grader version shifts scores exactly like a product change.
So scores from different judge configurations are never compared silently: the report
carries a judge finding, and the score's product alarms are suppressed unless an anchor
set shows the judge change itself made no detectable difference.

An *anchor set* is a fixed set of conversations judged under both configurations. The
paired comparison isolates the judge: exact McNemar on the discordant pairs for binary
scores, the Wilcoxon signed-rank test for ordinal and continuous ones, Bowker's symmetry
test for categorical ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

from ...trace import ScoreKind
from ._data import JudgeConfig, ScoreColumn, Window
from ._effects import wilson_bounds, z_quantile


@dataclass(frozen=True)
class AnchorResult:
    """The paired test of a judge change on an anchor set."""

    test: str
    """Test name."""
    statistic: float
    """Statistic."""
    p_value: float
    """Two-sided p-value."""
    effect: float
    """New minus old judge: pass-rate or mean difference, or the share of changed labels."""
    effect_name: str
    """What ``effect`` measures."""
    ci_low: float
    """Lower 95% bound."""
    ci_high: float
    """Upper 95% bound."""
    se0: float
    """Standard error under no judge effect (for the MDE)."""
    pairs: int
    """Anchor items judged under both configurations."""


def dominant_config(col: ScoreColumn) -> JudgeConfig:
    """The configuration that produced most of a column's rows."""
    counts = np.bincount(col.judge, minlength=len(col.judge_configs))
    return col.judge_configs[int(np.argmax(counts))]


def config_change(base: ScoreColumn, cur: ScoreColumn) -> str | None:
    """Describe a judge-configuration difference between two windows, or None when equal.

    Args:
        base: The score's baseline column.
        cur: The score's current column.

    Returns:
        A sentence, or None when both windows used one and the same configuration.
    """
    a = set(base.configs_used())
    b = set(cur.configs_used())
    if a == b and len(a) == 1:
        return None
    if a == b:
        return f"both windows mix {len(a)} judge configurations"
    return (
        f"baseline judged by [{'; '.join(sorted(map(str, a)))}], "
        f"current by [{'; '.join(sorted(map(str, b)))}]"
    )


def _pairs(
    col: ScoreColumn, old: JudgeConfig, new: JudgeConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if old not in col.judge_configs or new not in col.judge_configs:
        return np.zeros(0), np.zeros(0)
    key = col.conversation * (int(col.message_index.max(initial=-1)) + 2) + col.message_index + 1
    out = []
    for cfg in (old, new):
        sel = col.judge == col.judge_configs.index(cfg)
        k, first = np.unique(key[sel], return_index=True)
        out.append((k, col.values[sel][first]))
    _, i0, i1 = np.intersect1d(out[0][0], out[1][0], assume_unique=True, return_indices=True)
    return out[0][1][i0], out[1][1][i1]


def anchor_test(
    anchor: Window, name: str, old: JudgeConfig, new: JudgeConfig, alpha: float
) -> AnchorResult | None:
    """Test the judge change itself on an anchor set.

    Args:
        anchor: Window with the anchor conversations judged under both configurations.
        name: Score name.
        old: Baseline judge configuration.
        new: Current judge configuration.
        alpha: One minus the interval coverage.

    Returns:
        The result, or None when the anchor set has no pairs for this score.
    """
    col = anchor.scores.get(name)
    if col is None:
        return None
    x_old, x_new = _pairs(col, old, new)
    return paired_test(col.kind, x_old, x_new, len(col.categories), alpha)


def anchor_drift(
    baseline: Window | None, current: Window | None, name: str, alpha: float
) -> AnchorResult | None:
    """Test whether the judge moved between two windows, on the anchor set both re-judged.

    The anchor set is a fixed set of conversations judged again in every window, so
    their scores change only if the judge does: a provider updating the model behind a
    name, a changed prompt, a new grader. Items are paired by conversation and message.

    Args:
        baseline: The baseline window's anchor re-judgments.
        current: The current window's anchor re-judgments.
        name: Score name.
        alpha: One minus the interval coverage.

    Returns:
        The paired test (old = baseline), or None when either window has no anchor
        scores of this name, or their kinds differ.
    """
    if baseline is None or current is None:
        return None
    c0, c1 = baseline.scores.get(name), current.scores.get(name)
    if c0 is None or c1 is None or c0.kind != c1.kind:
        return None
    categories = tuple(sorted(set(c0.categories) | set(c1.categories)))
    keyed = []
    for w, col in ((baseline, c0), (current, c1)):
        values = col.values
        if col.kind == "categorical":
            remap = np.asarray([categories.index(c) for c in col.categories], dtype=np.float64)
            values = remap[values.astype(np.int64)] if col.n_rows else values
        ids = w.conversation_ids[col.conversation]
        keys = np.char.add(np.char.add(ids, "\x1f"), col.message_index.astype(np.str_))
        k, first = np.unique(keys, return_index=True)
        keyed.append((k, values[first]))
    _, i0, i1 = np.intersect1d(keyed[0][0], keyed[1][0], assume_unique=True, return_indices=True)
    return paired_test(c0.kind, keyed[0][1][i0], keyed[1][1][i1], len(categories), alpha)


def paired_test(
    kind: ScoreKind,
    x_old: NDArray[np.float64],
    x_new: NDArray[np.float64],
    n_categories: int,
    alpha: float,
) -> AnchorResult | None:
    """The paired judge test on anchor items scored twice (old, new).

    Exact McNemar for binary scores, Wilcoxon signed-rank for ordinal and continuous
    ones, Bowker's symmetry test for categorical codes.

    Args:
        kind: Score kind.
        x_old: Per item, the old judgment.
        x_new: Per item, the new judgment.
        n_categories: Number of category codes (categorical scores).
        alpha: One minus the interval coverage.

    Returns:
        The result, or None without pairs.
    """
    n = int(x_old.size)
    if n == 0:
        return None
    z = z_quantile(alpha)
    if kind == "binary":
        b = int(((x_old == 1) & (x_new == 0)).sum())
        c = int(((x_old == 0) & (x_new == 1)).sum())
        p = float(sps.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
        # Agresti-Min interval: add 1/2 to every cell of the paired table.
        bb, cc, nn = b + 0.5, c + 0.5, n + 2.0
        d = (cc - bb) / nn
        se = math.sqrt(max((bb + cc) - (cc - bb) ** 2 / nn, 0.0)) / nn
        return AnchorResult(
            "exact McNemar (anchor set)",
            float(b + c),
            min(1.0, p),
            (c - b) / n,
            "difference in pass rate, new minus old judge",
            d - z * se,
            d + z * se,
            math.sqrt(max(b + c, 1)) / n,
            n,
        )
    if kind in ("ordinal", "continuous"):
        diff = x_new - x_old
        mean = float(diff.mean())
        sd = float(diff.std(ddof=1)) if n > 1 else 0.0
        if not np.any(diff != 0):
            stat, p = 0.0, 1.0
        else:
            nz = diff[diff != 0]
            ties = np.unique(np.abs(nz)).size < nz.size
            exact_ok = nz.size == n and not ties and n <= 50
            res = sps.wilcoxon(diff, zero_method="pratt", method="exact" if exact_ok else "approx")
            stat, p = float(res.statistic), float(res.pvalue)
        se = sd / math.sqrt(n) if n > 1 else 0.0
        tq = float(sps.t.ppf(1 - alpha / 2, n - 1)) if n > 1 else z
        return AnchorResult(
            "Wilcoxon signed-rank (anchor set)",
            stat,
            min(1.0, max(0.0, p)),
            mean,
            "difference in mean, new minus old judge",
            mean - tq * se,
            mean + tq * se,
            se,
            n,
        )
    k = n_categories
    table = np.zeros((k, k))
    np.add.at(table, (x_old.astype(np.int64), x_new.astype(np.int64)), 1.0)
    upper = np.triu_indices(k, 1)
    a, b2 = table[upper], table.T[upper]
    used = (a + b2) > 0
    stat = float(((a[used] - b2[used]) ** 2 / (a[used] + b2[used])).sum())
    df = int(used.sum())
    p = float(sps.chi2.sf(stat, df)) if df else 1.0
    changed = float(n - np.trace(table))
    lo, hi = wilson_bounds(changed / n, n, alpha)
    return AnchorResult(
        "Bowker symmetry (anchor set)",
        stat,
        min(1.0, p),
        changed / n,
        "share of anchor items whose label changed",
        lo,
        hi,
        math.sqrt(max(changed, 1.0)) / n,
        n,
    )
