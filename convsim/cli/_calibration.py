"""The judge-calibration block of ``grade`` and ``online``: agreement and corrected rates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..trace import Score


@dataclass(frozen=True, slots=True)
class Labels:
    """The human labels of a ``--labels`` file, read before any judging is paid for."""

    file: Path
    scores: list[Score]
    read: int
    rejected: int
    first_issue: str | None


def read_labels(path: Path) -> Labels:
    """Read a ``--labels`` file; one without a single human label is a usage error."""
    from ..datasets import ReadReport
    from ..grade import read_scores

    report = ReadReport(file=str(path))
    scores = list(read_scores(path, report=report))
    first = str(report.issues[0]) if report.issues else None
    if not any(s.source == "human" for s in scores):
        # A labels file that yields nothing would otherwise pass as "no calibration".
        raise ConfigError(
            f"{path}: no human labels ({report.read} lines read, {report.rejected} not "
            f"score lines, {len(scores)} scores without source: human)"
            + (f"; first problem: {first}" if first else "")
            + ". Give score lines with source: human, named like the judge's scores "
            "(see docs/personas-and-rubrics.md)"
        )
    return Labels(path, scores, report.read, report.rejected, first)


def calibration_block(
    scores: Path | Iterable[Score], labels: Labels, strata: str | None
) -> dict[str, Any]:
    """Each judge's agreement with the human labels and its corrected rates, as JSON.

    ``{"judges": {name: {...}}, "unmatched_labels": {...}, "label_strata": TAG}``. Per
    judge: the agreement metrics (TPR, TNR, kappa), then, when calibrated, the
    prediction-powered estimate (``ppi``) and, for binary judges, Rogan-Gladen
    (``corrected_pass_rate``), both computed without reusing labelled items in their
    judge-only part.
    """
    from ..grade import read_scores
    from ..stats import calibrate, judge_rates

    judged = list(read_scores(scores)) if isinstance(scores, Path) else list(scores)
    rates, unmatched = judge_rates(judged, labels.scores, strata=strata)
    by_key = {(r.name, r.judge_model): r for r in rates}
    judges: dict[str, Any] = {}
    for r in calibrate(judged, labels.scores):
        entry: dict[str, Any] = {
            "judge_model": r.judge_model,
            "calibrated": r.calibrated,
            "status": r.status,
            "labels": r.n,
            "kappa": r.kappa.value if r.kappa else None,
            "weighted_kappa": r.weighted_kappa.value if r.weighted_kappa else None,
        }
        if r.binary is not None:
            entry["tpr"] = r.binary.tpr.value
            entry["tnr"] = r.binary.tnr.value
        rate = by_key.get((r.name, r.judge_model))
        if r.calibrated and rate is not None:
            entry["judge_mean"] = round(rate.judge_mean, 6)
            entry["ppi"] = _ppi(rate)
            if r.kind == "binary":
                rg = rate.rogan_gladen
                entry["corrected_pass_rate"] = (
                    {"estimate": rg.estimate, "low": rg.low, "high": rg.high, "reason": rg.reason}
                    if rg is not None
                    else {
                        "estimate": None,
                        "low": None,
                        "high": None,
                        "reason": rate.reason
                        or "every judged item is labelled: the PPI "
                        "estimate is the labels' own mean",
                    }
                )
        judges[r.name] = entry
    notes = []
    if labels.rejected:
        notes.append(
            f"{labels.rejected} of {labels.read} lines of {labels.file} are not score lines "
            f"and were ignored (first: {labels.first_issue})"
        )
    probs = {s.inclusion_prob for s in labels.scores if s.source == "human" and s.inclusion_prob}
    if len(probs) > 1 and strata is None:
        notes.append(
            f"the labels carry {len(probs)} different inclusion probabilities: if they were "
            "drawn unevenly, name the tag they were drawn by with --label-strata, or the "
            "corrected rates treat them as a uniform sample"
        )
    return {
        "judges": judges,
        "notes": notes,
        "label_strata": strata,
        "unmatched_labels": {
            "count": unmatched.count,
            "names": dict(unmatched.names),
            "did_you_mean": dict(unmatched.suggestions),
        },
    }


def _ppi(rate: Any) -> dict[str, Any]:
    p = rate.ppi
    if p is None:
        return {"estimate": None, "low": None, "high": None, "reason": rate.reason}
    return {
        "estimate": p.estimate,
        "low": p.low,
        "high": p.high,
        "se": p.se,
        "labelled": p.n_labelled,
        "unlabelled": p.n_unlabelled,
        "strata": p.strata,
        "reason": p.reason,
    }


def print_calibration(
    console: Any, judges: dict[str, Any], unmatched: dict[str, Any], notes: list[str]
) -> None:
    """The calibration block in the terminal: one line per judge, then what was left out."""
    for name, e in judges.items():
        line = f"{name}: {e['status']}"
        ppi = e.get("ppi")
        if ppi and ppi.get("estimate") is not None:
            line += f"; corrected (PPI) {_range(ppi)}"
            rg = e.get("corrected_pass_rate")
            if rg and rg.get("estimate") is not None:
                line += f", Rogan-Gladen {_range(rg)}"
            elif rg:
                line += f", Rogan-Gladen undefined ({rg['reason']})"
            line += f"; the judge alone says {e['judge_mean']:.3f}"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for note in notes:
        console.print(f"note: {note}", style="yellow", markup=False, highlight=False)
    un = unmatched
    if un["count"]:
        names = ", ".join(
            f"{n} ({k}"
            + (f"; did you mean {un['did_you_mean'][n]}?" if n in un["did_you_mean"] else "")
            + ")"
            for n, k in un["names"].items()
        )
        console.print(
            f"{un['count']} human labels matched no judged item"
            + (f"; names no judge scored: {names}" if names else ""),
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _range(e: dict[str, Any]) -> str:
    if e.get("low") is None:
        return f"{e['estimate']:.3f}"
    return f"{e['estimate']:.3f} ({e['low']:.3f}-{e['high']:.3f})"
