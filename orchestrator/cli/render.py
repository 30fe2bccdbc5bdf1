"""A sweep's report for people (tables) and for programs (JSON). Nothing here decides anything.

The fleet table leaves out AZ, then status checks, then the name, as every table fits
the terminal (orchestrator.cli.tables); rows are worst first, so the sick boxes are
together at the top, and an opted-out instance is marked as such. Named instances come
in the order people find them (``by_name``: crawler-2 before crawler-10).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from rich.console import Console, RenderableType
from rich.text import Text

from orchestrator.cli.tables import Cell, Column, fitted_table, styled
from orchestrator.decide.patterns import SEVERITY  # worst first: what needs a look leads the table
from orchestrator.model import ActionOutcome, Facts, OutcomeStatus, Plan, ProbeOutcome, Verdict, VerdictKind
from orchestrator.sweep.pipeline import SweepReport

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


def natural_key(text: str) -> list[int | str]:
    """crawler-2 before crawler-10: digit runs compare as numbers (types align: split keeps
    text, number, text... in the same places)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def by_name(name: str | None, instance_id: str) -> tuple[int, list[int | str], str]:
    """The order people find instances in: named ones by name, naturally; then the unnamed by id."""
    return (0, natural_key(name), instance_id) if name else (1, [], instance_id)


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
    return sorted(rows, key=lambda r: (SEVERITY.index(r[1].kind), by_name(r[0].instance.name, r[0].instance.instance_id)))


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


FLEET_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=7, cut=True, min_width=10),  # the last to leave: people know boxes by name
    Column("az", "az", drop=1),
    Column("checks", "checks", drop=2),
    Column("ssh", "ssh", drop=5),
    Column("tries", "failed", drop=4),
    Column("memory", "memory", drop=6),
    Column("verdict", "verdict"),
)


def fleet_table(report: SweepReport, width: int, opt_out_tag: str) -> RenderableType:
    rows = []
    opted = False
    for facts, verdict in worst_first(report):
        inst = facts.instance
        skip = opt_out_tag in inst.tags
        opted |= skip
        probe = facts.probe
        rows.append({
            "instance": inst.instance_id,
            "name": inst.name or "-",
            "az": inst.availability_zone or "-",
            "checks": facts.status.label() if facts.status else "-",
            "ssh": probe_cell(facts, counts=False),
            "tries": f"{probe.failed_attempts}/{len(probe.attempts)}" if probe and probe.outcome is not ProbeOutcome.OK else "-",
            "memory": memory_cell(verdict),
            "verdict": Text.assemble((verdict.kind.value, VERDICT_STYLE[verdict.kind]), (" *", "dim") if skip else ""),
        })
    notes = [f"* opted out by tag {opt_out_tag}: reported, never acted on"] if opted else []
    return fitted_table(f"{len(report.facts)} instances, worst first", FLEET_COLUMNS, rows, width, notes)


ACTION_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=2, cut=True, min_width=10),
    Column("action", "action"),
    Column("reason", "reason", drop=1, cut=True),
    Column("outcome", "outcome", cut=True, min_width=16),
)
BLOCKED_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=1, cut=True, min_width=10),
    Column("action", "action"),
    Column("why", "why", cut=True, min_width=16),
)


def plan_tables(plan: Plan, outcome_list: Iterable[ActionOutcome] = (), width: int = 80, names: Mapping[str, str | None] | None = None,
                wide: bool | None = None) -> list[RenderableType]:
    """The actions and the blocked ones, each with its instance's Name; ``wide``: reasons whole."""
    tables: list[RenderableType] = []
    named = names or {}
    outcomes = {o.action.instance_id: o for o in outcome_list}
    if plan.actions:
        rows = []
        for action in sorted(plan.actions, key=lambda a: by_name(named.get(a.instance_id), a.instance_id)):
            outcome = outcomes.get(action.instance_id)
            cell: Cell = "-" if outcome is None else Text.assemble((outcome.status.value, OUTCOME_STYLE[outcome.status]), f" {outcome.detail}")
            rows.append({"instance": action.instance_id, "name": named.get(action.instance_id) or "-", "action": action.kind.value,
                         "reason": action.reason, "outcome": cell})
        columns = ACTION_COLUMNS if outcomes else tuple(c for c in ACTION_COLUMNS if c.key != "outcome")  # asked before acting: none yet
        tables.append(fitted_table("actions", columns, rows, width, wide=wide))
    if plan.blocked:
        rows = [{"instance": b.instance_id, "name": named.get(b.instance_id) or "-", "action": b.kind.value, "why": styled(b.why, "yellow")}
                for b in sorted(plan.blocked, key=lambda b: by_name(named.get(b.instance_id), b.instance_id))]
        tables.append(fitted_table("blocked", BLOCKED_COLUMNS, rows, width, wide=wide))
    return tables


def report_names(report: SweepReport) -> dict[str, str | None]:
    return {f.instance.instance_id: f.instance.name for f in report.facts}


def print_report(console: Console, report: SweepReport, opt_out_tag: str, show_fleet: bool = True, show_plan: bool = True) -> None:
    if show_fleet:
        console.print(fleet_table(report, console.width, opt_out_tag))
    counts = ", ".join(f"{n} {k}" for k, n in report.verdict_counts().items())
    console.print(f"verdicts: {counts or 'none'}")
    if show_plan:
        for table in plan_tables(report.plan, report.outcomes, console.width, report_names(report)):
            console.print(table)
        if not report.plan.actions and not report.plan.blocked:
            console.print("nothing to do")
    for note in list(report.plan.notes) + report.notes:
        console.print(Text.assemble(("note:", "yellow"), f" {note}"))
    calls = sum(report.api_calls.values())
    console.print(styled(f"{calls} AWS API calls, {report.metrics_requested} metrics requested, sweep {report.sweep_id}", "dim"))


def stdout_console() -> Console:
    """The plain stdout console, for callers without global options (scripts/bench)."""
    from orchestrator.cli.output import console

    return console()
