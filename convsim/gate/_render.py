"""The gate report as Markdown (PR comments), JUnit XML (CI) and a terminal table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from ._report import BudgetCheck, GateReport, RunReliability
from ._stats import DecisionPlan, GroupComparison

_MAX_CHANGES = 10


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _pp(x: float) -> str:
    return f"{x * 100:+.1f}"


def _interval(g: GroupComparison) -> str:
    return f"[{_pp(g.low)}, {_pp(g.high)}]"


def plan_text(plan: DecisionPlan | None) -> str:
    """A short "to decide" cell: more cases, or more trials per case."""
    if plan is None:
        return ""
    if plan.more_cases is None:
        return "out of reach" if plan.toward else "on the margin"
    text = f"+{plan.more_cases:,} cases"
    if plan.trials_per_case is not None:
        text += f" or {plan.trials_per_case} trials/case"
    return text


def _budget_value(b: BudgetCheck, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if b.kind == "latency_ms" else f"${value:.4f}"


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _levels(report: GateReport) -> str:
    cmp = report.comparison
    k = len(cmp.groups)
    family = f" (Bonferroni over {k} groups)" if k > 1 else ""
    return (
        f"lower bound one-sided {100 * (1 - cmp.alpha):g}%, upper bound one-sided "
        f"{100 * (1 - cmp.alpha_regression):.3g}%{family}"
    )


def _passk_text(rel: RunReliability) -> str:
    if rel.passk is None:
        return "no counted conversations"
    parts = [f"pass^{e.k} {_pct(e.pass_hat)}" for e in rel.passk.estimates]
    return ", ".join(parts)


def render_markdown(report: GateReport) -> str:
    """A Markdown summary sized for a pull-request comment.

    Args:
        report: The gate report.

    Returns:
        Markdown text ending with a newline.
    """
    cmp = report.comparison
    c, b = report.candidate, report.baseline
    out = [
        f"### convsim compare: **{report.verdict.upper()}**",
        "",
        f"Candidate `{c.run_id}` vs baseline `{b.run_id}` · metric `{report.metric}` · "
        f"allowed regression {cmp.max_regression:g} pp · alpha {cmp.alpha:g} · "
        f"{report.pairing.cases} cases compared",
        "",
        "| group | cases | candidate | baseline | change (pp) | interval (pp) | verdict "
        "| to decide |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    out.extend(
        f"| {_md(g.label)} | {g.cases} | {_pct(g.candidate_rate)} | "
        f"{_pct(g.baseline_rate)} | {_pp(g.delta)} | {_interval(g)} | "
        f"{g.verdict} | {_md(plan_text(g.plan))} |"
        for g in cmp.groups
    )
    out += [
        "",
        f"Interval of the change: {_levels(report)}. **regression**: the whole interval "
        f"is below -{cmp.max_regression:g} pp; "
        f"**pass**: the whole interval is above -{cmp.max_regression:g} pp; otherwise "
        "**inconclusive**, with the extra cases (or trials per case) that would likely "
        "decide.",
    ]
    if report.budgets:
        out += [
            "",
            "**Budgets** (P95 per conversation)",
            "",
            "| group | budget | limit | candidate P95 | baseline P95 | status |",
            "|---|---|---:|---:|---:|---|",
        ]
        for bc in report.budgets:
            status = {True: "ok", False: "**over budget**", None: "no data"}[bc.ok]
            out.append(
                f"| {_md(bc.group)} | {bc.kind} | {_budget_value(bc, bc.budget)} | "
                f"{_budget_value(bc, bc.p95)} | {_budget_value(bc, bc.baseline_p95)} | "
                f"{status} |"
            )
    worse = [ch for ch in report.changes if ch.delta < 0]
    if worse:
        out += [
            "",
            f"**Cases that got worse** ({min(len(worse), _MAX_CHANGES)} of {len(worse)})",
            "",
        ]
        for ch in worse[:_MAX_CHANGES]:
            tags = ", ".join(f"{k}={v}" for k, v in ch.tags.items())
            out.append(
                f"- `{ch.case_id}`{f' ({tags})' if tags else ''}: "
                f"{ch.baseline_passes}/{ch.baseline_trials} -> "
                f"{ch.candidate_passes}/{ch.candidate_trials}"
            )
    better = sum(ch.delta > 0 for ch in report.changes)
    if better:
        out += ["", f"{better} cases got better."]
    out += [
        "",
        "<details><summary>Reliability and notes</summary>",
        "",
    ]
    for rel in (c, b):
        out.append(
            f"- {rel.side} `{rel.run_id}`: {rel.counted} of {rel.conversations} "
            f"conversations counted; {_passk_text(rel)}; {rel.flaky_cases} flaky and "
            f"{rel.stable_cases} stable cases"
        )
    out.extend(f"- {_md(n)}" for n in report.notes)
    out += ["", "</details>", ""]
    return "\n".join(out)


def render_junit(report: GateReport) -> str:
    """JUnit XML with one test case per group (and per budget check).

    A regression is a ``<failure>``. An inconclusive group is ``<skipped>``: CI shows it
    as neither passed nor failed, and its message says how much more data would decide;
    the exit code (3) still tells the pipeline the gate did not pass. Groups over budget
    are failures of their own ``convsim.compare.budget`` test cases.

    Args:
        report: The gate report.

    Returns:
        The XML document as text.
    """
    cmp = report.comparison
    suite_name = f"convsim compare ({report.metric})"
    cases: list[ET.Element] = []
    classname = f"convsim.compare.{report.metric}"
    for g in cmp.groups:
        tc = ET.Element("testcase", {"classname": classname, "name": g.label, "time": "0"})
        summary = (
            f"{g.verdict}: change {_pp(g.delta)} pp, interval {_interval(g)} pp, allowed "
            f"-{cmp.max_regression:g} pp; {g.reason}"
        )
        if g.verdict == "regression":
            ET.SubElement(tc, "failure", {"type": "regression", "message": summary}).text = summary
        elif g.verdict == "inconclusive":
            plan = g.plan.note if g.plan is not None else ""
            ET.SubElement(tc, "skipped", {"message": f"{summary}. To decide: {plan}"})
        ET.SubElement(tc, "system-out").text = summary
        cases.append(tc)
    for bc in report.budgets:
        tc = ET.Element(
            "testcase",
            {"classname": "convsim.compare.budget", "name": f"{bc.kind} {bc.group}", "time": "0"},
        )
        text = (
            f"candidate P95 {_budget_value(bc, bc.p95)} against a budget of "
            f"{_budget_value(bc, bc.budget)} (baseline {_budget_value(bc, bc.baseline_p95)})"
        )
        if bc.ok is False:
            ET.SubElement(tc, "failure", {"type": "over_budget", "message": text}).text = text
        elif bc.ok is None:
            ET.SubElement(tc, "skipped", {"message": "no conversation recorded this"})
        cases.append(tc)
    failures = sum(tc.find("failure") is not None for tc in cases)
    skipped = sum(tc.find("skipped") is not None for tc in cases)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "convsim compare", **counts})
    suite = ET.SubElement(
        root, "testsuite", {"name": suite_name, **counts, "skipped": str(skipped), "time": "0"}
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("verdict", report.verdict),
        ("candidate", report.candidate.run_id),
        ("baseline", report.baseline.run_id),
        ("metric", report.metric),
        ("max_regression_pp", f"{cmp.max_regression:g}"),
        ("alpha", f"{cmp.alpha:g}"),
    ):
        ET.SubElement(props, "property", {"name": key, "value": value})
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


_STYLE = {"pass": "green", "regression": "bold red", "inconclusive": "yellow"}


def render_terminal(report: GateReport, console: Any) -> None:
    """Print the report as tables on a ``rich`` console.

    Args:
        report: The gate report.
        console: A ``rich.console.Console``.
    """
    from rich.table import Table

    cmp = report.comparison
    c, b = report.candidate, report.baseline
    table = Table(
        title=(
            f"{c.run_id} (candidate) vs {b.run_id} (baseline): {report.metric}, allowed "
            f"regression {cmp.max_regression:g} pp"
        ),
        title_justify="left",
    )
    for col, justify in (
        ("group", "left"),
        ("cases", "right"),
        ("candidate", "right"),
        ("baseline", "right"),
        ("change pp", "right"),
        ("interval pp", "right"),
        ("p(worse)", "right"),
        ("verdict", "left"),
        ("to decide", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for g in cmp.groups:
        table.add_row(
            g.label,
            str(g.cases),
            _pct(g.candidate_rate),
            _pct(g.baseline_rate),
            _pp(g.delta),
            _interval(g),
            f"{g.p_worse:.2g}",
            f"[{_STYLE[g.verdict]}]{g.verdict}[/]",
            plan_text(g.plan),
        )
    console.print(table)
    console.print(f"interval: {_levels(report)}", style="dim")
    if report.budgets:
        bt = Table(title="budgets (P95 per conversation)", title_justify="left")
        for col in ("group", "budget", "limit", "candidate P95", "baseline P95", "status"):
            bt.add_column(col)
        for bc in report.budgets:
            status = {True: "[green]ok[/]", False: "[bold red]over budget[/]", None: "no data"}
            bt.add_row(
                bc.group,
                bc.kind,
                _budget_value(bc, bc.budget),
                _budget_value(bc, bc.p95),
                _budget_value(bc, bc.baseline_p95),
                status[bc.ok],
            )
        console.print(bt)
    rt = Table(title="reliability", title_justify="left")
    for col in ("run", "counted / all", "excluded", "pass^k", "flaky", "stable"):
        rt.add_column(col)
    for rel in (c, b):
        excluded = ", ".join(f"{k} {v}" for k, v in rel.excluded.items()) or "-"
        rt.add_row(
            f"{rel.side} {rel.run_id}",
            f"{rel.counted} / {rel.conversations}",
            excluded,
            _passk_text(rel),
            str(rel.flaky_cases),
            str(rel.stable_cases),
        )
    console.print(rt)
    worse = [ch for ch in report.changes if ch.delta < 0]
    if worse:
        shown = ", ".join(
            f"{ch.case_id} {ch.baseline_passes}/{ch.baseline_trials}->"
            f"{ch.candidate_passes}/{ch.candidate_trials}"
            for ch in worse[:5]
        )
        console.print(f"worse cases ({len(worse)}): {shown}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", style="dim", highlight=False)
    console.print(
        f"verdict: [{_STYLE[report.verdict]}]{report.verdict.upper()}[/] (exit {report.exit_code})"
    )
