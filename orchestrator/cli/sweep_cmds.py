"""`orch scan` and `orch heal`: thin shells over sweep."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.render import plan_tables, print_report, stdout_console
from orchestrator.model import OutcomeStatus, Plan, VerdictKind
from orchestrator.sweep import Mode, SweepAborted, SweepDeps, SweepReport, sweep


def run_sweep(
    runtime: Runtime,
    mode: Mode,
    dry_run: bool,
    assume_yes: bool,
    wait: float = 0.0,
    only: tuple[str, ...] = (),
    notify: bool = True,
) -> SweepReport:
    err = Console(stderr=True)
    settings = runtime.settings
    status = err.status("starting sweep") if err.is_terminal and not runtime.json else None

    def progress(message: str) -> None:
        if status is not None:
            status.update(message)

    def confirm(plan: Plan) -> bool:
        if status is not None:
            status.stop()
        for table in plan_tables(plan):
            err.print(table)
        return click.confirm(f"take {len(plan.actions)} action(s)?", default=False, err=True)

    interactive = sys.stdin.isatty() and err.is_terminal and not assume_yes
    deps = SweepDeps(
        clients=runtime.clients,
        store=runtime.store,
        progress=progress,
        confirm=confirm if interactive else None,
        lease_wait_seconds=wait,
        only_instances=only,
        notify=notify,
    )
    if status is not None:
        status.start()
    try:
        return sweep(settings, deps, mode=mode, dry_run=dry_run or None)
    except SweepAborted as exc:
        raise OrchError(f"sweep aborted before acting: {exc}", Exit.AWS) from None
    finally:
        if status is not None:
            status.stop()


def exit_code(report: SweepReport) -> Exit:
    if report.mode is Mode.SCAN:
        return Exit.OK if all(v.kind is VerdictKind.HEALTHY for v in report.verdicts) else Exit.UNHEALTHY
    failed = any(o.status in (OutcomeStatus.FAILED, OutcomeStatus.SKIPPED) for o in report.outcomes)
    return Exit.UNHEALTHY if failed or report.plan.blocked or report.partial else Exit.OK


@click.command("scan")
@common_options
def scan_command(runtime: Runtime) -> None:
    """Observe and diagnose the fleet; never acts. Exit 1 if any instance is not healthy."""
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True)
    if runtime.json:
        summary = report.summary()
        summary["instances_detail"] = [
            {
                "instance_id": v.instance_id,
                "name": f.instance.name,
                "az": f.instance.availability_zone,
                "status_checks": f.status.label() if f.status else None,
                "probe": f.probe.outcome.value if f.probe else None,
                "probe_latency_ms": round(1000 * f.probe.ok_latency_s, 1) if f.probe and f.probe.ok_latency_s is not None else None,
                "memory_percent": v.memory_percent,
                "verdict": v.kind.value,
                "reasons": list(v.reasons),
            }
            for f, v in zip(report.facts, report.verdicts)
        ]
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        print_report(stdout_console(), report, show_plan=False)
    sys.exit(int(exit_code(report)))


@click.command("heal")
@click.option("--dry-run", is_flag=True, help="Plan and print; make no mutating call.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask before acting on a terminal.")
@click.option("--wait", type=click.FloatRange(0, 3600), default=0, help="Seconds to wait for another sweep's lease.")
@click.option(
    "--notify/--no-notify",
    default=None,
    help="Send news to the SNS topic (default: yes, except for --dry-run, which tells nobody unless asked).",
)
@common_options
def heal_command(runtime: Runtime, dry_run: bool, assume_yes: bool, wait: float, notify: bool | None) -> None:
    """Observe, diagnose, plan and act: reboot instances that pass status checks but not SSH."""
    tell = (not dry_run) if notify is None else notify
    report = run_sweep(runtime, Mode.HEAL, dry_run=dry_run, assume_yes=assume_yes, wait=wait, notify=tell)
    if runtime.json:
        click.echo(json.dumps(report.summary(), indent=2, default=str))
    else:
        print_report(stdout_console(), report, show_fleet=True)
    sys.exit(int(exit_code(report)))
