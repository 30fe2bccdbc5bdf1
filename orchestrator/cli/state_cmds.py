"""`orch status`, `history`, `pause`, `resume`, `release`: the state store, for people."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

import click

from orchestrator.aws import AWS_CALL_ERRORS, AwsError
from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.estate_cmds import estate_history, estate_options, estate_status
from orchestrator.cli.instances import resolve_instance
from orchestrator.cli.render import by_name
from orchestrator.cli.sweep_cmds import no_match
from orchestrator.cli.tables import Column, fitted_table
from orchestrator.cli.who import who
from orchestrator.decide import history as history_step
from orchestrator.decide.chronic import chronic as chronic_condition
from orchestrator.decide.patterns import chronic_patterns
from orchestrator.echo import clip
from orchestrator.model import Facts
from orchestrator.observe import inventory
from orchestrator.state import lease_scope
from orchestrator.state.lease import holder_is_dead
from orchestrator.state.store import ActionStatus, Lease, PauseState

log = logging.getLogger(__name__)


def _when(value: datetime | None) -> str:
    """For people: minutes are enough, and the zone is said."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _minute(value: datetime | None) -> str:
    """A table cell's time: the heading says UTC, so 16 columns."""
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


STATE_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=5, cut=True, min_width=10),  # the last optional column to leave
    Column("failed", "failed probes", drop=4),
    Column("rung", "rung", drop=2),
    Column("action", "last action"),
    Column("at", "at (UTC)", drop=3),
    Column("in_flight", "in flight"),
    Column("quarantined", "quarantined (UTC)"),  # a quarantine needs a person: never left out
    Column("why", "why quarantined", drop=1, cut=True),
)
HISTORY_COLUMNS = (
    Column("when", "when (UTC)"),
    Column("instance", "instance"),
    Column("name", "name", drop=3, cut=True, min_width=10),
    Column("action", "action"),
    Column("status", "status"),
    Column("reason", "reason", drop=2, cut=True, min_width=20),
    Column("detail", "detail / evidence", drop=1, cut=True, min_width=24),
)


def lease_state(lease: Lease | None, now: datetime, dead: Callable[[str], bool] = holder_is_dead) -> str:
    """free, held, expired (past its expiry: the next sweep takes it) or stale (its holder,
    a process of this host, is gone: the next sweep takes it). A record is not a holder:
    a killed `orch heal` leaves its lease behind, and showing it as held would send
    people waiting for nobody."""
    if lease is None:
        return "free"
    if lease.expires_at <= now:
        return "expired"
    return "stale" if dead(lease.owner) else "held"


def lease_text(lease: Lease | None, now: datetime) -> str:
    state = lease_state(lease, now)
    if lease is None or state == "free":
        return "free"
    owner = clip(lease.owner, 80, quote=False)
    if state == "expired":
        return f"free (the lease of {owner} expired at {_when(lease.expires_at)} without being released)"
    if state == "stale":
        return f"free to take ({owner} is no longer running; its lease would have expired at {_when(lease.expires_at)})"
    return f"held by {owner} until {_when(lease.expires_at)}"


PAUSE_REASON_LIMIT = 500  # characters: every sweep repeats the reason in each blocked action and message


def _paused_text(pause: PauseState) -> str:
    """A pause written by an older orch (or by hand) may hold a longer reason: shown cut."""
    reason = clip(pause.reason, PAUSE_REASON_LIMIT, quote=False) if pause.reason else ""
    return f"paused by {clip(pause.by, 100, quote=False)} since {_when(pause.paused_at)}" + (f": {reason}" if reason else "")


@click.command("status")
@estate_options
@common_options
def status_command(runtime: Runtime, regions: str | None, accounts: str | None, role_arn: str | None, parallel: int) -> None:
    """Ladder rung, in-flight actions, quarantine, lease and pause for the selected fleet (--regions: across regions and accounts)."""
    if regions or accounts or role_arn:
        estate_status(runtime, regions or "", accounts, role_arn, parallel)
        return
    settings, store = runtime.settings, runtime.store
    instances = inventory.list_instances(runtime.clients.ec2, settings.selector, vpc_id=settings.vpc_id)
    if not instances:
        raise no_match(runtime)
    histories = store.get_histories(i.instance_id for i in instances)
    scope = lease_scope(runtime.account, runtime.clients.region or "-", settings.vpc_id)
    lease, pause = store.get_lease(scope), store.get_pause()
    sweeps = store.list_sweeps(1)
    selected = {i.instance_id for i in instances}
    # Intents a sweep wrote and never finished (it died): actions possibly taken, which the
    # next sweep will treat as in flight from their time.
    since = datetime.now(timezone.utc) - history_step.retention(settings)
    dangling = [r for r in store.actions_since(since, ActionStatus.INTENT) if r.instance_id in selected]
    names = {i.instance_id: i.name for i in instances}
    notable = sorted(
        (h for h in histories.values() if h.rung or h.in_flight_key or h.quarantined_at or h.failed_probes),
        key=lambda h: by_name(names.get(h.instance_id), h.instance_id),
    )
    now = datetime.now(timezone.utc)
    conditions = {i: c for i, h in histories.items() if (c := chronic_condition(h, now, settings)) is not None}
    found = chronic_patterns([Facts(instance=i) for i in instances], conditions, histories, now) if conditions else []
    chronic = [p.describe(bool(settings.memory.ssm_commands)) for p in found]
    document = {
        "instances": len(instances),
        "chronic": chronic,
        "selector": settings.selector,
        "lease": lease,
        "lease_state": lease_state(lease, now),
        "paused": pause,
        "last_sweep": sweeps[0] if sweeps else None,
        "instances_with_state": notable,
        "intents_without_outcome": dangling,
    }

    def table() -> None:
        console = runtime.console()
        console.print(f"{len(instances)} selected instances ({runtime.selector_text()})")
        runtime.say(f"lease: {lease_text(lease, now)}")
        console.print(f"paused: {'yes, ' + _paused_text(pause) if pause else 'no'}")
        if sweeps:
            last = sweeps[0]
            console.print(f"last sweep: {last.sweep_id} ({last.mode}) at {_when(last.started_at)}{' (partial)' if last.partial else ''}")
        for text in chronic:
            runtime.say(text)
        for r in dangling:
            runtime.say(
                f"{r.instance_id}: {r.action.value} at {_when(r.created_at)} has no recorded outcome (sweep {r.sweep_id} ended before "
                "recording it): it may have been taken; the next sweep treats it as in flight from then"
            )
        if not notable:
            console.print("no instance has failures, actions in flight or quarantine" + (" recorded in its history" if dangling else ""))
            return
        rows = [
            {
                "instance": h.instance_id,
                "name": names.get(h.instance_id) or "-",
                "failed": str(h.failed_probes),
                "rung": str(h.rung),
                "action": h.last_action.value if h.last_action else "-",
                "at": _minute(h.last_action_at),
                "in_flight": "yes" if h.in_flight_key else "-",
                "quarantined": _minute(h.quarantined_at),
                "why": h.quarantine_reason or "-",
            }
            for h in notable
        ]
        console.print(fitted_table("instances with state", STATE_COLUMNS, rows, console.width))

    runtime.emit(document, table)


@click.command("history")
@click.argument("instance", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@estate_options
@common_options
def history_command(
    runtime: Runtime, instance: str | None, limit: int, regions: str | None, accounts: str | None, role_arn: str | None, parallel: int,
) -> None:
    """Actions taken, newest first: all, or one instance's (by id or Name); --regions: across regions and accounts."""
    if regions or accounts or role_arn:
        if instance:
            raise OrchError("give an instance or --regions, not both: an instance lives in one region", Exit.USAGE)
        estate_history(runtime, regions or "", accounts, role_arn, parallel, limit)
        return
    instance_id = resolve_instance(runtime, instance) if instance else None
    records = runtime.store.list_actions(instance_id, limit)

    def table() -> None:
        if not records:
            runtime.say("no actions recorded" + (f" for {instance_id}" if instance_id else ""))
            return
        names = _names(runtime)
        rows = [
            {"when": f"{r.created_at:%Y-%m-%d %H:%M:%S}", "instance": r.instance_id, "name": names.get(r.instance_id) or "-",
             "action": r.action.value, "status": r.status.value,
             "reason": r.reason, "detail": "; ".join(x for x in (r.detail, r.evidence.get("console_summary") or "") if x) or "-"}
            for r in records
        ]
        # The reasons are why this command is read: wrapped whole, never cut (a row may take several lines).
        runtime.console().print(fitted_table(None, HISTORY_COLUMNS, rows, runtime.console().width, wide=True))

    runtime.emit(records, table)


def _names(runtime: Runtime) -> dict[str, str | None]:
    """Names for the table, best effort: the history is the store's and reads without AWS."""
    try:
        return {i.instance_id: i.name for i in inventory.list_instances(runtime.clients.ec2, runtime.settings.selector)}
    except (*AWS_CALL_ERRORS, AwsError) as exc:
        log.info("no names for the history table: %s", exc)
        return {}


@click.command("pause")
@click.option("--reason", default="", help="Shown to every sweep and in `orch status`.")
@click.option("--replace", is_flag=True, help="Replace a pause already in place (its reason, who and since when).")
@common_options
def pause_command(runtime: Runtime, reason: str, replace: bool) -> None:
    """Stop all actions (every sweep reads this flag) until `orch resume`.

    A second `orch pause` keeps the first one's reason, author and time and says so,
    unless --replace.
    """
    if len(reason) > PAUSE_REASON_LIMIT:
        raise OrchError(f"--reason is {len(reason):,} characters; give at most {PAUSE_REASON_LIMIT} (a ticket link says the rest); "
                        "not paused", Exit.USAGE)
    store = runtime.store
    current = store.get_pause()
    if current is not None and not replace:
        runtime.emit(
            {"paused": True, "changed": False, "by": current.by, "since": current.paused_at, "reason": current.reason},
            lambda: runtime.say(f"already {_paused_text(current)}; kept as it is (pass --replace to replace it)"),
        )
        return
    state = PauseState(datetime.now(timezone.utc), who(), reason)
    store.set_pause(state)
    runtime.emit(
        {"paused": True, "changed": True, "by": state.by, "since": state.paused_at, "reason": state.reason, "replaced": current},
        lambda: runtime.say(
            (f"replaced the pause by {current.by} since {_when(current.paused_at)}; " if current else "")
            + f"paused by {state.by}; sweeps still observe and report, but take no action"
        ),
    )


@click.command("resume")
@common_options
def resume_command(runtime: Runtime) -> None:
    """Allow actions again."""
    store = runtime.store
    current = store.get_pause()
    store.set_pause(None)
    runtime.emit(
        {"paused": False, "was_paused": current},
        lambda: runtime.say(f"resumed ({_paused_text(current)})" if current else "not paused; nothing to resume"),
    )


@click.command("release")
@click.argument("instance")
@common_options
def release_command(runtime: Runtime, instance: str) -> None:
    """Take an instance (id or Name) out of quarantine and restart its escalation ladder."""
    instance_id = resolve_instance(runtime, instance)
    store = runtime.store
    current = store.get_histories([instance_id]).get(instance_id)
    if current is None:
        raise OrchError(f"{instance_id}: no state recorded for it (check the id and --state)", Exit.USAGE)
    released = history_step.release(current, datetime.now(timezone.utc))
    store.put_histories([released])
    was_quarantined = current.quarantined_at is not None
    runtime.emit(
        {"instance_id": instance_id, "released": True, "was_quarantined": was_quarantined, "quarantine_reason": current.quarantine_reason},
        lambda: runtime.say(
            f"released {instance_id}" + (f" from quarantine ({current.quarantine_reason})" if was_quarantined else ": it was not quarantined")
            + "; ladder reset to the first rung"
        ),
    )
