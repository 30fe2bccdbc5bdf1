"""`orch simulate`: orch's own sweep over simulated days, against a named fleet, with your settings."""

from __future__ import annotations

import sys

import click
from rich.console import RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from orchestrator.cli.common import Runtime, common_options
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.tables import Column, fitted_table, styled
from orchestrator.simulate import BY_NAME, SCENARIOS, Figures, Policy, simulate
from orchestrator.simulate.checks import against_the_limits
from orchestrator.simulate.conditions import Conditions, overridden
from orchestrator.simulate.run import combine


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


FIGURE_COLUMNS = (  # left out least telling first; the scenario, its policy, SSH up and the expectation stay
    Column("scenario", "scenario"),
    Column("policy", "policy"),
    Column("availability", "SSH up", right=True),
    Column("wedged", "wedged h", drop=5, right=True),
    Column("actions", "actions", drop=8),
    Column("on_fine", "on fine", drop=7, right=True),
    Column("quarantined", "quar.", drop=6, right=True),
    Column("chronic", "chronic", drop=3, right=True),
    Column("messages", "msgs", drop=1, right=True),
    Column("down_to_action", "down→act min", drop=4, right=True),
    Column("max_per_hour", "max/h", drop=2, right=True),
    Column("expectation", "expectation", cut=True, min_width=16),  # "met", "baseline" or what was not met (said in full below)
)


def figures_table(rows: list[tuple[Figures, list[str]]], width: int = 120, unjudged: dict[str, str] | None = None) -> RenderableType:
    cells = []
    for f, violations in rows:
        verdict = styled("met", "green") if not violations else styled("; ".join(violations), "bold red")
        if not violations and f.policy is Policy.ORCH and (unjudged or {}).get(f.scenario):
            verdict = styled("met so far (" + (unjudged or {})[f.scenario] + ")", "yellow")
        if f.policy is not Policy.ORCH:
            verdict = styled("baseline", "dim")
        cells.append({
            "scenario": f.scenario, "policy": f.policy.value, "availability": _percent(f.availability), "wedged": f"{f.wedged_box_hours:.1f}",
            "actions": ", ".join(f"{n} {k}" for k, n in f.actions.items()) or "0", "on_fine": str(f.on_fine_boxes),
            "quarantined": str(f.quarantined), "chronic": str(f.chronic), "messages": str(f.messages),
            "down_to_action": f"{_minutes(f.down_to_action_median_min)}/{_minutes(f.down_to_action_p95_min)}",
            "max_per_hour": str(f.max_actions_in_an_hour), "expectation": verdict,
        })
    notes = ["down→act: minutes from SSH failing to the action (median/p95); max/h: most actions in any hour"]
    return fitted_table(None, FIGURE_COLUMNS, cells, width, notes)


LIST_COLUMNS = (
    Column("scenario", "scenario"),
    Column("instances", "boxes", right=True),
    Column("summary", "what happens", cut=True, min_width=16),
    Column("expect", "orch is expected to", cut=True, min_width=16),
)


def _minutes_range(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    """'8-10' or '5' (minutes) as seconds; None: the scenario's own."""
    if value is None:
        return None
    low, _, high = value.partition("-")
    try:
        lo, hi = float(low), float(high or low)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not minutes like 5 or 8-10") from None
    if not (0 <= lo <= hi <= 120):
        raise click.BadParameter(f"{value!r}: need 0 <= low <= high <= 120 minutes")
    return lo * 60, hi * 60


POLICIES = (Policy.ORCH, Policy.NOBODY, Policy.REACTIVE, Policy.ORACLE, Policy.NAIVE)


@click.command("simulate")
@click.option("--scenario", "names", multiple=True, type=click.Choice(["all", *(s.name for s in SCENARIOS)]), default=("chronic-leak",),
              show_default=True, metavar="NAME", help="Fleet to simulate (--list shows them); repeat it, or 'all'.")
@click.option("--hours", type=FiniteFloat(0.5, 24 * 30), default=24.0, show_default=True, help="Simulated hours.")
@click.option("--instances", type=click.IntRange(1, 2000), default=None, help="Fleet size (default: the scenario's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same fleet, same day.")
@click.option("--seeds", type=click.IntRange(1, 50), default=1, show_default=True,
              help="Run this many seeds from --seed on and show their mean (the worst seed's SSH up in JSON).")
@click.option("--baselines", is_flag=True,
              help="Also run, on the same fleet: nobody acting, a perfect reactive rebooter, an oracle rebooting 5 min "
                   "ahead of each wedge, and the naive reboot-what-fails script.")
@click.option("--boot-minutes", callback=_minutes_range, help="Boot time range for every box, e.g. 8-10 (default: the scenario's).")
@click.option("--metric-delay-minutes", callback=_minutes_range,
              help="How late the agent's points reach CloudWatch, e.g. 1-3 (default: the scenario's).")
@click.option("--lost-points", type=FiniteFloat(0, 0.9), default=None, help="Share of the agent's points lost, e.g. 0.05.")
@click.option("--sawtooth", type=FiniteFloat(0, 30), default=None, help="GC sawtooth on memory, +- percentage points.")
@click.option("--agents", type=FiniteFloat(0, 1), default=None, help="Share of boxes with the CloudWatch agent, e.g. 0.5.")
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and what each expects, then exit.")
@common_options
def simulate_command(runtime: Runtime, names: tuple[str, ...], hours: float, instances: int | None, seed: int, seeds: int,
                     baselines: bool, boot_minutes: tuple[float, float] | None, metric_delay_minutes: tuple[float, float] | None,
                     lost_points: float | None, sawtooth: float | None, agents: float | None, list_only: bool) -> None:
    """Judge your settings over simulated days before they meet a fleet.

    Runs orch's own sweep (diagnose, history, plan, lease, journal, executor, alerts)
    against a simulated fleet in simulated time: minutes of wall time for days of fleet
    time. Reads --config and ORCH_* like every command; needs no AWS. Exit 1 if a
    scenario's expectation was not met (zero actions on a network fault, no quarantine
    of a chronic leak, budgets kept, SSH up beside the baselines...).
    """
    if list_only:
        listed = [{"scenario": s.name, "instances": s.instances, "summary": s.summary, "expect": s.expect} for s in SCENARIOS]
        runtime.emit(listed, lambda: runtime.console().print(fitted_table(None, LIST_COLUMNS, [
            {**row, "instances": str(row["instances"])} for row in listed], runtime.console().width, wide=True)))
        return
    settings = runtime.settings
    chosen = SCENARIOS if "all" in names else tuple(BY_NAME[n] for n in dict.fromkeys(names))
    policies = POLICIES if baselines else (Policy.ORCH,)
    changes = {"boot_seconds": boot_minutes, "metric_delay_seconds": metric_delay_minutes, "lost_share": lost_points,
               "sawtooth_percent": sawtooth, "agent_share": agents}
    err = runtime.console(stderr=True)
    rows: list[tuple[Figures, list[str]]] = []
    used: dict[str, Conditions] = {}
    show = err.is_terminal and not runtime.json
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TextColumn("sweeps"), TimeElapsedColumn(),
                  console=err, disable=not show, transient=True) as bar:
        for scenario in chosen:
            conditions = used[scenario.name] = overridden(scenario.conditions, **changes)
            by_policy: dict[Policy, Figures] = {}
            violations: list[str] = []
            for policy in policies:
                runs = []
                for n in range(seed, seed + seeds):
                    task = bar.add_task(f"{scenario.name} ({policy.value}, seed {n}, {hours:g} h)", total=None)

                    def tick(done: int, total: int, task: int = task) -> None:
                        bar.update(task, completed=done, total=total)

                    figures = simulate(scenario, settings, hours, seed=n, instances=instances, policy=policy, progress=tick,
                                       conditions=conditions)
                    bar.remove_task(task)
                    if policy is Policy.ORCH:
                        violations += [v for v in scenario.violations(figures, settings) if v not in violations]
                    runs.append(figures)
                by_policy[policy] = combine(runs)
            if scenario.wedges:
                violations += against_the_limits(by_policy[Policy.ORCH], by_policy.get(Policy.REACTIVE), by_policy.get(Policy.ORACLE))
            rows += [(f, violations if f.policy is Policy.ORCH else []) for f in by_policy.values()]
    failed = any(v for _, v in rows)
    unjudged = {f.scenario: text for f, _ in rows if f.policy is Policy.ORCH and (text := BY_NAME[f.scenario].unjudged(f, settings))}
    document = [{**f.as_dict(), "conditions": used[f.scenario].describe(), "expectation": BY_NAME[f.scenario].expect, "violations": v,
                 "not_judged": unjudged.get(f.scenario) if f.policy is Policy.ORCH else None} for f, v in rows]

    def table() -> None:
        out = runtime.console()
        seeds_text = f"seed {seed}" if seeds == 1 else f"seeds {seed}-{seed + seeds - 1} (means)"
        out.print(f"{hours:g} simulated hours, {seeds_text}, sweeps every {settings.sweep_interval_minutes:g} min")
        out.print(figures_table(rows, out.width, unjudged))
        for name, conditions in used.items():
            if conditions != Conditions():
                out.print(styled(f"{name}: {conditions.describe()}", "dim"))
        for f, violations in rows:
            for text in f.chronic_text[:1]:
                out.print(Text.assemble((f.scenario, "bold"), f": {text}"))
            if f.guard:
                out.print(Text.assemble((f.scenario, "bold"), f": {f.guard}"))
            if f.scenario in unjudged and f.policy is Policy.ORCH:
                out.print(Text.assemble((f"{f.scenario}: expectation {BY_NAME[f.scenario].expect!r}", "yellow"), f" {unjudged[f.scenario]}"))
            if violations:
                out.print(Text.assemble((f"{f.scenario}: expectation not met", "bold red"), f" ({BY_NAME[f.scenario].expect}): {'; '.join(violations)}"))

    runtime.emit(document, table)
    sys.exit(1 if failed else 0)
