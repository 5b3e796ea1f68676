"""Always-valid p-values for daily looks (mSPRT, Johari, Pekelis and Walsh).

Looking at a growing window every day and alarming at the first p < 0.05 inflates the
false-alarm rate: seven daily looks at alpha = 0.05 give about 16%. The mixture
sequential probability ratio test fixes this. With the effect estimate ``d`` at a look,
its variance ``V`` and a normal mixing distribution N(0, tau**2) over the true effect,

    Lambda = sqrt(V / (V + tau**2)) * exp(tau**2 d**2 / (2 V (V + tau**2))),

and the always-valid p-value is the running minimum of ``1 / Lambda``. Rejecting when it
drops below alpha keeps the chance of *any* false alarm, over any number of looks, at or
below alpha. ``tau`` should be of the order of the effects worth catching; the minimum
meaningful effect is a sensible default.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def msprt_log_lambda(effect: ArrayLike, variance: ArrayLike, tau: float) -> NDArray[np.float64]:
    """Log of the mixture likelihood ratio at each look.

    Args:
        effect: Effect estimates (current minus baseline), any shape.
        variance: Their variances, broadcastable to ``effect``.
        tau: Standard deviation of the normal mixing distribution, > 0.

    Returns:
        ``log Lambda``, elementwise.

    Raises:
        ValueError: When ``tau`` is not positive or a variance is not positive.
    """
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    d = np.asarray(effect, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    if np.any(v <= 0):
        raise ValueError("variances must be positive")
    t2 = tau * tau
    return 0.5 * np.log(v / (v + t2)) + t2 * d * d / (2.0 * v * (v + t2))


def always_valid_p_values(
    effects: ArrayLike, variances: ArrayLike, tau: float
) -> NDArray[np.float64]:
    """Always-valid p-values over a sequence of looks (the last axis is time).

    Args:
        effects: Effect estimates at each look, on cumulative data; shape (..., looks).
        variances: Their variances, same shape.
        tau: Standard deviation of the normal mixing distribution.

    Returns:
        ``min(1, min over looks so far of 1 / Lambda)``, same shape as ``effects``.
    """
    log_lam = msprt_log_lambda(effects, variances, tau)
    p = np.exp(-np.maximum(log_lam, 0.0))
    return np.minimum.accumulate(p, axis=-1)
