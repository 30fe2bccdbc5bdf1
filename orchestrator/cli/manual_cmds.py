"""`orch reboot` and `orch stop-start`: the EC2 console's click, with a sweep's care.

Thin: the request becomes a ``ManualRequest`` and runs as a sweep (``run_sweep``), so
the lease, the pause, evidence capture, the journal, the history and the alerts are
exactly a sweep's; ``orchestrator.decide.manual`` decides whether the rules allow it.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from orchestrator.alerting import notify
from orchestrator.cli import consent
from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.instances import resolve_instance
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.sweep_cmds import ASKS, audit_directory, declined, no_match, run_sweep
from orchestrator.cli.who import who
from orchestrator.decide.manual import FORCEABLE, ManualRequest
from orchestrator.model import ActionKind, OutcomeStatus
from orchestrator.state import audit
from orchestrator.sweep.pipeline import Mode, SweepReport

MANUAL_HELP = """\b
Refused (nothing is done) when:
  - not on a terminal and --yes is not given (on a terminal it asks);
  - orch is paused (`orch resume` first), or another sweep holds the lease;
  - the instance is not running, or cannot take the action (a stop/start
    of an instance-store or Auto Scaling instance);
  - the circuit breaker, a network fault, a budget, quarantine, an action
    awaiting verification or the opt-out tag would hold a sweep back:
    unless --force --reason TEXT, and the reason is kept in the action's
    record and its history.

\b
Exit codes: 0 done (or, with --dry-run, would be done); 1 refused, failed
or not confirmed, or a webhook did not take the news; 2 bad usage; 3 AWS;
4 lease held; 5 state store."""

OK_OUTCOMES = frozenset({OutcomeStatus.DONE, OutcomeStatus.DRY_RUN})


def manual_options(func: Any) -> Any:
    for option in reversed(
        (
            click.argument("instance"),
            click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask (needed when not on a terminal)."),
            click.option("--dry-run", is_flag=True, help="Check the rules and say what would be done; make no mutating call."),
            click.option("--force", is_flag=True, help="Act past the breaker, a budget or quarantine (needs --reason)."),
            click.option("--reason", help="Why --force: kept in the action's record and history."),
            click.option("--wait", type=FiniteFloat(0, 3600), default=0, help="Seconds to wait for another sweep's lease."),
            click.option("--notify/--no-notify", default=None, help="Tell SNS and the webhooks (default: yes, not for --dry-run)."),
        )
    ):
        func = option(func)
    return func


def outcome_document(report: SweepReport, request: ManualRequest) -> dict[str, Any]:
    """The JSON of `orch reboot -o json`: what was asked, what became of it, and the sweep's record."""
    summary = report.summary()
    action = next(iter(report.plan.actions), None)
    outcome = next(iter(report.outcomes), None)
    blocked = next(iter(report.plan.blocked), None)
    if outcome is not None:
        status = outcome.status.value
    elif blocked is not None:
        status = "refused"
    else:
        status = "not-run"
    return {
        "instance_id": request.instance_id,
        "action": request.kind.value,
        "outcome": status,
        "detail": outcome.detail if outcome is not None else (blocked.why if blocked is not None else ""),
        "rule": blocked.rule.value if blocked is not None else None,
        "forceable": blocked.rule in FORCEABLE if blocked is not None else None,
        "reason": action.reason if action is not None else None,
        "requested_by": request.requested_by,
        "force_reason": request.force_reason,
        "forced": action.forced if action is not None else "",
        "dry_run": report.dry_run,
        "evidence": report.evidence.get(request.instance_id),
        "sweep_id": report.sweep_id,
        "started_at": summary["started_at"],
        "finished_at": summary["finished_at"],
        "notified": summary["notified"],
        "notes": summary["notes"],
    }


def run_manual(
    runtime: Runtime,
    kind: ActionKind,
    instance: str,
    assume_yes: bool,
    dry_run: bool,
    force: bool,
    reason: str | None,
    wait: float,
    tell: bool | None,
) -> None:
    if force and not (reason and reason.strip()):
        raise click.UsageError("--force needs --reason TEXT: say why the rule is passed (it is recorded)")
    if reason is not None and not force:
        raise click.UsageError("--reason goes with --force (the reason a rule is passed)")
    consent.require(ASKS[kind], assume_yes, dry_run)  # before any AWS call: off a terminal, --yes or nothing
    instance_id = resolve_instance(runtime, instance)
    request = ManualRequest(instance_id, kind, who(), reason.strip() if force and reason else None)
    notify_on = (not dry_run) if tell is None else tell
    report = run_sweep(runtime, Mode.HEAL, dry_run=dry_run, assume_yes=assume_yes, wait=wait, notify=notify_on, manual=request)
    if not report.facts:
        raise no_match(runtime)
    document = outcome_document(report, request)
    runtime.emit(document, lambda: _say(runtime, report, document, dry_run))
    if report.record_error is not None:
        summary = report.summary()
        kept = audit.write_file(summary, audit_directory())
        raise OrchError(f"state store: {report.record_error}; {audit.done_before(summary)}; what was done is written to {kept}", Exit.STATE)
    done = bool(report.outcomes) and all(o.status in OK_OUTCOMES for o in report.outcomes) and not declined(report, dry_run)
    sys.exit(int(Exit.OK if done and not report.delivery_failed else Exit.UNHEALTHY))


def _say(runtime: Runtime, report: SweepReport, document: dict[str, Any], dry_run: bool) -> None:
    if declined(report, dry_run):
        runtime.say(consent.DECLINED)
    elif report.plan.actions:
        runtime.say(notify.action_line(report, report.plan.actions[0]))
    else:
        runtime.say(f"refused: {document['instance_id']} {document['action']}: {document['detail']}")
    for delivery in report.deliveries:
        if not delivery.delivered:
            runtime.say(f"webhook {delivery.target} not delivered: {delivery.error}")


@click.command("reboot", epilog=MANUAL_HELP)
@manual_options
@common_options
def reboot_command(runtime: Runtime, instance: str, assume_yes: bool, dry_run: bool, force: bool, reason: str | None, wait: float, notify: bool | None) -> None:
    """Reboot INSTANCE (an id or a Name) as a sweep would: lease, pause, evidence, history, alerts."""
    run_manual(runtime, ActionKind.REBOOT, instance, assume_yes, dry_run, force, reason, wait, notify)


@click.command("stop-start", epilog=MANUAL_HELP)
@manual_options
@common_options
def stop_start_command(
    runtime: Runtime, instance: str, assume_yes: bool, dry_run: bool, force: bool, reason: str | None, wait: float, notify: bool | None
) -> None:
    """Stop and start INSTANCE (an id or a Name; EBS-backed, not in an Auto Scaling group) as a sweep would."""
    run_manual(runtime, ActionKind.STOP_START, instance, assume_yes, dry_run, force, reason, wait, notify)
