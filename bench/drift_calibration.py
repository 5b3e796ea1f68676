"""Calibration of the drift engine by simulation (docs/statistics.md, drift section).

Usage:
    python bench/drift_calibration.py g1 [--reps 4000] [--workers 2]
    python bench/drift_calibration.py g1 --no-user-ids [--user-share 0]
    python bench/drift_calibration.py g1 --current-rate 0.12   # the rate changed
    python bench/drift_calibration.py g2 [--reps 1000]
    python bench/drift_calibration.py g3 [--reps 1000]
    python bench/drift_calibration.py perf [--conversations 250000]
    python bench/drift_calibration.py all            # everything, default sizes

Every replication is seeded (seed = offset + replication index), so a run is exactly
reproducible. The simulated windows carry their user ids, so G1-G3 compare them at
``compare_windows``' default, clustered by user (--no-user-ids drops the ids).
The generator is convsim.stats.drift._simulate: users (Zipf) ->
conversations (logit-normal intercepts, latent ICC 0.3) -> 10 scored turns; cohorts
language x vertical; escalated conversations sampled at 100%, routine ones at 15%;
unequal windows; tied ordinal levels; lognormal latency and cost; Poisson tool calls; a
sparse categorical label; a noisy but fixed binary judge (Se 0.95, Sp 0.90).

Goals:
- G1: every primary test's null rejection rate at alpha = 0.05 in [0.041, 0.059]
  (the 99% binomial band for R = 4000); report-level FWER under Holm <= alpha.
- G2: power >= 0.8 at the MDE the report states, and >= 0.9 x an oracle's power.
- G3: a mix-only shift raises no within-cohort alarm and is reported as mix; the
  Simpson case raises within-cohort alarms with power >= 0.8.
- perf: two windows of 250,000 conversations, 20 scores, 10 cohorts: < 60 s, < 2 GB.
"""

from __future__ import annotations

import os

# One BLAS thread per process: the tests run many tiny linear-algebra calls, and a
# multithreaded BLAS on a shared two-core machine is slower for them, not faster.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from convsim.stats.drift import DriftReport, compare_windows
from convsim.stats.drift._simulate import (
    _BASE,
    SimulationConfig,
    _cell_effects,
    simulate_windows,
    true_standardized_effect,
)

ALPHA = 0.05
BY = ("language", "vertical")
CLUSTER: list[str | None] = ["auto"]
"""compare_windows(cluster=...): the default, the windows' user ids when they have them."""
G1_CONFIG = SimulationConfig()
G1_CONFIGS = [G1_CONFIG]
"""The G1 scenario (a list so that --user-share can replace it before workers fork)."""


def band99(p: float, r: int) -> tuple[float, float]:
    """99% binomial acceptance band for a rate p estimated from r replications."""
    se = math.sqrt(p * (1 - p) / r)
    return p - 2.576 * se, p + 2.576 * se


def _pool(workers: int) -> Any:
    return mp.get_context("fork").Pool(workers) if workers > 1 else None


def _map(
    fn: Callable[[int], dict[str, Any]], seeds: Iterable[int], workers: int
) -> list[dict[str, Any]]:
    pool = _pool(workers)
    if pool is None:
        return [fn(s) for s in seeds]
    with pool:
        return list(pool.imap(fn, seeds, chunksize=8))


# --- G1: null calibration -------------------------------------------------------------


def _naive_turn_z(b: Any, c: Any, name: str) -> float:
    """Two-proportion z on turn rows, ignoring clustering and weights (a naive baseline)."""
    x = [w.scores[name].values for w in (b, c)]
    p0, p1 = x[0].mean(), x[1].mean()
    n0, n1 = x[0].size, x[1].size
    p = (x[0].sum() + x[1].sum()) / (n0 + n1)
    z = (p1 - p0) / math.sqrt(p * (1 - p) * (1 / n0 + 1 / n1))
    return float(2 * special.ndtr(-abs(z)))


def _evidently_chisquare(b: Any, c: Any, name: str) -> float:
    """Evidently's chisquare_stattest: goodness of fit of current counts to reference."""
    levels = np.unique(np.concatenate([w.scores[name].values for w in (b, c)]))
    ref = np.array([(b.scores[name].values == v).sum() for v in levels], float)
    cur = np.array([(c.scores[name].values == v).sum() for v in levels], float)
    exp = ref / ref.sum() * cur.sum()
    return float(stats.chisquare(cur, exp).pvalue)


def g1_one(seed: int) -> dict[str, Any]:
    b, c = simulate_windows(G1_CONFIGS[0], seed)
    rep = compare_windows(b, c, by=BY, bootstrap=0, cluster=CLUSTER[0])
    out: dict[str, Any] = {"primary": {}, "drill": {}, "cover": {}, "mix": None}
    for f in rep.findings:
        if f.kind == "score" and f.p_value is not None:
            rej = f.p_value <= ALPHA
            if f.family == "primary":
                out["primary"][f.metric] = rej
                out["cover"][f.metric] = bool((f.ci_low or 0) <= 0 <= (f.ci_high or 0))
            else:
                out["drill"].setdefault(f.metric, []).append(rej)
        elif f.kind == "mix":
            out["mix"] = f.p_value is not None and f.p_value <= ALPHA
    out["fwer_holm"] = any(f.significant for f in rep.findings if f.family == "primary")
    out["fwer_alarm"] = any(f.alarm for f in rep.findings if f.family == "primary")
    out["bh_any"] = any(f.significant for f in rep.findings if f.family == "drilldown")
    out["naive_turn_z"] = _naive_turn_z(b, c, "policy_adherence") <= ALPHA
    out["evidently_gof"] = _evidently_chisquare(b, c, "tone") <= ALPHA
    return out


def run_g1(reps: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = _map(g1_one, range(100_000, 100_000 + reps), workers)
    secs = time.perf_counter() - t0
    lo, hi = band99(ALPHA, reps)
    rows = []
    for name in sorted(res[0]["primary"]):
        rate = float(np.mean([r["primary"][name] for r in res]))
        drill = [x for r in res for x in r["drill"].get(name, [])]
        cover = float(np.mean([r["cover"][name] for r in res]))
        rows.append(
            {
                "metric": name,
                "fpr": rate,
                "ok": lo <= rate <= hi,
                "drill_fpr": float(np.mean(drill)),
                "drill_n": len(drill),
                "ci_cover": cover,
            }
        )
    summary = {
        "reps": reps,
        "cluster": CLUSTER[0],
        "band": [lo, hi],
        "rows": rows,
        "fwer_holm": float(np.mean([r["fwer_holm"] for r in res])),
        "fwer_alarm": float(np.mean([r["fwer_alarm"] for r in res])),
        "bh_any": float(np.mean([r["bh_any"] for r in res])),
        "mix_fpr": float(np.mean([r["mix"] for r in res])),
        "naive_turn_z": float(np.mean([r["naive_turn_z"] for r in res])),
        "evidently_gof": float(np.mean([r["evidently_gof"] for r in res])),
        "seconds": secs,
    }
    print(
        f"\nG1 null calibration: R = {reps}, cluster = {CLUSTER[0]}, "
        f"user share = {G1_CONFIGS[0].user_share}, "
        f"99% band [{lo:.3f}, {hi:.3f}], {secs:.0f} s"
    )
    print("| score | primary FPR | in band | drill-down FPR (per cohort test) | 95% CI covers 0 |")
    print("|---|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['metric']} | {r['fpr']:.4f} | {'yes' if r['ok'] else 'NO'} | "
            f"{r['drill_fpr']:.4f} (n={r['drill_n']}) | {r['ci_cover']:.4f} |"
        )
    print(
        f"report-level FWER, Holm over {len(rows)} primary tests: {summary['fwer_holm']:.4f}; "
        f"with the min-effect rule (alarms): {summary['fwer_alarm']:.4f}"
    )
    print(f"any BH discovery in the drill-down (all nulls, = FDR): {summary['bh_any']:.4f}")
    print(f"cohort-mix test FPR: {summary['mix_fpr']:.4f}")
    print(f"naive turn-level z (policy_adherence, ICC 0.3): {summary['naive_turn_z']:.4f}")
    print(f"Evidently chi-square goodness of fit (tone, turn rows): {summary['evidently_gof']:.4f}")
    return summary


# --- G2: power at the stated MDE ------------------------------------------------------

G2_CASES = (
    ("goal_completion", "binary, conversation-level"),
    ("policy_adherence", "binary, 10 turns, ICC 0.3"),
    ("tone", "ordinal 1-5, 10 turns, ICC 0.3"),
    ("latency_ms", "continuous, lognormal"),
)


def _g2_cfg(name: str, shift: float = 0.0) -> SimulationConfig:
    return SimulationConfig(
        scores=(name,),
        judge_se=(1.0, 1.0),
        judge_sp=(1.0, 1.0),
        shifts={name: shift} if shift else {},
    )


def _g2_one(args: tuple[str, float, int]) -> dict[str, Any]:
    name, shift, seed = args
    b, c = simulate_windows(_g2_cfg(name, shift), seed)
    f = compare_windows(b, c, by=BY, bootstrap=0, cluster=CLUSTER[0]).findings[0]
    return {"p": f.p_value, "eff": f.effect, "mde": f.mde, "sig": f.significant, "alarm": f.alarm}


def _g2_map(name: str, shift: float, seeds: range, workers: int) -> list[dict[str, Any]]:
    args = [(name, shift, s) for s in seeds]
    pool = _pool(workers)
    if pool is None:
        return [_g2_one(a) for a in args]
    with pool:
        return list(pool.imap(_g2_one, args, chunksize=8))


def run_g2(reps: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = []
    z = float(special.ndtri(1 - ALPHA / 2))
    for name, label in G2_CASES:
        null = _g2_map(name, 0.0, range(200_000, 200_000 + 200), workers)
        mde = float(np.median([r["mde"] for r in null]))
        shift = optimize.brentq(
            lambda s, n=name, m=mde: true_standardized_effect(_g2_cfg(n, s), n) + m, -3.0, 0.0
        )
        alt = _g2_map(name, shift, range(300_000, 300_000 + reps), workers)
        power = float(np.mean([r["sig"] for r in alt]))
        effects = np.array([r["eff"] for r in alt])
        # Oracle: the z test of the same estimate with its true standard error (the spread
        # of the estimate over replications), i.e. a correctly specified test that knows
        # the design effect exactly.
        se_true = float(effects.std(ddof=1))
        oracle = float(np.mean(np.abs(effects) / se_true > z))
        out.append(
            {
                "metric": name,
                "case": label,
                "mde": mde,
                "true_effect": -mde,
                "mean_estimate": float(effects.mean()),
                "power": power,
                "oracle": oracle,
                "ratio": power / oracle if oracle else math.nan,
                "alarm_rate": float(np.mean([r["alarm"] for r in alt])),
            }
        )
    secs = time.perf_counter() - t0
    print(f"\nG2 power at the stated MDE: R = {reps} per case, {secs:.0f} s")
    print("| score | case | stated MDE | power | oracle power | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for r in out:
        print(
            f"| {r['metric']} | {r['case']} | {r['mde']:.4g} | {r['power']:.3f} | "
            f"{r['oracle']:.3f} | {r['ratio']:.3f} |"
        )
    return {"reps": reps, "rows": out, "seconds": secs}


# --- G3: mix vs within ----------------------------------------------------------------


def _ordered_mix(cell_scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    base = SimulationConfig(scores=("goal_completion",), cell_scale=cell_scale)
    spec = next(s for s in _BASE if s.name == "goal_completion")
    order = np.argsort(_cell_effects(base, spec))
    mix0 = np.linspace(1, 4, 10)
    hard, easy = np.empty(10), np.empty(10)
    hard[order] = mix0[::-1]
    easy[order] = mix0
    return tuple(hard), tuple(easy)


def _g3_cfgs() -> dict[str, SimulationConfig]:
    hard, easy = _ordered_mix(3.0)
    common = SimulationConfig(
        n_baseline=3000,
        n_current=3000,
        scores=("goal_completion",),
        cell_scale=3.0,
        judge_se=(1.0, 1.0),
        judge_sp=(1.0, 1.0),
    )
    rep = dataclasses.replace
    return {
        "mix-only": rep(common, mix_baseline=hard, mix_current=easy),
        "within-only, uniform": rep(common, shifts={"goal_completion": -0.5}),
        "Simpson": rep(
            common, mix_baseline=hard, mix_current=easy, shifts={"goal_completion": -0.5}
        ),
        "Simpson, smaller drop": rep(
            common, mix_baseline=hard, mix_current=easy, shifts={"goal_completion": -0.4}
        ),
    }


def _g3_one(args: tuple[str, int]) -> dict[str, Any]:
    scenario, seed = args
    cfg = _g3_cfgs()[scenario]
    b, c = simulate_windows(cfg, seed)
    rep = compare_windows(
        b, c, by=BY, bootstrap=0, min_effects={"goal_completion": 0.02}, cluster=CLUSTER[0]
    )
    main = rep.findings[0]
    mix = next(f for f in rep.findings if f.kind == "mix")
    drill = [f for f in rep.findings if f.family == "drilldown"]
    d = main.decomposition
    assert d is not None
    return {
        "within_sig": main.significant,
        "within_alarm": main.alarm,
        "within_down": main.alarm and (main.effect or 0) < 0,
        "mix_alarm": mix.alarm,
        "mix_sig": mix.significant,
        "total_up": d.total > 0,
        "total": d.total,
        "mix": d.mix,
        "within": d.within,
        "drill_any": any(f.alarm for f in drill),
    }


def run_g3(reps: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = []
    for scenario, cfg in _g3_cfgs().items():
        args = [(scenario, s) for s in range(400_000, 400_000 + reps)]
        pool = _pool(workers)
        if pool is None:
            res = [_g3_one(a) for a in args]
        else:
            with pool:
                res = list(pool.imap(_g3_one, args, chunksize=8))
        row: dict[str, Any] = {"scenario": scenario}
        for key in res[0]:
            row[key] = float(np.mean([r[key] for r in res]))
        row["true_within"] = true_standardized_effect(cfg, "goal_completion")
        out.append(row)
    secs = time.perf_counter() - t0
    print(f"\nG3 mix vs within: R = {reps} per scenario, {secs:.0f} s")
    print(
        "| scenario | true within | mean total | mean mix | mean within | within significant | "
        "within alarm | mix alarm | any cohort alarm | aggregate up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in out:
        print(
            f"| {r['scenario']} | {r['true_within']:+.4f} | {r['total']:+.4f} | {r['mix']:+.4f} | "
            f"{r['within']:+.4f} | {r['within_sig']:.3f} | {r['within_alarm']:.3f} | "
            f"{r['mix_alarm']:.3f} | {r['drill_any']:.3f} | {r['total_up']:.3f} |"
        )
    return {"reps": reps, "rows": out, "seconds": secs}


# --- performance ----------------------------------------------------------------------


def perf_child(conversations: int) -> dict[str, Any]:
    cfg = SimulationConfig(
        n_baseline=conversations,
        n_current=conversations,
        n_scores=20,
        turns=4,
        variable_turns=True,
    )
    t0 = time.perf_counter()
    b, c = simulate_windows(cfg, 1)
    t_build = time.perf_counter() - t0
    rows = sum(col.n_rows for w in (b, c) for col in w.scores.values())
    t0 = time.perf_counter()
    rep: DriftReport = compare_windows(b, c, by=BY)
    t_compare = time.perf_counter() - t0
    rss_plain = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    compare_windows(b, c, by=BY, cluster="user")
    t_compare_users = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep.to_json()
    rep.to_markdown()
    t_render = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "conversations": [b.n_conversations, c.n_conversations],
        "rows": rows,
        "scores": len(b.scores),
        "cohorts": len({f.cohort_label for f in rep.findings}) - 1,
        "findings": len(rep.findings),
        "simulate_s": t_build,
        "compare_s": t_compare,
        "peak_rss_mb_after_compare": rss_plain,
        "compare_clustered_by_user_s": t_compare_users,
        "render_s": t_render,
        "peak_rss_mb": rss,
    }


def from_scores_child(n: int, stream: bool) -> dict[str, Any]:
    """Window.from_scores on n conversations x 20 scores (10 cohorts, two weights).

    With ``stream`` the scores are generated lazily and never held in a list, so the
    time includes building every Score (pydantic validation) and the peak RSS is the
    window's own footprint; without it the list is built first and only the
    conversion to columns is timed.
    """
    from convsim.stats.drift import Window
    from convsim.trace import Score

    def gen() -> Iterable[Score]:
        for i in range(n):
            tags = {"language": "en" if i % 3 else "de", "vertical": f"v{i % 5}"}
            cid = f"c{i}"
            prob = 0.15 if i % 10 else 1.0
            for k in range(20):
                yield Score(
                    conversation_id=cid,
                    name=f"score_{k}",
                    value=bool((i + k) % 4),
                    kind="binary",
                    tags=tags,
                    inclusion_prob=prob,
                    judge_model="j",
                    prompt_hash="h",
                )

    out: dict[str, Any] = {"conversations": n, "scores": 20 * n, "stream": stream}
    if stream:
        t0 = time.perf_counter()
        w = Window.from_scores(gen(), "w")
        out["build_and_convert_s"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        scores = list(gen())
        out["build_scores_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        w = Window.from_scores(scores, "w")
        out["from_scores_s"] = time.perf_counter() - t0
        out["scores_per_s"] = 20 * n / out["from_scores_s"]
    assert w.n_conversations == n
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_perf(conversations: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "perf-child", "--conversations", str(conversations)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_s"] = wall
    res["from_scores"] = []
    for n, extra in ((25_000, []), (conversations, ["--stream"])):
        cmd = [sys.executable, __file__, "scores-child", "--conversations", str(n), *extra]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res["from_scores"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("\nPerformance (one process, fresh interpreter):")
    print(json.dumps(res, indent=2))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["g1", "g2", "g3", "perf", "all", "perf-child", "scores-child"])
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--conversations", type=int, default=250_000)
    ap.add_argument("--json", type=str, default=None, help="write results to this file")
    ap.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--user-share",
        type=float,
        default=None,
        help="G1 with this share of the conversation effect belonging to the user",
    )
    ap.add_argument(
        "--no-user-ids",
        action="store_true",
        help="G1 without the user ids: conversations treated as independent",
    )
    ap.add_argument(
        "--current-rate",
        type=float,
        default=None,
        help="G1 with routine traffic sampled at this rate in the current window (0.15 before)",
    )
    args = ap.parse_args()
    if args.current_rate is not None:
        G1_CONFIGS[0] = dataclasses.replace(
            G1_CONFIGS[0], inclusion_current=(args.current_rate, 1.0)
        )
    if args.user_share is not None:
        G1_CONFIGS[0] = dataclasses.replace(G1_CONFIG, user_share=args.user_share)
    if args.no_user_ids:
        G1_CONFIGS[0] = dataclasses.replace(G1_CONFIGS[0], user_ids=False)
    if args.what == "perf-child":
        print(json.dumps(perf_child(args.conversations)))
        return
    if args.what == "scores-child":
        print(json.dumps(from_scores_child(args.conversations, args.stream)))
        return
    results: dict[str, Any] = {"config": dataclasses.asdict(G1_CONFIGS[0])}
    if args.what in ("g1", "all"):
        results["g1"] = run_g1(args.reps or 4000, args.workers)
    if args.what in ("g2", "all"):
        results["g2"] = run_g2(args.reps or 1000, args.workers)
    if args.what in ("g3", "all"):
        results["g3"] = run_g3(args.reps or 1000, args.workers)
    if args.what in ("perf", "all"):
        results["perf"] = run_perf(args.conversations)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
