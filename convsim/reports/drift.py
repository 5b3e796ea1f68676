"""The drift report as one self-contained HTML page, with a chart per alarm."""

from __future__ import annotations

from ..stats.drift import DriftReport, Finding, WindowStats
from ..stats.drift._report import HEADLINE_TITLES, format_effect
from ._html import escape, page, table

_W, _ROW, _LEFT = 560, 34, 110


def drift_html(report: DriftReport, title: str | None = None) -> str:
    """The report: what matters first, then every finding with its MDE.

    What matters first: alarms with charts, significant changes, and large effects the
    data could not confirm, each group by size.
    """
    s = report.summary()
    heading = title or f"Drift report: {report.baseline} → {report.current}"
    verdict = (
        f"<p class=bad>{s['alarms']} alarm(s)</p>" if s["alarms"] else "<p class=ok>No alarms</p>"
    )
    notes = [f"<p class=warn>Caveat: {escape(c)}</p>" for c in report.caveats]
    notes += [
        f"<p class=bad>Judge: {escape(f.metric)}: {escape(f.note)}</p>"
        for f in report.judge_warnings
    ]
    if s["insufficient"]:
        notes.append(
            f"<p class=muted>{s['insufficient']} cohort(s) had too little data to test.</p>"
        )
    by = ", ".join(report.by) or "none"
    meta = (
        f"<p class=muted>alpha {report.alpha} per family (Holm for the primary findings, "
        f"Benjamini–Hochberg for the drill-down); cohorts by {escape(by)}; cohorts below "
        f"{report.min_n} conversations per window are not tested; clustering: "
        f"{escape(report.clustering or 'none')}.</p>"
    )
    head = report.headline()
    alarms = "".join(_alarm(f) for g, f in head if g == "alarm")
    sections = f"<h2>{HEADLINE_TITLES['alarm']}</h2>{alarms}" if alarms else ""
    for group in ("significant", "underpowered"):
        rows = [f for g, f in head if g == group]
        if rows:
            sections += f"<h2>{escape(HEADLINE_TITLES[group])}</h2>" + _findings_table(rows)
    scores = [f for f in report.findings if f.kind == "score"]
    others = [f for f in report.findings if f.kind != "score"]
    body = (
        verdict
        + "".join(notes)
        + meta
        + sections
        + "<h2>All scores</h2>"
        + _findings_table(scores)
        + (
            "<h2>Cohort mix, judges and insufficient data</h2>" + _findings_table(others)
            if others
            else ""
        )
        + _explainer()
    )
    return page(
        heading, body, subtitle="each week's scores compared by calibrated, weight-aware tests"
    )


def _alarm(f: Finding) -> str:
    effect = format_effect(f.effect, f.score_kind)
    interval = (
        f"[{format_effect(f.ci_low, f.score_kind)}, {format_effect(f.ci_high, f.score_kind)}]"
    )
    text = (
        f"<h3>{escape(f.metric)} · {escape(f.cohort_label)}</h3>"
        f"<p>{escape(f.effect_name or 'effect')}: <b class=bad>{escape(effect)}</b> "
        f"(95% interval {escape(interval)}), {escape(f.test)}, adjusted p = {_p(f.p_adjusted)}, "
        "minimum meaningful effect "
        f"{escape(format_effect(f.min_effect, f.score_kind, signed=False))}.</p>"
    )
    if f.note:
        text += f"<p class=muted>{escape(f.note)}</p>"
    return text + _chart(f)


def _chart(f: Finding) -> str:
    sides = [w for w in (f.baseline, f.current) if w is not None and w.estimate is not None]
    if not sides:
        return ""
    lows = [w.ci_low if w.ci_low is not None else w.estimate for w in sides]
    highs = [w.ci_high if w.ci_high is not None else w.estimate for w in sides]
    lo = min(v for v in lows if v is not None)
    hi = max(v for v in highs if v is not None)
    if f.score_kind == "binary":
        lo, hi = 0.0, 1.0
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = (
        lo - pad if f.score_kind != "binary" else lo,
        hi + pad if f.score_kind != "binary" else hi,
    )

    def x(v: float) -> float:
        return _LEFT + (v - lo) / (hi - lo) * (_W - _LEFT - 20)

    rows = []
    for i, w in enumerate(sides):
        y = 20 + i * _ROW
        est = w.estimate if w.estimate is not None else lo
        a = w.ci_low if w.ci_low is not None else est
        b = w.ci_high if w.ci_high is not None else est
        colour = "#57606a" if i == 0 else "#cf222e"
        rows.append(
            f'<text x="4" y="{y + 4}">{escape(_short(w))}</text>'
            f'<line x1="{x(a):.1f}" x2="{x(b):.1f}" y1="{y}" y2="{y}" stroke="{colour}" '
            f'stroke-width="3"></line>'
            f'<circle cx="{x(est):.1f}" cy="{y}" r="5" fill="{colour}"></circle>'
            f'<text x="{x(est) + 8:.1f}" y="{y - 8}">{est:.3f}</text>'
        )
    axis_y = 20 + len(sides) * _ROW - 10
    ticks = "".join(
        f'<text x="{x(lo + (hi - lo) * t / 4):.1f}" y="{axis_y + 14}" text-anchor="middle">'
        f"{lo + (hi - lo) * t / 4:.2f}</text>"
        for t in range(5)
    )
    height = axis_y + 22
    svg = (
        f'<svg width="{_W}" height="{height}" role="img" aria-label="{escape(f.metric)} by window">'
        f'<line x1="{_LEFT}" x2="{_W - 20}" y1="{axis_y}" y2="{axis_y}" stroke="#d0d7de"></line>'
        + "".join(rows)
        + ticks
        + "</svg>"
    )
    return svg + _distribution(f)


def _distribution(f: Finding) -> str:
    if f.baseline is None or f.current is None or not f.baseline.distribution:
        return ""
    keys = sorted(set(f.baseline.distribution) | set(f.current.distribution))
    rows = [
        [escape(k), _share(f.baseline.distribution.get(k)), _share(f.current.distribution.get(k))]
        for k in keys
    ]
    return table(
        ["level / category / quantile", f.baseline.label, f.current.label], rows, numeric={1, 2}
    )


def _findings_table(findings: list[Finding]) -> str:
    rows = []
    for f in findings:
        if f.alarm:
            verdict = "<span class=bad>alarm</span>"
        elif f.kind == "insufficient":
            verdict = "<span class=muted>insufficient data</span>"
        elif f.kind == "judge":
            verdict = escape(f.judge_status or "judge")
        elif "alarm suppressed" in f.note:
            verdict = "<span class=warn>not compared: the judge changed</span>"
        elif f.significant:
            verdict = "<span class=warn>significant, below the minimum effect</span>"
        elif f.min_effect and f.effect is not None and abs(f.effect) >= f.min_effect:
            verdict = "<span class=warn>large but not significant</span>"
        else:
            verdict = "no drift"
        effect = format_effect(f.effect, f.score_kind)
        interval = (
            f"[{format_effect(f.ci_low, f.score_kind)}, {format_effect(f.ci_high, f.score_kind)}]"
            if f.ci_low is not None
            else ""
        )
        rows.append(
            [
                escape(f.metric),
                escape(f.cohort_label),
                escape(f.test),
                _p(f.p_value),
                _p(f.p_adjusted),
                escape(f"{effect} {interval}".strip()),
                escape(format_effect(f.mde, f.score_kind, signed=False)),
                f"{f.n_baseline} / {f.n_current}",
                verdict,
            ]
        )
    return table(
        [
            "metric",
            "cohort",
            "test",
            "p",
            "p adjusted",
            "effect [95% CI]",
            "MDE",
            "n (base / cur)",
            "verdict",
        ],
        rows,
        numeric={3, 4, 7},
    )


def _explainer() -> str:
    return (
        "<h2>How to read this</h2><ul>"
        "<li><b>Alarm</b>: the change is statistically significant after correcting for the "
        "number of comparisons, <i>and</i> its whole 95% interval lies beyond the score's "
        "minimum meaningful effect. Small but real changes do not page anyone.</li>"
        "<li><b>MDE</b> (minimum detectable effect): the smallest change this comparison "
        'would detect 80% of the time. "No drift" means no change at least this large.</li>'
        "<li><b>Cohort mix</b> changes (for example more escalations this week) are reported "
        "separately from changes within cohorts, so a mix shift does not look like a quality "
        "drop.</li>"
        "<li><b>Large but not significant</b>: an effect beyond the minimum meaningful effect "
        "that the corrected tests could not confirm; more data would tell.</li>"
        "<li><b>Judge</b>: the anchor set, the same conversations judged again every window, "
        "moves only if the judge does; when it moves, product alarms on that score are "
        "suppressed.</li></ul>"
    )


def _short(w: WindowStats) -> str:
    return f"{w.label} (n={w.n})"


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _share(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"
