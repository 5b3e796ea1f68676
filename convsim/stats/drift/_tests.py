"""Two-sample tests that respect clustering, sampling weights and cohort strata.

Every test here compares the same thing: the two windows' distributions of a score
*within* strata, where a stratum is a cohort cell crossed with a sampling stratum (one
inclusion probability). Within a stratum all conversations carry the same weight and are
independent, so an ordinary two-sample statistic is valid there. Strata are combined by
direct standardisation to the pooled mix ``wbar_h`` (the average of the two windows'
estimated population shares):

    D = sum_h wbar_h * (stat_h(current) - stat_h(baseline)),

with the null variance summed over strata from pooled within-stratum variances. For a
one-dimensional statistic this is a weighted Stouffer combination of the stratum z-scores
with weights ``wbar_h * se_h``; effects are standardised the same way, so a pass-rate test
and its effect describe the same difference. A change in the cohort mix alone moves no
stratum and so raises no within-cohort alarm; it is reported by the mix test instead.

Turn-level scores enter as conversations: a unit carries the sum of its turn values and
its number of turns, means are ratio estimators and variances come from
conversation-level residuals, which is the cluster-robust ("sandwich") variance. When a
cluster above the conversation is known (a user with several conversations, possibly in
both windows), the within-cluster cross products of the conversations' influences are
added (:class:`ClusterIndex`), which makes every variance cluster-robust over users.

Small samples use within-stratum permutation p-values of the same statistic (exact
under the null of exchangeable conversations), and the simplest binary case uses
Boschloo's exact test.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize as spo
from scipy import special as spc
from scipy import stats as sps

PMethod = Literal["asymptotic", "permutation", "exact"]
"""Where a p-value comes from."""

CVM_CELLS = 50
"""Cramér-von Mises statistics are evaluated on at most this many pooled-quantile cells.

The null weights of the statistic decay like 1/j**2, so 50 cells lose next to nothing,
and the 49 x 49 eigenproblem stays below the size where a multithreaded BLAS gets slow."""

_CLUSTER_NOTE = "clustered units: asymptotic p-value (permutations would break up clusters)"

_WEIGHTS_NOTE = (
    "unequal sampling weights within a stratum: asymptotic p-value (permutations would "
    "mix conversations that stand for different numbers of others)"
)


def _asymptotic_note(design: Design) -> str | None:
    """Why permutations cannot be used here, or None when they can."""
    if design.cluster is not None:
        return _CLUSTER_NOTE
    if not design.equal_weights:
        return _WEIGHTS_NOTE
    return None


SMALL_N = 100
"""Below this many conversations in either window, p-values come from permutations."""

PERMUTATION_MAX_N = 2000
"""Above this many pooled conversations a sparse table is tested asymptotically anyway."""


@dataclass(frozen=True)
class TestResult:
    """One test's outcome."""

    __test__ = False  # not a pytest test class, despite the name

    test: str
    """Test name as shown in reports."""
    statistic: float
    """Test statistic (z for z-type tests, chi-square, Cramér-von Mises T)."""
    p_value: float
    """Two-sided p-value in [0, 1]."""
    method: PMethod = "asymptotic"
    """Where the p-value comes from."""
    df: float | None = None
    """Degrees of freedom, for chi-square and t statistics."""
    note: str = ""
    """Anything a reader must know (sparse cells merged, asymptotics at small n, ...)."""


@dataclass(frozen=True, eq=False)
class ClusterIndex:
    """The units that share a top-level cluster (e.g. a user) with another unit.

    Only they change a variance when clustering is taken into account, so influences are
    evaluated for them alone.
    """

    units: NDArray[np.int64]
    """Positions of the units in clusters of two or more."""
    codes: NDArray[np.int64]
    """Compact cluster code of each of those units."""
    n: int
    """Number of such clusters."""

    @classmethod
    def build(cls, cluster: NDArray[np.int64]) -> ClusterIndex | None:
        """Index of a cluster-code array; None when every cluster is a single unit."""
        if cluster.size == 0:
            return None
        _, inv, sizes = np.unique(cluster, return_inverse=True, return_counts=True)
        multi = np.flatnonzero(sizes[inv] > 1)
        if multi.size == 0:
            return None
        codes, compact = np.unique(inv[multi], return_inverse=True)
        return cls(multi.astype(np.int64), compact.astype(np.int64), int(codes.size))

    def cross(self, infl: NDArray[np.float64]) -> NDArray[np.float64]:
        """``sum_c sum_{i != j in c} IF_i IF_j'`` from the influences of :attr:`units`.

        Args:
            infl: Influence of each unit in :attr:`units`, shape (m,) or (m, k).

        Returns:
            A 0-d array for 1-d influences, else a (k, k) matrix.
        """
        f = infl if infl.ndim == 2 else infl[:, None]
        g = np.stack(
            [np.bincount(self.codes, weights=f[:, j], minlength=self.n) for j in range(f.shape[1])],
            axis=1,
        )
        out: NDArray[np.float64] = g.T @ g - f.T @ f
        return out if infl.ndim == 2 else out.reshape(())


@dataclass(frozen=True, eq=False)
class Design:
    """Strata of one comparison and their standardisation weights.

    Only strata with conversations in both windows can show a within-stratum change;
    units of other strata are dropped from tests (and counted as mix by the Kitagawa
    decomposition).

    Within a window and stratum the units usually share one sampling weight, and the
    tests are the classical two-sample ones. Where they do not (a cell compared as a
    whole because its sampling strata differ between the windows), each window's
    stratum mean is the weighted (Hajek) mean, ``u`` carries the weights, and that
    stratum's variances are the linearised ones of each window's own units.
    """

    keep: NDArray[np.bool_]
    """Mask over the input units: in a stratum present in both windows."""
    current: NDArray[np.bool_]
    """Per kept unit: from the current window."""
    stratum: NDArray[np.int64]
    """Per kept unit: compact stratum code in ``range(h)``."""
    n: NDArray[np.float64]
    """Units per window (row 0 baseline, row 1 current) and stratum, shape (2, h)."""
    wbar: NDArray[np.float64]
    """Standardisation weight of each stratum (sums to 1)."""
    codes: NDArray[np.int64]
    """Original stratum code of each compact stratum."""
    n_total: tuple[int, int]
    """Units per window before dropping strata seen in one window only."""
    u: NDArray[np.float64]
    """Per kept unit, its sampling weight relative to the mean weight of its window and
    stratum (1 where those weights are equal)."""
    uniform: NDArray[np.bool_]
    """Per stratum, whether each window's units there share one sampling weight."""
    cluster: ClusterIndex | None = None
    """Kept units sharing a top-level cluster (e.g. a user); None when every cluster is a
    single conversation, so the conversation-level variances are exact as they are."""

    @property
    def equal_weights(self) -> bool:
        """Whether every window and stratum has equal weights (permutations are exact)."""
        return bool(self.uniform.all())

    @property
    def h(self) -> int:
        """Number of strata compared."""
        return int(self.wbar.size)

    def group(self) -> NDArray[np.int64]:
        """Per kept unit, ``2 * stratum + window``: the index for per-group bincounts."""
        return self.stratum * 2 + self.current.astype(np.int64)

    def bincount(self, values: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """Sums per window and stratum, shape (2, h)."""
        out = np.bincount(self.group(), weights=values, minlength=2 * self.h)
        return out.astype(np.float64).reshape(self.h, 2).T


def make_design(
    current: NDArray[np.bool_],
    stratum: NDArray[np.int64],
    weight: NDArray[np.float64],
    cluster: NDArray[np.int64] | None = None,
) -> Design:
    """Strata, per-window counts and standardisation weights of a set of units.

    Args:
        current: Per unit, whether it comes from the current window.
        stratum: Per unit, its stratum code.
        weight: Per unit, its sampling weight (constant within a stratum).
        cluster: Per unit, its top-level cluster code (e.g. the user), if known.

    Returns:
        The design.
    """
    codes, inv = np.unique(stratum, return_inverse=True)
    h_all = codes.size
    g = inv * 2 + current.astype(np.int64)
    flat_n = np.bincount(g, minlength=2 * h_all).astype(np.float64)
    flat_w = np.bincount(g, weights=weight, minlength=2 * h_all)
    n_all = flat_n.reshape(h_all, 2).T
    w_all = flat_w.reshape(h_all, 2).T
    tot = w_all.sum(axis=1, keepdims=True)
    share = np.divide(w_all, tot, out=np.zeros_like(w_all), where=tot > 0)
    common = (n_all[0] > 0) & (n_all[1] > 0)
    wbar = (share[0] + share[1])[common] / 2.0
    if wbar.size:
        wbar = wbar / wbar.sum()
    compact = np.full(h_all, -1, dtype=np.int64)
    compact[common] = np.arange(int(common.sum()))
    keep = common[inv]
    kept_cluster = None if cluster is None else ClusterIndex.build(cluster[keep])
    # Weights relative to their window and stratum: exactly 1 where they are all equal,
    # so those strata keep the classical statistics bit for bit.
    w_min = np.full(2 * h_all, np.inf)
    w_max = np.zeros(2 * h_all)
    np.minimum.at(w_min, g, weight)
    np.maximum.at(w_max, g, weight)
    equal = w_max <= w_min * (1.0 + 1e-9)
    mean_w = np.divide(flat_w, flat_n, out=np.ones_like(flat_w), where=flat_n > 0)
    u = np.where(equal[g], 1.0, weight / mean_w[g])
    uniform: NDArray[np.bool_] = np.asarray(equal.reshape(h_all, 2).all(axis=1))
    return Design(
        keep=keep,
        current=current[keep],
        stratum=compact[inv[keep]],
        n=n_all[:, common],
        wbar=wbar,
        codes=codes[common].astype(np.int64),
        n_total=(int((~current).sum()), int(current.sum())),
        u=u[keep].astype(np.float64),
        uniform=uniform[common],
        cluster=kept_cluster,
    )


@dataclass(frozen=True)
class Contrast:
    """A standardised difference of (ratio) means between the windows."""

    delta: float
    """``sum_h wbar_h (mean_current_h - mean_baseline_h)``."""
    var0: float
    """Variance of ``delta`` under the null, from pooled within-stratum variances."""
    var: float
    """Variance of ``delta`` from each window's own variances (for intervals)."""
    means: tuple[float, float]
    """Standardised mean of each window."""
    mean_vars: tuple[float, float]
    """Variance of each standardised mean."""
    stratum_means: NDArray[np.float64]
    """Per window and stratum, the (ratio) mean, shape (2, h)."""
    cluster_var: float = 0.0
    """What clustering above the conversation added to ``var`` (0 without clusters)."""
    shift_cross: float = 0.0
    """How much a change of ``d`` adds to ``var0`` through the clusters: ``d**2`` times
    this. ``var0`` measures the units around the pooled mean, so once the windows
    differ every unit of a user is off in the same direction, and the cross products
    of a user's units grow with the square of the change (0 without clusters)."""


def contrast(
    design: Design,
    total: NDArray[np.float64],
    turns: NDArray[np.float64],
    *,
    ddof: int,
    small_sample: bool,
) -> Contrast:
    """Standardised difference of ratio means ``sum(total) / sum(turns)``.

    Args:
        design: Strata (its ``keep`` mask already applied to ``total`` and ``turns``).
        total: Per unit, the numerator (sum of turn values).
        turns: Per unit, the denominator (turns; 1 for conversation-level values).
        ddof: Degrees of freedom removed in the pooled null variance: 0 reproduces the
            classical pooled two-proportion z and Pearson's chi-square, 1 the exact
            permutation variance (Mann-Whitney).
        small_sample: Whether the windows' own variances get the ``n / (n - 1)`` factor.

    Returns:
        The contrast.
    """
    # Centre first, so the sums-of-squares algebra below does not cancel catastrophically
    # for large values such as latencies in milliseconds.
    c = float(total.sum() / turns.sum()) if turns.size else 0.0
    y = total - c * turns
    n = design.n
    u = design.u
    b = design.bincount
    sy = b(u * y)
    sm = b(u * turns)
    u2 = u * u
    qyy = b(u2 * y * y)
    qym = b(u2 * y * turns)
    qmm = b(u2 * turns * turns)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = sy / sm
        mu_p = sy.sum(0) / sm.sum(0)
        nh = n.sum(0)
        mbar = sm.sum(0) / nh
        # Equal weights: the pooled within-stratum variance, as the classical tests use.
        syy = b(y * y)
        sym = b(y * turns)
        smm = b(turns * turns)
        sse_p = syy.sum(0) - 2 * mu_p * sym.sum(0) + mu_p**2 * smm.sum(0)
        s0 = np.maximum(sse_p, 0.0) / np.maximum(nh - ddof, 1.0)
        v0_equal = s0 / mbar**2 * (1.0 / n[0] + 1.0 / n[1])
        # Unequal weights: each window's own units around the pooled mean.
        ep = np.maximum(qyy - 2 * mu_p * qym + mu_p**2 * qmm, 0.0) / sm**2
        v0_weighted = ep.sum(0) * nh / np.maximum(nh - ddof, 1.0)
        v0_h = np.where(design.uniform, v0_equal, v0_weighted)
        sse = np.maximum(qyy - 2 * mu * qym + mu**2 * qmm, 0.0)
        factor = np.where(n > 1, n / np.maximum(n - 1, 1), 1.0) if small_sample else 1.0
        own = sse / sm**2 * factor
        # A window with a single conversation in a stratum has no own variance; borrow
        # the pooled one rather than pretending it is exact.
        borrowed = np.where(design.uniform, s0 / (mbar**2 * n), ep)
        var_ah = np.where(n > 1, own, borrowed)
    w = design.wbar
    w2 = w * w
    mean0 = float(w @ mu[0]) + c
    mean1 = float(w @ mu[1]) + c
    mv0 = float(w2 @ var_ah[0])
    mv1 = float(w2 @ var_ah[1])
    var0 = float(w2 @ v0_h)
    var = mv0 + mv1
    extra = 0.0
    shift_cross = 0.0
    ci = design.cluster
    if ci is not None:
        # Influence of each conversation on the contrast, under the null (pooled means)
        # and as observed; the within-cluster cross products turn the variances into
        # cluster-robust ones (users with several conversations, users in both windows).
        ui = ci.units
        h = design.stratum[ui]
        a = design.current[ui].astype(np.int64)
        sign = np.where(design.current[ui], 1.0, -1.0) * u[ui]
        with np.errstate(divide="ignore", invalid="ignore"):
            infl0 = sign * w[h] * (y[ui] - mu_p[h] * turns[ui]) / (n[a, h] * mbar[h])
            infl = sign * w[h] * (y[ui] - mu[a, h] * turns[ui]) / sm[a, h]
        infl0, infl = np.nan_to_num(infl0), np.nan_to_num(infl)
        var0 = max(var0 + float(ci.cross(infl0)), 0.0)
        extra = float(ci.cross(infl))
        var = max(var + extra, 0.0)
        mv0 = max(mv0 + float(ci.cross(np.where(a == 0, infl, 0.0))), 0.0)
        mv1 = max(mv1 + float(ci.cross(np.where(a == 1, infl, 0.0))), 0.0)
        # Each window is off the pooled mean by its share of the change; the shares are
        # those the pooled mean gives the windows (inverse to their variances).
        p_a = np.array([mean0, mean1])
        v_a = np.array([mv0, mv1]) / np.maximum(p_a * (1.0 - p_a), 1e-12)
        share = v_a / v_a.sum() if v_a.sum() > 0 else np.array([0.5, 0.5])
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = u[ui] * w[h] * turns[ui] * share[a] / (n[a, h] * mbar[h])
        shift_cross = max(float(ci.cross(np.nan_to_num(unit))), 0.0)
    return Contrast(
        delta=mean1 - mean0,
        var0=var0,
        var=var,
        means=(mean0, mean1),
        mean_vars=(mv0, mv1),
        stratum_means=mu + c,
        cluster_var=extra,
        shift_cross=shift_cross,
    )


def _two_sided_normal(z: float) -> float:
    # scipy.special.ndtr, not stats.norm.sf: the distribution objects cost ~100 us a call.
    return float(min(1.0, 2.0 * spc.ndtr(-abs(z))))


def _z(delta: float, var0: float) -> float:
    if var0 <= 0.0 or not math.isfinite(var0):
        return 0.0
    return delta / math.sqrt(var0)


# --- random streams -------------------------------------------------------------------


def stream(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded from ``seed`` and stable string keys (not Python's salted hash)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


# --- permutations ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Permutations:
    """Random within-stratum relabellings, drawn so that swapping the windows is harmless.

    In each stratum the units are put in a canonical order (by their data, so that ties
    are interchangeable) and a random subset of positions is drawn for the *smaller*
    window of that stratum. Which window is "baseline" never enters, so swapping the
    windows gives the same draws and the same p-value.
    """

    units: tuple[NDArray[np.int64], ...]
    """Per stratum, the kept units in canonical order."""
    chosen: tuple[NDArray[np.int64], ...]
    """Per stratum, (B, k) positions (in ``units``) of the relabelled smaller group."""
    observed: tuple[NDArray[np.bool_], ...]
    """Per stratum, which units (in canonical order) form the smaller group as observed."""
    chosen_is_current: NDArray[np.bool_]
    """Per stratum, whether the smaller group is the current window."""

    def sign(self, h: int) -> float:
        """+1 when stratum ``h``'s smaller group is the current window, else -1."""
        return 1.0 if self.chosen_is_current[h] else -1.0

    def sums(
        self, h: int, data: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Sums of ``data`` over the smaller group: per permutation, observed, and in total.

        Args:
            h: Stratum.
            data: Per kept unit, a value or a row of values.

        Returns:
            ``(per permutation, observed, stratum total)``.
        """
        d = data[self.units[h]]
        pos = self.chosen[h]
        # Gathering and summing avoids a (B x n) matrix product: on a busy machine a
        # multithreaded BLAS is slower than this for the small strata permutations serve.
        if d.ndim == 1:
            perm = d[pos].sum(axis=1)
        else:
            perm = np.stack([d[:, j][pos].sum(axis=1) for j in range(d.shape[1])], axis=1)
        return perm, d[self.observed[h]].sum(0), d.sum(0)


def draw_permutations(
    design: Design,
    keys: Sequence[NDArray[np.float64]],
    b: int,
    rng: np.random.Generator,
) -> Permutations:
    """Draw ``b`` within-stratum relabellings.

    Args:
        design: Strata.
        keys: Per kept unit, the data the statistic reads (ties must be interchangeable).
        b: Number of permutations.
        rng: Random stream.

    Returns:
        The draws.
    """
    order = np.lexsort((*reversed(list(keys)), design.stratum))
    overall = _smaller_data(
        keys, np.flatnonzero(design.current), np.flatnonzero(~design.current), None
    )
    strata_sorted = design.stratum[order]
    bounds = np.searchsorted(strata_sorted, np.arange(design.h + 1))
    units: list[NDArray[np.int64]] = []
    chosen: list[NDArray[np.int64]] = []
    observed: list[NDArray[np.bool_]] = []
    is_cur = np.zeros(design.h, dtype=bool)
    for h in range(design.h):
        idx = order[bounds[h] : bounds[h + 1]]
        n0, n1 = int(design.n[0, h]), int(design.n[1, h])
        in_cur = design.current[idx]
        cur = n1 < n0
        if n0 == n1:
            # Equal sizes: pick by the data, never by position, so that swapping the
            # windows flips the sign of every stratum's contribution alike.
            cur = _smaller_data(keys, idx[in_cur], idx[~in_cur], overall)
        is_cur[h] = cur
        k = min(n0, n1)
        noise = rng.random((b, idx.size))
        units.append(idx)
        chosen.append(np.argpartition(noise, k - 1, axis=1)[:, :k].astype(np.int64))
        observed.append(in_cur == cur)
    return Permutations(tuple(units), tuple(chosen), tuple(observed), is_cur)


def _smaller_data(
    keys: Sequence[NDArray[np.float64]],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    fallback: bool | None,
) -> bool:
    """Whether units ``a`` hold the lexicographically smaller sorted data than units ``b``.

    A rule that depends on the data only, so it flips exactly when the windows are
    swapped; identical data fall back to ``fallback`` (False when None).
    """
    if a.size != b.size:
        return a.size < b.size
    for k in keys:
        sa, sb = np.sort(k[a]), np.sort(k[b])
        diff = np.flatnonzero(sa != sb)
        if diff.size:
            return bool(sa[diff[0]] < sb[diff[0]])
    return bool(fallback)


def permutation_p(observed: float, permuted: NDArray[np.float64]) -> float:
    """``(1 + #{T* >= T}) / (B + 1)``, with a relative tolerance for rounding noise."""
    tol = 1e-9 * max(abs(observed), 1e-12)
    return float((1 + np.count_nonzero(permuted >= observed - tol)) / (permuted.size + 1))


def _ratio_diff(
    ys: NDArray[np.float64] | float,
    ms: NDArray[np.float64] | float,
    yt: NDArray[np.float64] | float,
    mt: NDArray[np.float64] | float,
) -> NDArray[np.float64]:
    """Mean of the selected group minus mean of the rest (ratio means)."""
    ys_a, ms_a = np.asarray(ys, dtype=np.float64), np.asarray(ms, dtype=np.float64)
    if ys_a.ndim > ms_a.ndim:
        ms_a = ms_a[..., None]
        mt = np.asarray(mt)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = ys_a / ms_a - (yt - ys_a) / (mt - ms_a)
    return np.nan_to_num(diff)


def _linear_perm_stat(
    design: Design,
    perms: Permutations,
    total: NDArray[np.float64],
    turns: NDArray[np.float64],
) -> tuple[float, NDArray[np.float64]]:
    """|standardised difference of ratio means|, observed and under each permutation."""
    d_perm = np.zeros(perms.chosen[0].shape[0] if perms.chosen else 0)
    d_obs = 0.0
    for h in range(design.h):
        ys, yo, yt = perms.sums(h, total)
        ms, mo, mt = perms.sums(h, turns)
        wsign = perms.sign(h) * design.wbar[h]
        d_perm += wsign * _ratio_diff(ys, ms, yt, mt)
        d_obs += wsign * float(_ratio_diff(yo, mo, yt, mt))
    return abs(d_obs), np.abs(d_perm)


# --- binary ---------------------------------------------------------------------------


def binary_test(
    design: Design,
    total: NDArray[np.float64],
    turns: NDArray[np.float64],
    *,
    permutations: int,
    rng: np.random.Generator,
) -> TestResult:
    """Two-proportion test of the standardised pass rate (pooled null variance).

    With one stratum, conversation-level scores and at least :data:`SMALL_N`
    conversations per window this is the textbook pooled two-proportion z test. With
    few conversations or few expected failures (or passes) the p-value is exact:
    Boschloo's test for one stratum of conversation-level scores, within-stratum
    permutations otherwise.

    Args:
        design: Strata.
        total: Per kept unit, passing turns.
        turns: Per kept unit, scored turns.
        permutations: Permutations for small samples.
        rng: Random stream.

    Returns:
        The result (``statistic`` is z).
    """
    con = contrast(design, total, turns, ddof=0, small_sample=False)
    z = _z(con.delta, con.var0)
    n0, n1 = design.n.sum(1)
    p_pool = float(total.sum() / turns.sum()) if turns.size else 0.0
    m0 = float(turns[~design.current].sum())
    m1 = float(turns[design.current].sum())
    expected = min(m0, m1) * min(p_pool, 1.0 - p_pool)
    small = min(n0, n1) < SMALL_N or expected < 5.0
    if not small:
        return TestResult("two-proportion z", z, _two_sided_normal(z))
    why = _asymptotic_note(design)
    if why is not None:
        return TestResult("two-proportion z", z, _two_sided_normal(z), note=why)
    simple = design.h == 1 and bool(np.all(turns == 1.0))
    if simple:
        x1 = int(round(float(total[design.current].sum())))
        x0 = int(round(float(total[~design.current].sum())))
        # Rows in a canonical order (smaller window first, then fewer passes) so the
        # exact p-value cannot depend on which window is called baseline.
        rows = sorted([(int(n0), x0), (int(n1), x1)])
        table = np.array([[x, n - x] for n, x in rows]).T
        if (table.sum(axis=1) == 0).any():
            return TestResult("Boschloo exact", z, 1.0, method="exact")
        res = sps.boschloo_exact(table, alternative="two-sided")
        return TestResult("Boschloo exact", z, _clip(res.pvalue), method="exact")
    if n0 + n1 > PERMUTATION_MAX_N:
        return TestResult(
            "two-proportion z",
            z,
            _two_sided_normal(z),
            note="few expected passes or failures: the normal approximation may be rough",
        )
    perms = draw_permutations(design, (total, turns), permutations, rng)
    obs, perm = _linear_perm_stat(design, perms, total, turns)
    return TestResult(
        "two-proportion z (permutation)", z, permutation_p(obs, perm), method="permutation"
    )


# --- ordinal: Mann-Whitney under complex sampling -------------------------------------


def ridits(design: Design, value: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mid-ridit of each value in the pooled, standardised distribution of both windows.

    ``F(x-) + P(x) / 2``: with one stratum and equal weights this is ``(midrank - 1/2) / N``
    and the test below is exactly the Mann-Whitney test; with strata and weights it is
    the design-based rank test of Lumley and Scott (2013).

    Args:
        design: Strata.
        value: Per kept unit, the conversation-level value.

    Returns:
        Per kept unit, its ridit.
    """
    uniq, inv = np.unique(value, return_inverse=True)
    mass = np.bincount(inv, weights=pooled_mass(design), minlength=uniq.size)
    below = np.cumsum(mass) - mass
    return (below + mass / 2.0)[inv]


def pooled_mass(design: Design) -> NDArray[np.float64]:
    """Each kept unit's mass in the pooled, standardised distribution of both windows.

    ``wbar_h * u_i / n_h``: each stratum counts with its standardisation weight, and
    within it each unit with its sampling weight relative to its window's (equal weights:
    ``1 / n_h``). The masses sum to 1.
    """
    nh = design.n.sum(0)
    out: NDArray[np.float64] = (design.wbar / nh)[design.stratum] * design.u
    return out


def mann_whitney_test(
    design: Design,
    value: NDArray[np.float64],
    *,
    permutations: int,
    rng: np.random.Generator,
) -> tuple[TestResult, float]:
    """Design-based Mann-Whitney test; returns the result and P(current > baseline) - 1/2.

    Args:
        design: Strata.
        value: Per kept unit, the conversation-level value (mean over its turns).
        permutations: Permutations for small samples.
        rng: Random stream.

    Returns:
        ``(result, theta)``, where ``theta`` estimates ``P(X_cur > X_base) + P(=)/2 - 1/2``
        for conversations drawn from the standardised populations.
    """
    r = ridits(design, value)
    ones = np.ones_like(r)
    con = contrast(design, r, ones, ddof=1, small_sample=True)
    z = _z(con.delta, con.var0)
    n0, n1 = design.n.sum(1)
    why = _asymptotic_note(design)
    if min(n0, n1) >= SMALL_N or why is not None:
        note = "" if min(n0, n1) >= SMALL_N else (why or "")
        return TestResult("Mann-Whitney", z, _two_sided_normal(z), note=note), con.delta
    perms = draw_permutations(design, (value,), permutations, rng)
    obs, perm = _linear_perm_stat(design, perms, r, ones)
    res = TestResult(
        "Mann-Whitney (permutation)", z, permutation_p(obs, perm), method="permutation"
    )
    return res, con.delta


# --- continuous: stratified Cramér-von Mises ------------------------------------------


def _cells(
    design: Design, value: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Pooled-quantile cells: per unit its cell, and each cell's pooled standardised mass.

    Cells end at distinct values, so tied values (atoms such as zero cost) always share
    a cell; with at most :data:`CVM_CELLS` distinct values every value is its own cell
    and the statistic is the exact Cramér-von Mises statistic.
    """
    uniq, inv = np.unique(value, return_inverse=True)
    mass = np.bincount(inv, weights=pooled_mass(design), minlength=uniq.size).astype(np.float64)
    if uniq.size <= CVM_CELLS:
        return inv.astype(np.int64), mass
    before = np.cumsum(mass) - mass
    raw = np.minimum(np.floor(before * CVM_CELLS + 1e-9), CVM_CELLS - 1).astype(np.int64)
    cell_of_uniq = np.unique(raw, return_inverse=True)[1]
    cell_mass = np.bincount(cell_of_uniq, weights=mass).astype(np.float64)
    return cell_of_uniq[inv].astype(np.int64), cell_mass


def cvm_test(
    design: Design,
    value: NDArray[np.float64],
    *,
    permutations: int,
    rng: np.random.Generator,
) -> TestResult:
    """Stratified, weighted two-sample Cramér-von Mises test.

    ``T = sum_c q_c D_c**2`` with ``D_c = sum_h wbar_h (F_cur,h(c) - F_base,h(c))``, the
    difference of the standardised CDFs at the end of each pooled-quantile cell ``c`` and
    ``q_c`` the cell's pooled mass. Under the null ``D`` is asymptotically normal with a
    covariance built from the pooled within-stratum CDFs (a Brownian bridge per stratum),
    so ``T`` is a weighted sum of chi-square(1) variables whose weights are the
    eigenvalues of ``Q^1/2 C Q^1/2``; its tail is computed by a saddlepoint
    approximation. Ties (integer counts, atoms at 0 or 1) are handled exactly, because the
    covariance is that of the tied data, unlike the continuous-data tables of the
    classical test. Small samples use within-stratum permutations of ``T``.

    The reported statistic is ``T / sum_h wbar_h**2 (1/n_base,h + 1/n_cur,h)``, which for
    one stratum is the classical ``T = (n m / N) * integral (F_n - G_m)**2 dH_N``.

    Args:
        design: Strata.
        value: Per kept unit, the conversation-level value.
        permutations: Permutations for small samples.
        rng: Random stream.

    Returns:
        The result.
    """
    cell, q = _cells(design, value)
    k = q.size
    scale = float(design.wbar**2 @ (1.0 / design.n[0] + 1.0 / design.n[1]))
    if k < 2:
        return TestResult("Cramér-von Mises", 0.0, 1.0, note="a single distinct value")
    h = design.h
    g = (design.stratum * 2 + design.current.astype(np.int64)) * k + cell
    uw = design.u
    counts = np.bincount(g, weights=uw, minlength=h * 2 * k).reshape(h, 2, k)
    cum = np.cumsum(counts, axis=2)[:, :, : k - 1]
    n = design.n.T  # (h, 2)
    f_win = cum / n[:, :, None]
    f_pool = cum.sum(axis=1) / n.sum(1)[:, None]
    d = design.wbar @ (f_win[:, 1] - f_win[:, 0])
    qk = q[: k - 1]
    t_obs = float(qk @ d**2)
    nh = n.sum(1)
    small = nh / np.maximum(nh - 1.0, 1.0)
    coef = design.wbar**2 * (1.0 / n[:, 0] + 1.0 / n[:, 1]) * small
    bridge = (
        np.minimum(f_pool[:, :, None], f_pool[:, None, :]) - f_pool[:, :, None] * f_pool[:, None, :]
    )
    cov = np.tensordot(np.where(design.uniform, coef, 0.0), bridge, axes=1)
    for hw in np.flatnonzero(~design.uniform).tolist():
        # Unequal weights: sum_i u_i^2 (1[x_i <= c] - F(c)) (1[x_i <= c'] - F(c')) per
        # window, from cumulative sums of the squared weights.
        fp = f_pool[hw]
        for a in (0, 1):
            sel = (design.stratum == hw) & (design.current == bool(a))
            g2 = np.cumsum(np.bincount(cell[sel], weights=uw[sel] ** 2, minlength=k))[: k - 1]
            s2 = float((uw[sel] ** 2).sum())
            m = (
                g2[np.minimum.outer(np.arange(k - 1), np.arange(k - 1))]
                - np.outer(fp, g2)
                - np.outer(g2, fp)
                + s2 * np.outer(fp, fp)
            )
            cov += design.wbar[hw] ** 2 * small[hw] * m / n[hw, a] ** 2
    ci = design.cluster
    if ci is not None:
        # Influence of each conversation on D under the null: its CDF indicator minus
        # its stratum's pooled CDF, scaled like a stratum mean.
        ui = ci.units
        hs = design.stratum[ui]
        a_i = design.current[ui].astype(np.int64)
        scale_i = (
            np.where(design.current[ui], 1.0, -1.0) * uw[ui] * design.wbar[hs] / design.n[a_i, hs]
        )
        ind = (cell[ui][:, None] <= np.arange(k - 1)[None, :]).astype(np.float64)
        cov = cov + ci.cross(scale_i[:, None] * (ind - f_pool[hs]))
    sq = np.sqrt(qk)
    lam = np.linalg.eigvalsh(sq[:, None] * cov * sq[None, :])
    stat = t_obs / scale if scale > 0 else 0.0
    n0, n1 = design.n.sum(1)
    why = _asymptotic_note(design)
    if min(n0, n1) >= SMALL_N or why is not None:
        note = "" if min(n0, n1) >= SMALL_N else (why or "")
        return TestResult("Cramér-von Mises", stat, quadratic_form_sf(t_obs, lam), note=note)
    perms = draw_permutations(design, (value,), permutations, rng)
    d_perm = np.zeros((permutations, k - 1))
    rows = np.arange(permutations)[:, None] * k
    for hh in range(h):
        codes = cell[perms.units[hh]]
        pos = perms.chosen[hh]
        sel = np.bincount((rows + codes[pos]).ravel(), minlength=permutations * k)
        k_sel = float(pos.shape[1])
        cum_sel = np.cumsum(sel.reshape(permutations, k), axis=1)[:, : k - 1]
        cum_tot = np.cumsum(np.bincount(codes, minlength=k))[: k - 1]
        f_sel = cum_sel / k_sel
        f_oth = (cum_tot - cum_sel) / (nh[hh] - k_sel)
        d_perm += perms.sign(hh) * design.wbar[hh] * (f_sel - f_oth)
    t_perm = (d_perm**2) @ qk
    return TestResult(
        "Cramér-von Mises (permutation)",
        stat,
        permutation_p(t_obs, t_perm),
        method="permutation",
    )


def quadratic_form_sf(x: float, lam: ArrayLike) -> float:
    """``P(sum_j lam_j Z_j**2 > x)`` for independent standard normal ``Z_j``.

    Uses the Lugannani-Rice saddlepoint approximation (Kuonen 1999, Biometrika 86:929),
    whose relative error in the upper tail is typically well under 1%; a single weight
    is the exact chi-square(1) tail.

    Args:
        x: The observed value.
        lam: Non-negative weights.

    Returns:
        The tail probability, in [0, 1].
    """
    lam = np.asarray(lam, dtype=np.float64).ravel()
    if lam.size == 0 or float(lam.max()) <= 0.0:
        return 1.0 if x <= 0 else 0.0
    top = float(lam.max())
    lam = lam[lam > top * 1e-12] / top
    x = x / top
    if x <= 0.0:
        return 1.0
    if lam.size == 1:
        return _clip(float(spc.chdtrc(1, x / lam[0])))
    mean = float(lam.sum())
    k2 = float(2.0 * (lam**2).sum())
    k3 = float(8.0 * (lam**3).sum())

    def kp(s: float) -> float:
        return float((lam / (1.0 - 2.0 * lam * s)).sum()) - x

    if abs(x - mean) < 1e-6 * mean:
        # At the mean the saddlepoint is 0 and the formula is 0/0; use its limit.
        return _clip(0.5 - k3 / (6.0 * math.sqrt(2.0 * math.pi) * k2**1.5))
    # Brackets for the saddlepoint equation K'(s) = x (weights normalised to max 1, so
    # the pole is at s = 1/2). Above the mean, the largest weight alone reaches x at
    # s = (1 - 1/x) / 2; below it, K'(s) < J / (2 |s|) gives K'(-J / (2x)) < x.
    if x > mean:
        lo, hi = 0.0, 0.5 * (1.0 - 1.0 / x)
    else:
        lo, hi = -lam.size / (2.0 * x), 0.0
    s = float(spo.brentq(kp, lo, hi, xtol=1e-300, rtol=1e-14, maxiter=500))
    kk = float(-0.5 * np.log1p(-2.0 * lam * s).sum())
    k2s = float((2.0 * lam**2 / (1.0 - 2.0 * lam * s) ** 2).sum())
    w = math.copysign(math.sqrt(max(2.0 * (s * x - kk), 0.0)), s)
    v = s * math.sqrt(k2s)
    if abs(w) < 1e-8 or abs(v) < 1e-8:
        return _clip(0.5 - k3 / (6.0 * math.sqrt(2.0 * math.pi) * k2**1.5))
    pdf = math.exp(-0.5 * w * w) / math.sqrt(2.0 * math.pi)
    p = float(spc.ndtr(-w)) + pdf * (1.0 / v - 1.0 / w)
    return _clip(p)


# --- categorical: design-based chi-square ---------------------------------------------


@dataclass(frozen=True)
class ShareContrast:
    """Standardised differences of category shares, with their covariances."""

    delta: NDArray[np.float64]
    """Per category, current minus baseline share."""
    cov0: NDArray[np.float64]
    """Null covariance of ``delta`` (pooled within-stratum)."""
    var: NDArray[np.float64]
    """Per category, the variance of ``delta`` from each window's own variance."""
    shares: NDArray[np.float64]
    """Standardised shares per window, shape (2, k)."""
    share_vars: NDArray[np.float64]
    """Their variances, shape (2, k)."""


def share_contrast(
    design: Design, counts: NDArray[np.float64], turns: NDArray[np.float64]
) -> ShareContrast:
    """Standardised category-share differences and their covariance.

    Args:
        design: Strata.
        counts: Per kept unit, rows per category, shape (n, k).
        turns: Per kept unit, its rows.

    Returns:
        The contrast.
    """
    k = counts.shape[1]
    h = design.h
    order = np.argsort(design.stratum, kind="stable")
    bounds = np.searchsorted(design.stratum[order], np.arange(h + 1))
    delta = np.zeros(k)
    cov0 = np.zeros((k, k))
    var = np.zeros(k)
    shares = np.zeros((2, k))
    share_vars = np.zeros((2, k))
    uw = design.u
    for s in range(h):
        idx = order[bounds[s] : bounds[s + 1]]
        uu = uw[idx][:, None]
        y = counts[idx]
        m = turns[idx]
        cur = design.current[idx]
        mu_p = (uu * y).sum(0) / (uu[:, 0] * m).sum()
        e = y - m[:, None] * mu_p[None, :]
        nh = idx.size
        mbar = (uu[:, 0] * m).sum() / nh
        s0 = e.T @ e / nh
        n0, n1 = design.n[0, s], design.n[1, s]
        w = design.wbar[s]
        if design.uniform[s]:
            cov0 += w * w * s0 * (1.0 / n0 + 1.0 / n1) / mbar**2
        means = []
        for a, mask in ((0, ~cur), (1, cur)):
            ya, ma, ua = y[mask], m[mask], uu[mask]
            den = (ua[:, 0] * ma).sum()
            mu = (ua * ya).sum(0) / den
            ea = ua * (ya - ma[:, None] * mu[None, :])
            na = ya.shape[0]
            if not design.uniform[s]:
                # Unequal weights: the window's own units around the pooled shares.
                ep = ua * e[mask]
                cov0 += w * w * (ep.T @ ep) / den**2
            va = (ea * ea).sum(0) / den**2
            if na > 1:
                va = va * na / (na - 1)
            else:
                va = np.diag(s0) / (mbar**2 * na)
            shares[a] += w * mu
            share_vars[a] += w * w * va
            means.append(mu)
        delta += w * (means[1] - means[0])
    var = share_vars.sum(0)
    ci = design.cluster
    if ci is not None:
        win_all = design.current.astype(np.int64)
        ysum = np.zeros((2, h, k))
        np.add.at(ysum, (win_all, design.stratum), uw[:, None] * counts)
        msum = design.bincount(uw * turns)
        mu_a = ysum / msum[:, :, None]
        mu_pool = ysum.sum(0) / msum.sum(0)[:, None]
        mbar_h = msum.sum(0) / design.n.sum(0)
        ui = ci.units
        hs = design.stratum[ui]
        win = win_all[ui]
        sign = np.where(design.current[ui], 1.0, -1.0) * uw[ui]
        cu, tu = counts[ui], turns[ui]
        infl0 = (sign * design.wbar[hs] / (design.n[win, hs] * mbar_h[hs]))[:, None] * (
            cu - tu[:, None] * mu_pool[hs]
        )
        infl = (sign * design.wbar[hs] / msum[win, hs])[:, None] * (
            cu - tu[:, None] * mu_a[win, hs]
        )
        cov0 = cov0 + ci.cross(infl0)
        var = np.maximum(var + np.diag(ci.cross(infl)), 0.0)
        for w_a in (0, 1):
            own = np.where((win == w_a)[:, None], infl, 0.0)
            share_vars[w_a] = np.maximum(share_vars[w_a] + np.diag(ci.cross(own)), 0.0)
    return ShareContrast(delta, cov0, var, shares, share_vars)


def _wald(delta: NDArray[np.float64], cov: NDArray[np.float64]) -> tuple[float, int]:
    evals, evecs = np.linalg.eigh(cov)
    tol = max(float(evals.max(initial=0.0)), 0.0) * 1e-10
    keep = evals > tol
    if not keep.any():
        return 0.0, 0
    proj = evecs[:, keep].T @ delta
    return float((proj**2 / evals[keep]).sum()), int(keep.sum())


def chi2_test(
    design: Design,
    counts: NDArray[np.float64],
    turns: NDArray[np.float64],
    *,
    permutations: int,
    rng: np.random.Generator,
    label: str = "chi-square",
    permute: bool = True,
) -> tuple[TestResult, ShareContrast]:
    """Design-based chi-square test of equal category shares.

    The Wald statistic ``D' V0^+ D`` of the standardised share differences with their
    pooled null covariance. For one stratum of conversation-level labels with equal
    weights it equals Pearson's chi-square of the 2 x k table (``chi2_contingency``
    without continuity correction), a genuine two-sample test, not goodness-of-fit
    against the baseline. When an expected count is below 5 the p-value comes from
    within-stratum permutations, or, for large windows, categories with fewer than 5
    expected rows are merged into one.

    Args:
        design: Strata.
        counts: Per kept unit, rows per category, shape (n, k).
        turns: Per kept unit, its rows.
        permutations: Permutations for sparse tables.
        rng: Random stream.
        label: Test name for the report.
        permute: Whether sparse tables may use permutations (secondary tests merge
            rare categories instead, to stay cheap).

    Returns:
        ``(result, share contrast)``; the contrast is of the unmerged categories.
    """
    sc = share_contrast(design, counts, turns)
    m_small = min(float(turns[~design.current].sum()), float(turns[design.current].sum()))
    pooled = counts.sum(0) / turns.sum()
    expected = pooled * m_small
    used = expected > 0
    sparse = bool((expected[used] < 5.0).any())
    n_total = int(design.n.sum())
    if not sparse:
        x2, df = _wald(sc.delta, sc.cov0)
        return TestResult(label, x2, _chi2_sf(x2, df), df=float(df)), sc
    if permute and n_total <= PERMUTATION_MAX_N and _asymptotic_note(design) is None:
        x2, df = _wald(sc.delta, sc.cov0)
        pinv = np.linalg.pinv(sc.cov0, rcond=1e-10, hermitian=True)
        perms = draw_permutations(design, (*counts.T, turns), permutations, rng)
        d_perm = np.zeros((permutations, counts.shape[1]))
        for hh in range(design.h):
            ys, _, yt = perms.sums(hh, counts)
            ms, _, mt = perms.sums(hh, turns)
            d_perm += perms.sign(hh) * design.wbar[hh] * _ratio_diff(ys, ms, yt, mt)
        t_perm = np.einsum("bi,ij,bj->b", d_perm, pinv, d_perm)
        x2_obs = float(sc.delta @ pinv @ sc.delta)
        res = TestResult(
            f"{label} (permutation)",
            x2,
            permutation_p(x2_obs, t_perm),
            method="permutation",
            df=float(df),
        )
        return res, sc
    rare = used & (expected < 5.0)
    merged = np.concatenate([counts[:, ~rare], counts[:, rare].sum(1, keepdims=True)], axis=1)
    merged = merged[:, merged.sum(0) > 0]
    msc = share_contrast(design, merged, turns)
    x2, df = _wald(msc.delta, msc.cov0)
    note = f"{int(rare.sum())} rare categories merged (expected count < 5)"
    return TestResult(label, x2, _chi2_sf(x2, df), df=float(df), note=note), sc


def _chi2_sf(x2: float, df: int) -> float:
    if df == 0:
        return 1.0
    return _clip(float(spc.chdtrc(df, x2)))


# --- positive continuous data: Welch t on logs ----------------------------------------


def welch_log_test(design: Design, value: NDArray[np.float64]) -> tuple[TestResult, float]:
    """Welch t test on log values (positive data only): the ratio of geometric means.

    The t statistic uses each window's own variance; its degrees of freedom are the
    Welch-Satterthwaite value over windows and strata, so one stratum reproduces
    ``ttest_ind(log x, log y, equal_var=False)``.

    Args:
        design: Strata.
        value: Per kept unit, a positive conversation-level value.

    Returns:
        ``(result, ratio)``: the ratio of standardised geometric means, current over
        baseline.
    """
    y = np.log(value)
    con = contrast(design, y, np.ones_like(y), ddof=1, small_sample=True)
    n = design.n
    comps: list[float] = []
    dfs: list[float] = []
    for a, mask in ((0, ~design.current), (1, design.current)):
        st, ya, ua = design.stratum[mask], y[mask], design.u[mask]
        na = n[a]
        mean = np.bincount(st, weights=ua * ya, minlength=design.h) / np.maximum(na, 1.0)
        # sum_i u_i^2 (y_i - mean)^2 / (n (n - 1)): s^2 / n with equal weights.
        dev = np.bincount(st, weights=(ua * (ya - mean[st])) ** 2, minlength=design.h)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2n = dev / (na * (na - 1))
        comp = design.wbar**2 * np.nan_to_num(np.maximum(s2n, 0.0))
        comps.extend(comp.tolist())
        dfs.extend((na - 1).tolist())
    comp_a = np.asarray(comps)
    df_a = np.asarray(dfs)
    tot = float(comp_a.sum()) + con.cluster_var
    ratio = math.exp(con.delta)
    if tot <= 0:
        return TestResult("Welch t on logs", 0.0, 1.0), ratio
    ok = df_a > 0
    df = tot**2 / float((comp_a[ok] ** 2 / df_a[ok]).sum())
    t = con.delta / math.sqrt(tot)
    p = _clip(float(2.0 * sps.t.sf(abs(t), df)))
    return TestResult("Welch t on logs", t, p, df=df), ratio


def _clip(p: float) -> float:
    if not math.isfinite(p):
        return 1.0
    return min(1.0, max(0.0, p))
