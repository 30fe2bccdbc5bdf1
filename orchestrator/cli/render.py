"""Tables for people; JSON for programs. Nothing here decides anything.

The fleet table fits the terminal by dropping columns (status checks and AZ first, then
the name), never by cutting a verdict; rows are worst first, so the sick boxes are
together at the top, and an opted-out instance is marked as such.
"""

from __future__ import annotations

from typing import Any, Iterable

from rich import box
from rich.console import Console
from rich.table import Table

from orchestrator.model import ActionOutcome, Facts, OutcomeStatus, Plan, ProbeOutcome, Verdict, VerdictKind
from orchestrator.report import SEVERITY  # worst first: what needs a look leads the table
from orchestrator.sweep import SweepReport

VERDICT_STYLE = {
    VerdictKind.HEALTHY: "green",
    VerdictKind.UNREACHABLE: "bold red",
    VerdictKind.AWS_IMPAIRED: "red",
    VerdictKind.MEMORY_CRITICAL: "magenta",
    VerdictKind.MEMORY_FORECAST: "yellow",
    VerdictKind.METRICS_STALE: "yellow",
    VerdictKind.UNKNOWN: "dim",
}
OUTCOME_STYLE = {
    OutcomeStatus.DONE: "green",
    OutcomeStatus.DRY_RUN: "cyan",
    OutcomeStatus.SKIPPED: "yellow",
    OutcomeStatus.FAILED: "bold red",
    OutcomeStatus.UNCERTAIN: "yellow",
}
WIDE, MEDIUM = 118, 96  # terminal columns at which the fleet table shows every column / the name


def grid(title: str | None = None) -> Table:
    """orch's one table style: a rule under the header, one space between columns, no edges,
    so 80 columns hold what they can."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def probe_cell(facts: Facts, counts: bool = True) -> str:
    probe = facts.probe
    if probe is None:
        return "-"
    if probe.outcome is ProbeOutcome.OK:
        return f"ok {1000 * (probe.ok_latency_s or 0):.0f}ms"
    return f"{probe.outcome.value} ({probe.failed_attempts}/{len(probe.attempts)})" if counts else probe.outcome.value


def memory_cell(verdict: Verdict) -> str:
    if verdict.memory_percent is None:
        return "-"
    text = f"{verdict.memory_percent:.0f}%"
    if verdict.memory_slope_per_min is not None and abs(verdict.memory_slope_per_min) >= 0.05:
        text += f" {verdict.memory_slope_per_min:+.1f}/min"
    return text


def worst_first(report: SweepReport) -> list[tuple[Facts, Verdict]]:
    verdicts = {v.instance_id: v for v in report.verdicts}
    rows = [(f, verdicts[f.instance.instance_id]) for f in report.facts]
    return sorted(rows, key=lambda r: (SEVERITY.index(r[1].kind), r[0].instance.instance_id))


def instances_detail(report: SweepReport, opt_out_tag: str) -> list[dict[str, Any]]:
    """Every instance with its verdict: `orch scan` and `orch heal` JSON, worst first."""
    return [
        {
            "instance_id": v.instance_id,
            "name": f.instance.name,
            "az": f.instance.availability_zone,
            "state": f.instance.state,
            "status_checks": f.status.label() if f.status else None,
            "probe": f.probe.outcome.value if f.probe else None,
            "probe_latency_ms": round(1000 * f.probe.ok_latency_s, 1) if f.probe and f.probe.ok_latency_s is not None else None,
            "memory_percent": v.memory_percent,
            "memory_slope_per_min": v.memory_slope_per_min,
            "verdict": v.kind.value,
            "reasons": list(v.reasons),
            "opted_out": opt_out_tag in f.instance.tags,
        }
        for f, v in worst_first(report)
    ]


def fleet_table(report: SweepReport, width: int, opt_out_tag: str) -> Table:
    columns = ["instance", "name", "az", "checks", "ssh", "memory", "verdict"]
    if width < WIDE:
        columns = [c for c in columns if c not in ("az", "checks")]
    if width < MEDIUM:
        columns.remove("name")
    table = grid(f"{len(report.facts)} instances, worst first")
    for column in columns:
        table.add_column(column, no_wrap=column != "name", overflow="ellipsis", max_width=18 if column == "name" else None)
    opted = False
    for facts, verdict in worst_first(report):
        inst = facts.instance
        skip = opt_out_tag in inst.tags
        opted |= skip
        cells = {
            "instance": inst.instance_id,
            "name": inst.name,
            "az": inst.availability_zone,
            "checks": facts.status.label() if facts.status else "-",
            "ssh": probe_cell(facts, counts=width >= MEDIUM),
            "memory": memory_cell(verdict),
            "verdict": f"[{VERDICT_STYLE[verdict.kind]}]{verdict.kind.value}[/]" + (" [dim]*[/]" if skip else ""),
        }
        table.add_row(*(cells[c] for c in columns))
    if opted:
        table.caption = f"* opted out by tag {opt_out_tag}: reported, never acted on"
        table.caption_justify = "left"
    return table


def plan_tables(plan: Plan, outcome_list: Iterable[ActionOutcome] = ()) -> list[Table]:
    tables = []
    outcomes = {o.action.instance_id: o for o in outcome_list}
    if plan.actions:
        table = grid("actions")
        for column in ("instance", "action", "reason", "outcome"):
            table.add_column(column, no_wrap=column in ("instance", "action"))
        for action in plan.actions:
            outcome = outcomes.get(action.instance_id)
            cell = "-" if outcome is None else f"[{OUTCOME_STYLE[outcome.status]}]{outcome.status.value}[/] {outcome.detail}"
            table.add_row(action.instance_id, action.kind.value, action.reason, cell)
        tables.append(table)
    if plan.blocked:
        table = grid("blocked")
        for column in ("instance", "action", "why"):
            table.add_column(column, no_wrap=column in ("instance", "action"))
        for blocked in plan.blocked:
            table.add_row(blocked.instance_id, blocked.kind.value, f"[yellow]{blocked.why}[/]")
        tables.append(table)
    return tables


def print_report(console: Console, report: SweepReport, opt_out_tag: str, show_fleet: bool = True, show_plan: bool = True) -> None:
    if show_fleet:
        console.print(fleet_table(report, console.width, opt_out_tag))
    counts = ", ".join(f"{n} {k}" for k, n in report.verdict_counts().items())
    console.print(f"verdicts: {counts or 'none'}")
    if show_plan:
        for table in plan_tables(report.plan, report.outcomes):
            console.print(table)
        if not report.plan.actions and not report.plan.blocked:
            console.print("nothing to do")
    for note in list(report.plan.notes) + report.notes:
        console.print(f"[yellow]note:[/] {note}")
    calls = sum(report.api_calls.values())
    console.print(f"[dim]{calls} AWS API calls, {report.metrics_requested} metrics requested, sweep {report.sweep_id}[/]")


def stdout_console() -> Console:
    """The plain stdout console, for callers without global options (scripts/bench)."""
    from orchestrator.cli.output import console

    return console()
