"""`orch scan` and `orch heal`: thin shells over sweep."""

from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from orchestrator.cli import consent
from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.estate_cmds import estate_options, estate_scan
from orchestrator.cli.options import EXIT_HELP
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.render import instances_detail, plan_tables, print_report, report_names
from orchestrator.decide.manual import ManualRequest
from orchestrator.model import ActionKind, BlockRule, OutcomeStatus, VerdictKind
from orchestrator.observe.metrics import DimensionCache
from orchestrator.observe.probe import probe_fleet
from orchestrator.state import audit, default_state_path
from orchestrator.state.store import StateError
from orchestrator.sweep.pipeline import Mode, SweepAborted, SweepDeps, SweepReport, sweep

# Blocks that are orch doing its job (waiting, or told to keep out), not a failure.
NOT_FAILURES = frozenset(rule for rule in BlockRule if rule.expected)
FAILED_OUTCOMES = frozenset({OutcomeStatus.FAILED, OutcomeStatus.SKIPPED})




def heal_exit(report: SweepReport) -> Exit:
    """`orch heal`'s exit code: 1 only for what needs a person (see EXIT_HELP)."""
    if not report.facts or report.partial:
        return Exit.UNHEALTHY
    if any(o.status in FAILED_OUTCOMES for o in report.outcomes):
        return Exit.UNHEALTHY
    if report.delivery_failed:
        return Exit.UNHEALTHY
    if any(b.rule not in NOT_FAILURES for b in report.plan.blocked):
        return Exit.UNHEALTHY
    return Exit.OK


def scan_exit(report: SweepReport, opt_out_tag: str) -> Exit:
    """`orch scan`'s exit code: 1 if an instance that is not opted out is not healthy."""
    opted = {f.instance.instance_id for f in report.facts if opt_out_tag in f.instance.tags}
    if not report.facts:
        return Exit.UNHEALTHY
    sick = [v for v in report.verdicts if v.kind is not VerdictKind.HEALTHY and v.instance_id not in opted]
    return Exit.UNHEALTHY if sick else Exit.OK


class SweepProgress:
    """A live line on stderr (terminal only): the phase, and n/N for probing and metric reads."""

    def __init__(self, err: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True,
        )
        self.phase = self.progress.add_task("starting sweep", total=None)
        self.counted: dict[str, TaskID] = {}

    def message(self, text: str) -> None:
        self.progress.update(self.phase, description=text)

    def counter(self, label: str) -> Callable[[int, int], None]:
        def count(done: int, total: int) -> None:
            task = self.counted.get(label)
            if task is None:
                task = self.counted[label] = self.progress.add_task(label, total=total)
            self.progress.update(task, completed=done, total=total)

        return count

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def run_sweep(
    runtime: Runtime,
    mode: Mode,
    dry_run: bool,
    assume_yes: bool,
    wait: float = 0.0,
    only: tuple[str, ...] = (),
    notify: bool = True,
    show_progress: bool = True,
    record: bool = True,
    dimension_cache: DimensionCache | None = None,
    manual: ManualRequest | None = None,
) -> SweepReport:
    """One sweep for a command. ``show_progress``: the live line on stderr (on a terminal);
    ``record``: write the sweep record; ``dimension_cache``: kept across sweeps (orch top)."""
    err = runtime.console(stderr=True)
    runtime.acting = mode is Mode.HEAL and not dry_run
    store = runtime.store  # first: beside a deployed healer it decides the store, VPC and lease scope
    settings = runtime.settings
    live = SweepProgress(err) if show_progress and err.is_terminal and not runtime.json else None

    def confirm(shown: SweepReport) -> bool:
        if live is not None:
            live.progress.stop()
        for table in plan_tables(shown.plan, width=err.width, names=report_names(shown), wide=True):
            err.print(table)
        try:
            yes = click.confirm(f"take {len(shown.plan.actions)} action(s)?", default=False, err=True)
        except click.Abort:  # Ctrl-C or EOF at the prompt: declined, then orch exits 130 (cli.OrchGroup)
            asked.interrupted = True
            return False
        asked.declined = not yes
        return yes

    asked = Asked()
    interactive = not dry_run and consent.require(ASKS[mode if manual is None else manual.kind], assume_yes, dry_run) \
        if mode is Mode.HEAL else False
    # On a terminal: the phase, and n/N while probing and reading metrics.
    shown: dict[str, Any] = {} if live is None else {
        "prober": functools.partial(probe_fleet, progress=live.counter("probing SSH")),
        "progress": live.message,
        "metric_progress": live.counter("reading memory"),
    }
    deps = SweepDeps(
        clients=runtime.clients,
        store=store,
        confirm=confirm if interactive else None,
        account=runtime.account,
        lease_wait_seconds=wait,
        only_instances=only,
        notify=notify,
        record_sweep=record,
        manual=manual,
        **shown,
        **({} if dimension_cache is None else {"dimension_cache": dimension_cache}),
    )
    try:
        with live if live is not None else contextlib.nullcontext():
            report = sweep(settings, deps, mode=mode, dry_run=dry_run or None)
    except SweepAborted as exc:
        raise OrchError(f"sweep aborted before acting: {exc}", Exit.AWS) from None
    if asked.interrupted:
        raise KeyboardInterrupt  # nothing was done; Ctrl-C's exit (130) once the sweep has let go of its lease
    return report


@dataclass
class Asked:
    """What became of the question at the terminal."""

    interrupted: bool = False


# What each way in would do, for the refusal off a terminal.
ASKS: dict[object, str] = {
    Mode.HEAL: "orch heal would act on the instances it finds unhealthy",
    ActionKind.REBOOT: "orch reboot would reboot the instance",
    ActionKind.STOP_START: "orch stop-start would stop and start the instance",
}


def declined(report: SweepReport, dry_run: bool) -> bool:
    """The person said no at the prompt: the sweep asked to act ran as a dry run (see SweepDeps.confirm)."""
    return report.mode is Mode.HEAL and report.dry_run and not dry_run


def no_match(runtime: Runtime) -> OrchError:
    """A selector or region that matches nothing is a mistake to point out, not an empty table."""
    region = runtime.clients.region or "-"
    return OrchError(
        f"no instance matches the selector {runtime.selector_text()} in region {region}: "
        "check --selector (tag KEY=VALUE, e.g. orch:managed=true), --region and --profile",
        Exit.UNHEALTHY,
    )


def sweep_document(runtime: Runtime, report: SweepReport) -> dict[str, Any]:
    """The JSON shared by `orch scan` and `orch heal`: the sweep summary plus every instance."""
    summary = report.summary()
    for entry, blocked in zip(summary["blocked"], report.plan.blocked):
        entry["rule"] = blocked.rule.value
        entry["counts_as_failure"] = blocked.rule not in NOT_FAILURES
    summary["instances_detail"] = instances_detail(report, runtime.settings.opt_out_tag)
    return summary


@click.command("scan", epilog=EXIT_HELP)
@estate_options
@common_options
def scan_command(runtime: Runtime, regions: str | None, accounts: str | None, role_arn: str | None, parallel: int) -> None:
    """Observe and diagnose the fleet; never acts. Exit 1 if an instance (not opted out) is unhealthy."""
    if regions or accounts or role_arn:
        estate_scan(runtime, regions or "", accounts, role_arn, parallel)
        return
    report = run_sweep(runtime, Mode.SCAN, dry_run=True, assume_yes=True)
    if not report.facts:
        raise no_match(runtime)
    opt_out = runtime.settings.opt_out_tag
    runtime.emit(sweep_document(runtime, report), lambda: print_report(runtime.console(), report, opt_out, show_plan=False))
    sys.exit(int(scan_exit(report, opt_out)))


@click.command("heal", epilog=EXIT_HELP)
@click.option("--dry-run", is_flag=True, help="Plan and print; make no mutating call.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Act without asking (needed off a terminal).")
@click.option("--wait", type=FiniteFloat(0, 3600), default=0, help="Seconds to wait for another sweep's lease.")
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
    if not report.facts:
        raise no_match(runtime)
    opt_out = runtime.settings.opt_out_tag
    runtime.emit(sweep_document(runtime, report), lambda: print_report(runtime.console(), report, opt_out))
    if declined(report, dry_run):
        sys.exit(int(Exit.UNHEALTHY))  # you said no: the job is not done (the report above is the dry run)
    if report.record_error is not None:
        summary = report.summary()
        kept = audit.write_file(summary, audit_directory())
        raise OrchError(
            f"state store: {report.record_error}; {audit.done_before(summary)}; what was done is written to {kept}",
            Exit.STATE,
        )
    sys.exit(int(heal_exit(report)))


def audit_directory() -> Path | None:
    try:
        return default_state_path().parent / "audit"
    except StateError:
        return None
