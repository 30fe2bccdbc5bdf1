"""Tables for people; JSON for programs. Nothing here decides anything."""

from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.table import Table

from orchestrator.model import ActionOutcome, Facts, OutcomeStatus, Plan, ProbeOutcome, Verdict, VerdictKind
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


def probe_cell(facts: Facts) -> str:
    probe = facts.probe
    if probe is None:
        return "-"
    if probe.outcome is ProbeOutcome.OK:
        return f"ok {1000 * (probe.ok_latency_s or 0):.0f}ms"
    return f"{probe.outcome.value} ({probe.failed_attempts}/{len(probe.attempts)})"


def memory_cell(verdict: Verdict) -> str:
    if verdict.memory_percent is None:
        return "-"
    text = f"{verdict.memory_percent:.0f}%"
    if verdict.memory_slope_per_min is not None and abs(verdict.memory_slope_per_min) >= 0.05:
        text += f" {verdict.memory_slope_per_min:+.1f}/min"
    return text


def fleet_table(report: SweepReport) -> Table:
    table = Table(title=f"{len(report.facts)} instances", title_justify="left")
    for column in ("instance", "name", "az", "status checks", "ssh", "memory", "verdict"):
        table.add_column(column, no_wrap=column in ("instance", "verdict"))
    verdicts = {v.instance_id: v for v in report.verdicts}
    for facts in report.facts:
        inst = facts.instance
        verdict = verdicts[inst.instance_id]
        table.add_row(
            inst.instance_id,
            inst.name,
            inst.availability_zone,
            facts.status.label() if facts.status else "-",
            probe_cell(facts),
            memory_cell(verdict),
            f"[{VERDICT_STYLE[verdict.kind]}]{verdict.kind.value}[/]",
        )
    return table


def plan_tables(plan: Plan, outcome_list: Iterable[ActionOutcome] = ()) -> list[Table]:
    tables = []
    outcomes = {o.action.instance_id: o for o in outcome_list}
    if plan.actions:
        table = Table(title="actions", title_justify="left")
        for column in ("instance", "action", "reason", "outcome"):
            table.add_column(column)
        for action in plan.actions:
            outcome = outcomes.get(action.instance_id)
            cell = "-" if outcome is None else f"[{OUTCOME_STYLE[outcome.status]}]{outcome.status.value}[/] {outcome.detail}"
            table.add_row(action.instance_id, action.kind.value, action.reason, cell)
        tables.append(table)
    if plan.blocked:
        table = Table(title="blocked", title_justify="left")
        for column in ("instance", "action", "why"):
            table.add_column(column)
        for blocked in plan.blocked:
            table.add_row(blocked.instance_id, blocked.kind.value, f"[yellow]{blocked.why}[/]")
        tables.append(table)
    return tables


def print_report(console: Console, report: SweepReport, show_fleet: bool = True, show_plan: bool = True) -> None:
    if show_fleet:
        console.print(fleet_table(report))
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
    """A terminal's own width; piped output gets room for a whole instance row."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
