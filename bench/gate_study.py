"""How often ``convsim compare`` says pass, regression or inconclusive when the truth is known.

Run from the repository root::

    .venv/bin/python bench/gate_study.py                 # the full study, about 8 minutes
    .venv/bin/python bench/gate_study.py --pairs 200     # a quick look

Every experiment pair draws new cases from :class:`convsim.gate.ExperimentModel`: four
verticals (billing, retail, support, travel) with true baseline pass rates 85/70/55/40%,
case difficulty spread 1.5 and per-agent case deviation 0.5 on the logit scale, cases
split evenly among the verticals. Each pair goes through :func:`convsim.gate.compare_counts`
grouped by vertical, exactly as ``convsim compare --by vertical`` does after loading.

Scenarios, for each allowed regression (``--margins``):

- ``equal``: both agents have the same true pass rate on every vertical. A regression
  verdict is wrong; the requirement allows at most 5% of pairs.
- ``drop5``: the candidate's true pass rate on retail is 5 points lower. With a margin
  below 5 points a pass verdict is wrong; the requirement allows at most 5% of pairs at
  200 cases x 3 trials.
- ``at-margin``: the true retail drop equals the margin, the hardest case for both
  error rates: a pass (and a regression) should each happen at most alpha of the time
  for the retail group.
- ``double``: the true retail drop is twice the margin: how often a real regression is
  caught (power), and how often it is left inconclusive.

Rates are shares of ``--pairs`` pairs; with 1,000 pairs a rate near 5% is known to about
+-1.4 points (95%).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convsim.gate import ExperimentModel, compare_counts

RATES = {"billing": 0.85, "retail": 0.70, "support": 0.55, "travel": 0.40}
DROP_TAG = "retail"
VERDICTS = ("pass", "regression", "inconclusive")


@dataclass
class Cell:
    scenario: str
    margin: float
    cases: int
    trials: int
    pairs: int
    gate: Counter[str]
    group: Counter[str]
    seconds: float

    def rate(self, which: str, verdict: str) -> float:
        counts = self.gate if which == "gate" else self.group
        return counts[verdict] / self.pairs


def run_cell(
    scenario: str,
    model: ExperimentModel,
    margin: float,
    cases: int,
    trials: int,
    pairs: int,
    alpha: float,
    seed: int,
) -> Cell:
    sampler = model.sampler()
    index = list(SCENARIOS).index(scenario)
    rng = np.random.default_rng([seed, cases, trials, round(margin * 100), index])
    gate: Counter[str] = Counter()
    group: Counter[str] = Counter()
    started = time.perf_counter()
    for i in range(pairs):
        p = sampler.draw(rng, cases, trials)
        cmp = compare_counts(
            p.candidate_passes,
            p.candidate_trials,
            p.baseline_passes,
            p.baseline_trials,
            tags=p.tags,
            max_regression=margin,
            alpha=alpha,
            seed=i,
        )
        gate[cmp.verdict] += 1
        group[cmp.group(f"vertical={DROP_TAG}").verdict] += 1
    return Cell(scenario, margin, cases, trials, pairs, gate, group, time.perf_counter() - started)


SCENARIOS = ("equal", "drop5", "at-margin", "double")


def scenarios(margin: float) -> dict[str, ExperimentModel]:
    return {
        "equal": ExperimentModel(RATES),
        "drop5": ExperimentModel(RATES, {DROP_TAG: 5.0}),
        "at-margin": ExperimentModel(RATES, {DROP_TAG: margin}),
        "double": ExperimentModel(RATES, {DROP_TAG: 2 * margin}),
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_tables(cells: list[Cell], margin: float) -> None:
    print(f"\n## allowed regression {margin:g} pp\n")
    print(
        "| scenario | cases x trials | gate: pass | gate: regression | gate: inconclusive "
        f"| {DROP_TAG}: pass | {DROP_TAG}: regression | {DROP_TAG}: inconclusive |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for c in cells:
        if c.margin != margin:
            continue
        print(
            f"| {c.scenario} | {c.cases} x {c.trials} | "
            + " | ".join(_pct(c.rate("gate", v)) for v in VERDICTS)
            + " | "
            + " | ".join(_pct(c.rate("group", v)) for v in VERDICTS)
            + " |"
        )


def check(cells: list[Cell], alpha: float) -> list[str]:
    """The requirement's two properties, plus calibration at the margin."""
    lines = []
    worst_null = max(
        (c for c in cells if c.scenario == "equal"), key=lambda c: c.rate("gate", "regression")
    )
    ok = worst_null.rate("gate", "regression") <= 0.05
    lines.append(
        f"[{'ok' if ok else 'FAIL'}] equal agents: regression in at most 5% of pairs; worst "
        f"{_pct(worst_null.rate('gate', 'regression'))} at margin {worst_null.margin:g}, "
        f"{worst_null.cases} x {worst_null.trials}"
    )
    for c in cells:
        if c.scenario == "drop5" and (c.cases, c.trials) == (200, 3) and c.margin < 5:
            ok = c.rate("gate", "pass") <= 0.05
            lines.append(
                f"[{'ok' if ok else 'FAIL'}] 5-point drop on {DROP_TAG}, 200 x 3, margin "
                f"{c.margin:g}: pass in {_pct(c.rate('gate', 'pass'))} of pairs (at most 5%)"
            )
    at = [c for c in cells if c.scenario == "at-margin"]
    if at:
        worst = max(at, key=lambda c: c.rate("group", "pass"))
        se = math.sqrt(alpha * (1 - alpha) / worst.pairs)
        ok = worst.rate("group", "pass") <= alpha + 3 * se
        lines.append(
            f"[{'ok' if ok else 'FAIL'}] drop equal to the margin: {DROP_TAG} passes in at "
            f"most {_pct(worst.rate('group', 'pass'))} of pairs (worst: margin "
            f"{worst.margin:g}, {worst.cases} x {worst.trials}; alpha {alpha:g}, "
            f"+-{_pct(2 * se)} noise)"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--cases", default="50,100,200,400,1600")
    ap.add_argument("--trials", default="1,3,5")
    ap.add_argument("--margins", default="1.5,5", help="allowed regressions, in points")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", type=Path, help="write every cell's counts here")
    args = ap.parse_args()
    sizes = [int(x) for x in args.cases.split(",")]
    trial_counts = [int(x) for x in args.trials.split(",")]
    margins = [float(x) for x in args.margins.split(",")]

    started = time.perf_counter()
    cells: list[Cell] = []
    for margin in margins:
        for name, model in scenarios(margin).items():
            if name == "drop5" and margin == 5.0:
                continue  # the same model as at-margin
            for cases in sizes:
                for trials in trial_counts:
                    cell = run_cell(
                        name, model, margin, cases, trials, args.pairs, args.alpha, args.seed
                    )
                    cells.append(cell)
                    print(
                        f"margin {margin:g} {name:9} {cases:4} x {trials}: "
                        + ", ".join(f"{v} {_pct(cell.rate('gate', v))}" for v in VERDICTS)
                        + f"  ({cell.seconds:.1f}s)",
                        flush=True,
                    )
    for margin in margins:
        print_tables(cells, margin)
    print()
    for line in check(cells, args.alpha):
        print(line)
    total = time.perf_counter() - started
    print(f"\n{len(cells)} cells x {args.pairs} pairs in {total:.0f}s")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "scenario": c.scenario,
                        "margin_pp": c.margin,
                        "cases": c.cases,
                        "trials": c.trials,
                        "pairs": c.pairs,
                        "gate": dict(c.gate),
                        DROP_TAG: dict(c.group),
                    }
                    for c in cells
                ],
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
