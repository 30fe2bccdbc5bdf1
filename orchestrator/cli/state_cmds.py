"""`orch status`, `history`, `pause`, `resume`, `release`: the state store, for people."""

from __future__ import annotations

import getpass
import json
import socket
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import click
from rich.table import Table

from orchestrator import history as history_step
from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.render import stdout_console
from orchestrator.observe import inventory
from orchestrator.state import lease_scope
from orchestrator.state.store import PauseState


def _who() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return socket.gethostname()


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.command("status")
@common_options
def status_command(runtime: Runtime) -> None:
    """Ladder rung, in-flight actions, quarantine, lease and pause for the selected fleet."""
    settings, store = runtime.settings, runtime.store
    instances = inventory.list_instances(runtime.clients.ec2, settings.selector)
    histories = store.get_histories(i.instance_id for i in instances)
    scope = lease_scope("-", runtime.clients.region or "-", settings.selector)
    lease, pause = store.get_lease(scope), store.get_pause()
    sweeps = store.list_sweeps(1)
    notable = [h for h in histories.values() if h.rung or h.in_flight_key or h.quarantined_at or h.failed_probes]
    if runtime.json:
        _echo_json(
            {
                "instances": len(instances),
                "lease": asdict(lease) if lease else None,
                "paused": asdict(pause) if pause else None,
                "last_sweep": asdict(sweeps[0]) if sweeps else None,
                "instances_with_state": [asdict(h) for h in sorted(notable, key=lambda h: h.instance_id)],
            }
        )
        return
    console = stdout_console()
    console.print(f"{len(instances)} selected instances ({', '.join(f'{k}={v}' for k, v in settings.selector.items())})")
    console.print(f"lease: {f'held by {lease.owner} until {_iso(lease.expires_at)} UTC' if lease else 'free'}")
    console.print(f"paused: {f'yes, by {pause.by} since {_iso(pause.paused_at)} UTC: {pause.reason}' if pause else 'no'}")
    if sweeps:
        last = sweeps[0]
        console.print(f"last sweep: {last.sweep_id} ({last.mode}) at {_iso(last.started_at)} UTC{' (partial)' if last.partial else ''}")
    if not notable:
        console.print("no instance has failures, actions in flight or quarantine")
        return
    table = Table(title="instances with state", title_justify="left")
    for column in ("instance", "failed probes", "rung", "last action", "in flight", "quarantined"):
        table.add_column(column)
    for h in sorted(notable, key=lambda h: h.instance_id):
        table.add_row(
            h.instance_id,
            str(h.failed_probes),
            str(h.rung),
            f"{h.last_action.value} {_iso(h.last_action_at)}" if h.last_action else "-",
            "yes" if h.in_flight_key else "-",
            f"{_iso(h.quarantined_at)}: {h.quarantine_reason}" if h.quarantined_at else "-",
        )
    console.print(table)


@click.command("history")
@click.argument("instance_id", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@common_options
def history_command(runtime: Runtime, instance_id: str | None, limit: int) -> None:
    """Actions taken, newest first: all, or one instance's."""
    records = runtime.store.list_actions(instance_id, limit)
    if runtime.json:
        _echo_json([asdict(r) for r in records])
        return
    if not records:
        click.echo("no actions recorded" + (f" for {instance_id}" if instance_id else ""))
        return
    table = Table()
    for column in ("when (UTC)", "instance", "action", "status", "reason", "detail / evidence"):
        table.add_column(column)
    for r in records:
        evidence = r.evidence.get("console_summary") or ""
        table.add_row(_iso(r.created_at), r.instance_id, r.action.value, r.status.value, r.reason, "; ".join(x for x in (r.detail, evidence) if x))
    stdout_console().print(table)


@click.command("pause")
@click.option("--reason", default="", help="Shown to every sweep and in `orch status`.")
@common_options
def pause_command(runtime: Runtime, reason: str) -> None:
    """Stop all actions (every sweep reads this flag) until `orch resume`."""
    state = PauseState(datetime.now(timezone.utc), _who(), reason)
    runtime.store.set_pause(state)
    click.echo(f"paused by {state.by}; sweeps still observe and report, but take no action")


@click.command("resume")
@common_options
def resume_command(runtime: Runtime) -> None:
    """Allow actions again."""
    runtime.store.set_pause(None)
    click.echo("resumed")


@click.command("release")
@click.argument("instance_id")
@common_options
def release_command(runtime: Runtime, instance_id: str) -> None:
    """Take an instance out of quarantine and restart its escalation ladder."""
    store = runtime.store
    current = store.get_histories([instance_id]).get(instance_id)
    if current is None:
        raise OrchError(f"{instance_id}: no state recorded for it (check the id and --state)", Exit.USAGE)
    if current.quarantined_at is None:
        click.echo(f"{instance_id} is not quarantined; ladder reset to the first rung")
    store.put_histories([history_step.release(current, datetime.now(timezone.utc))])
    click.echo(f"released {instance_id}")
