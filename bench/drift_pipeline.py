"""Drift calibrated end to end through convsim's own pipeline (docs/statistics.md).

Each replication is two weeks of synthetic production traffic with a known truth
(``convsim.testing.traffic_weeks``: users with several conversations, user-level ICC
0.3, cohorts, escalations), sampled by the online sampler under a policy whose rates
differ between the weeks, graded (deterministic checks on every conversation, a judge
on the sample and on the anchor set), written to a SQLite store, read back with
``Window.from_scores`` and compared with ``compare_windows`` at its defaults, exactly as
``convsim online`` and ``convsim drift`` do.

Usage:
    python bench/drift_pipeline.py null [--reps 4000] [--workers 2] [--no-user-ids] [--start 0]
    python bench/drift_pipeline.py power [--reps 1000]
    python bench/drift_pipeline.py mix [--reps 1000]
    python bench/drift_pipeline.py judge [--reps 1000] [--specificity 0.7 --tone-bias 0]

Null scenarios rotate over the replications: ``rate`` (routine traffic judged at 15%
then 12%), ``budget`` (the same rates, a judging cap that binds in week 2 only, so
every rate is scaled down) and ``new-rule`` (week 2's policy adds a rule judging
banking at 50%). A rule judges travel at 30% throughout; escalations are always judged
(the default trigger, at 100%).

Goals (issue "Drift on real sampled windows"):
- null: every primary test's false-alarm rate within [0.041, 0.059] (the 99% band for
  R = 4000) and the report-level family-wise rate at most alpha, with user ids;
  without them, the rates the report's caveat warns about;
- power: at least 0.8 at the MDE the report states;
- mix: a mix-only shift gives no within-cohort alarm beyond alpha; a Simpson case
  (aggregate up, every cohort down) alarms within cohorts at least 0.8 of the time;
- judge: a judge that changed without its metadata changing is attributed to the judge
  at least 0.95 of the time through the anchor set, and product alarms on its scores
  are suppressed.
"""

from __future__ import annotations

import os

# One BLAS thread per process: many tiny linear-algebra calls, two busy cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

from convsim.stats.drift import DriftReport, Window, compare_windows
from convsim.testing import (
    NULL_SCENARIOS,
    JudgeProfile,
    TrafficConfig,
    WeekPair,
    graded_windows,
    null_pair,
    study_policy,
    true_effect,
)

ALPHA = 0.05
BY = ("language", "vertical")
PRIMARY = ("check.resolved", "meta.latency_ms", "rubric.goal", "rubric.policy", "rubric.tone")
USER_IDS = [True]
"""Whether the traffic carries user ids (a list so --no-user-ids can set it before fork)."""


def compare(b: Window, c: Window, **kw: Any) -> DriftReport:
    """The comparison `convsim drift --by language,vertical` runs (defaults otherwise)."""
    return compare_windows(b, c, by=BY, **kw)


def _in_temp(fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        return fn(Path(d) / "store.db")


def _map(fn: Callable[[int], dict[str, Any]], seeds: Iterable[int], workers: int) -> list[Any]:
    if workers <= 1:
        return [fn(s) for s in seeds]
    with mp.get_context("fork").Pool(workers) as pool:
        return list(pool.imap(fn, seeds, chunksize=4))


def band99(p: float, r: int) -> tuple[float, float]:
    """99% binomial acceptance band for a rate p estimated from r replications."""
    se = math.sqrt(p * (1 - p) / r)
    return p - 2.576 * se, p + 2.576 * se


# --- null -----------------------------------------------------------------------------


def null_one(i: int) -> dict[str, Any]:
    pair = null_pair(i, user_ids=USER_IDS[0])

    def go(path: Path) -> dict[str, Any]:
        b, c = graded_windows(pair, 500_000 + i, path)
        rep = compare(b, c)
        out: dict[str, Any] = {"scenario": NULL_SCENARIOS[i % 3], "primary": {}, "drill": {}}
        for f in rep.findings:
            if f.kind == "score" and f.p_value is not None:
                rej = f.p_value <= ALPHA
                if f.family == "primary":
                    out["primary"][f.metric] = rej
                else:
                    out["drill"].setdefault(f.metric, []).append(rej)
            elif f.kind == "mix":
                out["mix"] = bool(f.p_value is not None and f.p_value <= ALPHA)
            elif f.kind == "judge":
                out.setdefault("judge", {})[f.metric] = bool(f.alarm)
            elif f.kind == "insufficient" and f.cohort == "all":
                out.setdefault("insufficient", []).append(f.metric)
        out["fwer"] = any(f.significant for f in rep.findings if f.family == "primary")
        out["alarm"] = any(f.alarm for f in rep.findings if f.kind in ("score", "mix"))
        out["bh_any"] = any(f.significant for f in rep.findings if f.family == "drilldown")
        out["caveat"] = bool(rep.caveats)
        return out

    return _in_temp(go)


def run_null(reps: int, workers: int, start: int = 0) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = _map(null_one, range(start, start + reps), workers)
    secs = time.perf_counter() - t0
    lo, hi = band99(ALPHA, reps)
    rows: list[dict[str, Any]] = []
    for name in PRIMARY:
        xs = [r["primary"][name] for r in res if name in r["primary"]]
        by_scen = {
            s: float(np.mean([r["primary"][name] for r in res if r["scenario"] == s]))
            for s in NULL_SCENARIOS
        }
        drill = [x for r in res for x in r["drill"].get(name, [])]
        rate = float(np.mean(xs))
        rows.append(
            {
                "metric": name,
                "n": len(xs),
                "fpr": rate,
                "ok": lo <= rate <= hi,
                "by_scenario": by_scen,
                "drill_fpr": float(np.mean(drill)),
                "drill_n": len(drill),
            }
        )
    judge = [x for r in res for x in r.get("judge", {}).values()]
    summary = {
        "reps": reps,
        "seeds": [start, start + reps],
        "user_ids": USER_IDS[0],
        "band": [lo, hi],
        "rows": rows,
        "fwer": float(np.mean([r["fwer"] for r in res])),
        "alarm": float(np.mean([r["alarm"] for r in res])),
        "bh_any": float(np.mean([r["bh_any"] for r in res])),
        "mix": float(np.mean([r.get("mix", False) for r in res])),
        "judge_alarm": float(np.mean(judge)) if judge else None,
        "caveat": float(np.mean([r["caveat"] for r in res])),
        "insufficient": sum(len(r.get("insufficient", [])) for r in res),
        "seconds": secs,
    }
    print(
        f"\nnull, through the pipeline: R = {reps}, user ids {'on' if USER_IDS[0] else 'off'}, "
        f"99% band [{lo:.3f}, {hi:.3f}], {secs:.0f} s"
    )
    print("| score | primary FPR | in band | rate / budget / new rule | drill-down FPR |")
    print("|---|---:|---|---|---:|")
    for r in rows:
        scen: dict[str, float] = r["by_scenario"]
        per = " / ".join(f"{scen[k]:.3f}" for k in NULL_SCENARIOS)
        print(
            f"| {r['metric']} | {r['fpr']:.4f} | {'yes' if r['ok'] else 'NO'} | {per} | "
            f"{r['drill_fpr']:.4f} (n={r['drill_n']}) |"
        )
    print(
        f"family-wise (Holm, {len(rows)} primary tests): {summary['fwer']:.4f}; any alarm "
        f"(score or mix): {summary['alarm']:.4f}; any BH discovery: {summary['bh_any']:.4f}; "
        f"mix test: {summary['mix']:.4f}; judge anchor alarms (per score): "
        f"{summary['judge_alarm']}; reports with the independence caveat: "
        f"{summary['caveat']:.3f}; all-cohort findings with insufficient data: "
        f"{summary['insufficient']}"
    )
    return summary


# --- power at the stated MDE ----------------------------------------------------------

PERFECT = JudgeProfile(sensitivity=1.0, specificity=1.0, flip=0.0)


def _power_pair(shift: float) -> WeekPair:
    cfg = TrafficConfig(shifts={"rubric.goal": shift})
    return WeekPair(cfg, (study_policy(0.15), study_policy(0.12)), judges=(PERFECT, PERFECT))


def mde_one(i: int) -> dict[str, Any]:
    def go(path: Path) -> dict[str, Any]:
        b, c = graded_windows(_power_pair(0.0), 600_000 + i, path)
        f = next(f for f in compare(b, c).findings if f.metric == "rubric.goal")
        return {"mde": f.mde}

    return _in_temp(go)


def power_one(args: tuple[int, float]) -> dict[str, Any]:
    i, shift = args

    def go(path: Path) -> dict[str, Any]:
        b, c = graded_windows(_power_pair(shift), 700_000 + i, path)
        f = next(f for f in compare(b, c).findings if f.metric == "rubric.goal")
        return {"sig": bool(f.significant), "effect": f.effect}

    return _in_temp(go)


def run_power(reps: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    mdes = [r["mde"] for r in _map(mde_one, range(200), workers)]
    stated = float(np.median(mdes))
    # The shift whose true population change (standardised like the tests) is the MDE;
    # the change is a drop, the harder direction for a pass rate near 80%.
    shift = float(
        optimize.brentq(
            lambda s: true_effect(_power_pair(s).cfg, "rubric.goal") + stated, -2.0, 0.0
        )
    )
    with mp.get_context("fork").Pool(workers) if workers > 1 else _Serial() as pool:
        res = list(pool.imap(power_one, [(i, shift) for i in range(reps)], chunksize=4))
    secs = time.perf_counter() - t0
    power = float(np.mean([r["sig"] for r in res]))
    mean_eff = float(np.mean([r["effect"] for r in res]))
    print(
        f"\npower at the stated MDE (rubric.goal, judged on a weighted sample, clustered by "
        f"user): stated MDE {100 * stated:.2f} points (median of 200 null reports), latent "
        f"shift {shift:.4f}, true change {-100 * stated:.2f} points, mean estimate "
        f"{100 * mean_eff:.2f} points; power {power:.3f} over R = {reps} ({secs:.0f} s)"
    )
    return {"mde": stated, "shift": shift, "power": power, "reps": reps, "seconds": secs}


class _Serial:
    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *a: object) -> None:
        return None

    def imap(self, fn: Callable[[Any], Any], it: Iterable[Any], chunksize: int = 1) -> Any:
        return map(fn, it)


# --- mix and Simpson ------------------------------------------------------------------


def _mix_pair(kind: str) -> WeekPair:
    base = TrafficConfig(cell_scale=2.5)
    effects = base.cell_effects("goal")
    order = np.argsort(effects)
    ramp = np.linspace(1.0, 5.0, base.cells)
    hard_common = np.empty(base.cells)
    hard_common[order] = ramp[::-1]
    easy_common = np.empty(base.cells)
    easy_common[order] = ramp
    mix = (tuple(hard_common), tuple(easy_common))
    shifts = {"rubric.goal": -0.6} if kind == "simpson" else {}
    cfg = dataclasses.replace(base, mix=mix, shifts=shifts, population=(4000, 4000))
    return WeekPair(cfg, (study_policy(0.15), study_policy(0.15)), judges=(PERFECT, PERFECT))


def mix_one(args: tuple[int, str]) -> dict[str, Any]:
    i, kind = args

    def go(path: Path) -> dict[str, Any]:
        b, c = graded_windows(_mix_pair(kind), 800_000 + i, path)
        rep = compare(b, c, min_effects={"rubric.goal": 0.02})
        f = next(f for f in rep.findings if f.metric == "rubric.goal" and f.cohort == "all")
        mix = next(f for f in rep.findings if f.kind == "mix")
        d = f.decomposition
        return {
            "within_sig": bool(f.significant),
            "within_alarm": bool(f.alarm and (f.effect or 0) < 0),
            "mix_alarm": bool(mix.alarm),
            "total": None if d is None else d.total,
            "within": f.effect,
        }

    return _in_temp(go)


def run_mix(reps: int, workers: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("mix-only", "simpson"):
        t0 = time.perf_counter()
        args = [(i, kind) for i in range(reps)]
        with mp.get_context("fork").Pool(workers) if workers > 1 else _Serial() as pool:
            res = list(pool.imap(mix_one, args, chunksize=4))
        secs = time.perf_counter() - t0
        row = {
            "within_significant": float(np.mean([r["within_sig"] for r in res])),
            "within_alarm": float(np.mean([r["within_alarm"] for r in res])),
            "mix_alarm": float(np.mean([r["mix_alarm"] for r in res])),
            "mean_total": float(np.mean([r["total"] for r in res])),
            "mean_within": float(np.mean([r["within"] for r in res])),
            "aggregate_up": float(np.mean([r["total"] > 0 for r in res])),
            "seconds": secs,
        }
        out[kind] = row
        print(
            f"\n{kind}: R = {reps}, within significant {row['within_significant']:.3f}, "
            f"within alarm (a drop) {row['within_alarm']:.3f}, mix alarm {row['mix_alarm']:.3f}, "
            f"mean total {100 * row['mean_total']:+.1f} pts, mean within "
            f"{100 * row['mean_within']:+.1f} pts, aggregate up in {row['aggregate_up']:.3f} "
            f"({secs:.0f} s)"
        )
    return out


# --- judge swap -----------------------------------------------------------------------

SWAPPED = JudgeProfile(specificity=0.4, tone_bias=1.0)
"""A judge that passes most failing conversations (specificity 0.9 -> 0.4) and reads tone
a level higher, under the same model name and prompt hash."""


JUDGE_PROFILE = [SWAPPED]
"""Week 2's judge in the judge study (a list so --specificity can set it before fork)."""


def judge_one(i: int) -> dict[str, Any]:
    pair = WeekPair(
        TrafficConfig(),
        (study_policy(0.15), study_policy(0.12)),
        judges=(JudgeProfile(), JUDGE_PROFILE[0]),
    )

    def go(path: Path) -> dict[str, Any]:
        b, c = graded_windows(pair, 900_000 + i, path)
        rep = compare(b, c)
        blind = compare(dataclasses.replace(b, anchors=None), dataclasses.replace(c, anchors=None))
        out: dict[str, Any] = {}
        for name in ("rubric.goal", "rubric.policy", "rubric.tone"):
            judge = next((f for f in rep.findings if f.kind == "judge" and f.metric == name), None)
            out[name] = {
                "attributed": judge is not None and judge.judge_status == "judge drift",
                "product_alarms": sum(
                    f.alarm for f in rep.findings if f.kind == "score" and f.metric == name
                ),
                "blind_alarm": any(
                    f.alarm for f in blind.findings if f.kind == "score" and f.metric == name
                ),
            }
        out["other_alarms"] = sum(
            f.alarm for f in rep.findings if f.kind == "score" and not f.metric.startswith("rubric")
        )
        return out

    return _in_temp(go)


def run_judge(reps: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = _map(judge_one, range(reps), workers)
    secs = time.perf_counter() - t0
    out: dict[str, Any] = {"reps": reps, "seconds": secs}
    print(
        f"\njudge swap with unchanged metadata (specificity 0.90 -> "
        f"{JUDGE_PROFILE[0].specificity:.2f}, tone read {JUDGE_PROFILE[0].tone_bias:+.1f} "
        f"latent), anchor set of 300: R = {reps} ({secs:.0f} s)"
    )
    print("| score | attributed to the judge | product alarms after | alarmed without anchors |")
    print("|---|---:|---:|---:|")
    for name in ("rubric.goal", "rubric.policy", "rubric.tone"):
        att = float(np.mean([r[name]["attributed"] for r in res]))
        left = int(sum(r[name]["product_alarms"] for r in res))
        blind = float(np.mean([r[name]["blind_alarm"] for r in res]))
        out[name] = {"attributed": att, "product_alarms": left, "blind_alarm": blind}
        print(f"| {name} | {att:.3f} | {left} | {blind:.3f} |")
    other = int(sum(r["other_alarms"] for r in res))
    out["other_alarms"] = other
    print(f"alarms on the scores the judge does not make (checks, latency): {other}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("study", choices=("null", "power", "mix", "judge"))
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-user-ids", action="store_true")
    ap.add_argument(
        "--start",
        type=int,
        default=0,
        help="null study: first replication's seed, so a long study can run in parts "
        "(the rates of parts with disjoint seeds pool by their counts)",
    )
    ap.add_argument(
        "--specificity",
        type=float,
        default=None,
        help="judge study: week 2's judge specificity (default 0.4, from 0.9)",
    )
    ap.add_argument(
        "--tone-bias", type=float, default=None, help="judge study: week 2's tone shift"
    )
    ap.add_argument("--json", metavar="FILE", help="Also write the results as JSON.")
    args = ap.parse_args(argv)
    USER_IDS[0] = not args.no_user_ids
    if args.specificity is not None or args.tone_bias is not None:
        JUDGE_PROFILE[0] = JudgeProfile(
            specificity=SWAPPED.specificity if args.specificity is None else args.specificity,
            tone_bias=SWAPPED.tone_bias if args.tone_bias is None else args.tone_bias,
        )
    if args.study == "null":
        out = run_null(args.reps or 4000, args.workers, args.start)
    elif args.study == "power":
        out = run_power(args.reps or 1000, args.workers)
    elif args.study == "mix":
        out = run_mix(args.reps or 1000, args.workers)
    else:
        out = run_judge(args.reps or 1000, args.workers)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
