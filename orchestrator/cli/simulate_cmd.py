"""`orch simulate`: orch's own sweep over simulated days, against a named fleet, with your settings."""

from __future__ import annotations

import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from orchestrator.cli.common import Runtime, common_options
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.render import Column, fitted_table, styled
from orchestrator.simulate import BY_NAME, SCENARIOS, Figures, Policy, simulate


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


def figures_table(rows: list[tuple[Figures, list[str]]], width: int = 120, unjudged: dict[str, str] | None = None) -> Table:
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


@click.command("simulate")
@click.option("--scenario", "names", multiple=True, type=click.Choice(["all", *(s.name for s in SCENARIOS)]), default=("chronic-leak",),
              show_default=True, help="Fleet to simulate; repeat it, or 'all'.")
@click.option("--hours", type=FiniteFloat(0.5, 24 * 30), default=24.0, show_default=True, help="Simulated hours.")
@click.option("--instances", type=click.IntRange(1, 2000), default=None, help="Fleet size (default: the scenario's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same fleet, same day.")
@click.option("--baselines", is_flag=True,
              help="Also run, on the same fleet: nobody acting, a perfect reactive rebooter, and the naive reboot-what-fails script.")
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and what each expects, then exit.")
@common_options
def simulate_command(runtime: Runtime, names: tuple[str, ...], hours: float, instances: int | None, seed: int, baselines: bool,
                     list_only: bool) -> None:
    """Judge your settings over simulated days before they meet a fleet.

    \b
    Runs orch's own sweep (diagnose, history, plan, lease, journal, executor, alerts)
    against a simulated fleet in simulated time: minutes of wall time for days of fleet
    time. Reads --config and ORCH_* like every command; needs no AWS. Exit 1 if a
    scenario's expectation was not met (zero actions on a network fault, no quarantine
    of a chronic leak, budgets kept...).
    """
    if list_only:
        listed = [{"name": s.name, "summary": s.summary, "instances": s.instances, "expect": s.expect} for s in SCENARIOS]
        runtime.emit(listed, lambda: [click.echo(f"{s.name:16} {s.summary} ({s.instances} instances). Expect: {s.expect}") for s in SCENARIOS])
        return
    settings = runtime.settings
    chosen = SCENARIOS if "all" in names else tuple(BY_NAME[n] for n in dict.fromkeys(names))
    policies = (Policy.ORCH, Policy.NOBODY, Policy.REACTIVE, Policy.NAIVE) if baselines else (Policy.ORCH,)
    err = runtime.console(stderr=True)
    rows: list[tuple[Figures, list[str]]] = []
    show = err.is_terminal and not runtime.json
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TextColumn("sweeps"), TimeElapsedColumn(),
                  console=err, disable=not show, transient=True) as bar:
        for scenario in chosen:
            for policy in policies:
                task = bar.add_task(f"{scenario.name} ({policy.value}, {hours:g} h)", total=None)

                def tick(done: int, total: int, task: int = task) -> None:
                    bar.update(task, completed=done, total=total)

                figures = simulate(scenario, settings, hours, seed=seed, instances=instances, policy=policy, progress=tick)
                bar.remove_task(task)
                violations = scenario.violations(figures, settings) if policy is Policy.ORCH else []
                rows.append((figures, violations))
    failed = any(v for _, v in rows)
    unjudged = {f.scenario: text for f, _ in rows if f.policy is Policy.ORCH and (text := BY_NAME[f.scenario].unjudged(f, settings))}
    document = [{**f.as_dict(), "expectation": BY_NAME[f.scenario].expect, "violations": v,
                 "not_judged": unjudged.get(f.scenario) if f.policy is Policy.ORCH else None} for f, v in rows]

    def table() -> None:
        out = runtime.console()
        out.print(f"{hours:g} simulated hours, seed {seed}, sweeps every {settings.sweep_interval_minutes:g} min")
        out.print(figures_table(rows, out.width, unjudged))
        for f, violations in rows:
            for text in f.chronic_text[:1]:
                out.print(Text.assemble((f.scenario, "bold"), f": {text}"))
            if f.scenario in unjudged and f.policy is Policy.ORCH:
                out.print(Text.assemble((f"{f.scenario}: expectation {BY_NAME[f.scenario].expect!r}", "yellow"), f" {unjudged[f.scenario]}"))
            if violations:
                out.print(Text.assemble((f"{f.scenario}: expectation not met", "bold red"), f" ({BY_NAME[f.scenario].expect}): {'; '.join(violations)}"))

    runtime.emit(document, table)
    sys.exit(1 if failed else 0)
