"""Judge calibration by simulation: bias and coverage of the corrected pass rates.

Every replication draws judged conversations with a known truth and a human-labelled
subset (``convsim.testing.labelled_sample``) and runs ``convsim.stats.judge_rates``, the
function behind the calibration block of ``convsim grade --labels`` and ``convsim online
--labels``. Per scenario it reports, for the prediction-powered estimate (PPI, printed
first by the CLI) and for Rogan-Gladen: bias in units of the estimate's SD, 95% interval
coverage of the true pass rate, and the median interval width.

Usage:
    python bench/judge_calibration.py [--reps 2000] [--workers 2] [--json FILE]

Goal (issue "Judge calibration from the CLI"): PPI coverage within 0.94-0.96 and |bias|
at most 0.1 SD in every scenario; with R = 2000 a coverage of 0.95 has an SE of 0.005.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convsim.testing import (
    CALIBRATION_SCENARIOS,
    calibration_replication,
    coverage_summary,
    true_rate,
)


def one(args: tuple[int, int]) -> dict[str, Any]:
    return calibration_replication(*args)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    results: list[dict[str, Any]] = []
    print(
        f"| scenario | truth | judge alone | PPI bias / SD | PPI coverage | PPI width | "
        f"RG bias / SD | RG coverage | RG width |  (R = {args.reps})"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, sc in enumerate(CALIBRATION_SCENARIOS):
        t0 = time.perf_counter()
        jobs = [(k, rep) for rep in range(args.reps)]
        if args.workers > 1:
            with mp.get_context("fork").Pool(args.workers) as pool:
                res = pool.map(one, jobs, chunksize=50)
        else:
            res = [one(j) for j in jobs]
        truth = true_rate(sc.cohorts)
        ppi = coverage_summary([r["ppi"] for r in res], truth)
        rg = coverage_summary([r["rg"] for r in res], truth)
        naive = float(np.mean([r["naive"] for r in res]))
        row = {"scenario": sc.name, "truth": truth, "naive": naive, "ppi": ppi, "rg": rg}
        line = (
            f"| {sc.name} | {truth:.3f} | {naive:.3f} | {ppi['bias_sd']:+.3f} | "
            f"{ppi['coverage']:.3f} | {ppi['width']:.3f} | {rg['bias_sd']:+.3f} | "
            f"{rg['coverage']:.3f} | {rg['width']:.3f} |"
        )
        if "ppi_unstratified" in res[0]:
            plain = coverage_summary([r["ppi_unstratified"] for r in res], truth)
            row["ppi_unstratified"] = plain
            line += (
                f"  (without the strata: PPI bias {plain['bias_sd']:+.3f} SD, coverage "
                f"{plain['coverage']:.3f})"
            )
        row["seconds"] = time.perf_counter() - t0
        results.append(row)
        print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
