"""`orch status|history|scan --regions a,b [--accounts 1,2 --role-arn TEMPLATE] [--parallel N]`.

The fan-out is orchestrator.estate.accounts; this module is what each place reads and how the
rows are shown: one table, each row naming its account, region and VPC, fitted to the
terminal by orchestrator.cli.tables.fit_columns, as every orch table is (columns left
out in a fixed order and said under the table; ids, times and status words are never
wrapped or cut); a place that failed is a line with its error
under the table (a row in ``-o json``), and the command exits 3 (AWS) after showing the rest.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import click

from orchestrator.aws import Clients
from orchestrator.cli.common import Exit, OrchError, Runtime
from orchestrator.cli.tables import Column, fitted_table
from orchestrator.estate import accounts as estate
from orchestrator.model import VerdictKind
from orchestrator.observe import inventory
from orchestrator.state import lease_scope, open_store
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import Mode, SweepDeps, sweep

F = Callable[..., Any]
Row = dict[str, Any]


def estate_options(func: F) -> F:
    options = [
        click.option("--regions", help="Read these regions (comma-separated) and show one table: a row per account, region and VPC."),
        click.option("--accounts", help="With --regions: these accounts (comma-separated), through --role-arn."),
        click.option("--role-arn", help="With --accounts: the role to assume in each, e.g. 'arn:aws:iam::{account}:role/orch-operator'."),
        click.option("--parallel", type=click.IntRange(1, 32), default=estate.DEFAULT_PARALLEL, show_default=True,
                     help="With --regions: places read at once (1: one after another)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _places(runtime: Runtime, regions: str, accounts: str | None, role_arn: str | None) -> tuple[list[estate.Place], estate.AssumeRoleFactory]:
    try:
        where = estate.places(estate.split_list(regions), estate.split_list(accounts))
        factory = estate.AssumeRoleFactory(runtime.settings.profile, role_arn, runtime.endpoint_url)
        if accounts:
            factory.role_arn(where[0].account)  # checked before any call
        elif role_arn:
            raise estate.EstateUsageError("--role-arn needs --accounts: the accounts to assume it in")
    except estate.EstateUsageError as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    return where, factory


def _rows(outcomes: list[estate.Outcome[list[Row] | None]]) -> tuple[list[Row], int]:
    """Rows of every place; None from a place: no store to read there."""
    rows: list[Row] = []
    failed = 0
    for outcome in outcomes:
        base = {"account": outcome.account_id, "region": outcome.place.region}
        if outcome.error is not None:
            failed += 1
            rows.append({**base, "vpc_id": "-", "error": outcome.error})
        elif outcome.value is None:
            rows.append({**base, "vpc_id": "-", "error": None, "note": "no orch healer registered here and no dynamodb:// --state"})
        else:
            rows.extend({**base, **row, "error": None} for row in outcome.value)
    return rows, failed


def _cell(row: Row, key: str) -> str:
    value = row.get(key)
    return "-" if value is None else str(value)


def _show(runtime: Runtime, rows: list[Row], columns: list[Column], title: str) -> None:
    """One table of the places that answered, fitted to the terminal; below it, one line
    per place that could not be read or has nothing to read (a table cell would fold it)."""

    def table() -> None:
        console = runtime.console()
        data = [r for r in rows if r.get("error") is None and not r.get("note")]
        if data:
            cells = [{c.key: _cell(r, c.key) for c in columns} for r in data]
            console.print(fitted_table(title, columns, cells, console.width))
        for row in rows:
            where = f"{row['account']} {row['region']}" + (f" {row['vpc_id']}" if row.get("vpc_id") not in (None, "-") else "")
            if row.get("error") is not None:
                console.print(f"{where}: error: {row['error']}", markup=False, highlight=False)
            elif row.get("note"):
                console.print(f"{where}: {row['note']}", markup=False, highlight=False)

    runtime.emit(rows, table)


def _finish(failed: int, unhealthy: bool = False) -> None:
    if failed:
        click.echo(f"{failed} place(s) could not be read: see their rows", err=True)
        sys.exit(int(Exit.AWS))
    if unhealthy:
        sys.exit(int(Exit.UNHEALTHY))


def vpc_here(runtime: Runtime, place: estate.Place) -> str | None:
    """The configured VPC in its own region, no VPC filter in the others.

    A VPC id names a VPC of one region: ``orch init`` writes its region's next to it, and
    applied to every region of --regions it would hide the healers of all the others.
    """
    vpc_id = runtime.settings.vpc_id
    if vpc_id is None or place.region == (runtime.settings.region or runtime.clients.region):
        return vpc_id
    return None


# -- status ----------------------------------------------------------------------------


def status_rows(runtime: Runtime, place: estate.Place, clients: Clients) -> list[Row] | None:
    settings = runtime.settings
    stores = estate.stores_in(clients, settings.selector, vpc_here(runtime, place), settings.state)
    if not stores:
        return None
    rows = []
    for found in stores:
        store = open_store(found.state, lambda: clients)
        try:
            instances = inventory.list_instances(clients.ec2, settings.selector, vpc_id=found.vpc_id)
            histories = store.get_histories(i.instance_id for i in instances)
            lease = store.get_lease(lease_scope(place.account, place.region, found.vpc_id))
            pause = store.get_pause()
            sweeps = store.list_sweeps(1)
        finally:
            store.close()
        verdicts = sweeps[0].summary.get("verdicts", {}) if sweeps else {}
        rows.append({
            "vpc_id": found.vpc_id or "*",
            "stack": found.stack or "-",
            "state": found.state,
            "instances": len(instances),
            "last_sweep": sweeps[0].started_at if sweeps else None,
            "unhealthy_last_sweep": sum(n for kind, n in verdicts.items() if kind != VerdictKind.HEALTHY.value) if sweeps else None,
            "in_flight": sum(1 for h in histories.values() if h.in_flight_key),
            "quarantined": sum(1 for h in histories.values() if h.quarantined_at),
            "lease": f"{lease.owner} until {_when(lease.expires_at)}" if lease else "free",
            "paused": f"by {pause.by}" if pause else "no",
            "paused_by": pause.by if pause else None,
        })
    return rows


STATUS_COLUMNS = [
    Column("account", "account", drop=8),
    Column("region", "region"),
    Column("vpc_id", "vpc"),
    Column("stack", "stack", drop=1),
    Column("instances", "instances", drop=5),
    Column("last_sweep_text", "last sweep (UTC)", drop=6),
    Column("unhealthy_last_sweep", "unhealthy"),
    Column("in_flight", "in flight", drop=4),  # resolves itself; a quarantine needs a person
    Column("quarantined", "quarantined", drop=7),
    Column("lease", "lease", drop=2),  # "owner until a time": whole or left out
    Column("paused_text", "paused"),  # yes or no, never left out; who, when it fits
    Column("paused_by", "paused by", drop=3, cut=True, min_width=16),
]


def estate_status(runtime: Runtime, regions: str, accounts: str | None, role_arn: str | None, parallel: int) -> None:
    where, factory = _places(runtime, regions, accounts, role_arn)
    rows, failed = _rows(estate.fan_out(where, lambda p, c: status_rows(runtime, p, c), factory, parallel))
    for row in rows:
        if isinstance(row.get("last_sweep"), datetime):
            row["last_sweep_text"] = f"{row['last_sweep']:%Y-%m-%d %H:%M}"
        if "paused" in row:
            row["paused_text"] = "no" if row["paused"] == "no" else "yes"
    _show(runtime, rows, STATUS_COLUMNS, "orch across regions")
    _finish(failed)


# -- history ---------------------------------------------------------------------------


def history_rows(runtime: Runtime, place: estate.Place, clients: Clients, limit: int) -> list[Row] | None:
    settings = runtime.settings
    stores = estate.stores_in(clients, settings.selector, vpc_here(runtime, place), settings.state)
    if not stores:
        return None
    rows = []
    for found in stores:
        store = open_store(found.state, lambda: clients)
        try:
            records = store.list_actions(None, limit)
        finally:
            store.close()
        rows.extend(
            {"vpc_id": found.vpc_id or "*", "when": r.created_at, "instance_id": r.instance_id, "action": r.action.value,
             "status": r.status.value, "reason": r.reason}
            for r in records
        )
    return rows


HISTORY_COLUMNS = [
    Column("account", "account", drop=3),
    Column("region", "region", drop=4),
    Column("vpc_id", "vpc", drop=1),
    Column("when_text", "when (UTC)"),
    Column("instance_id", "instance"),
    Column("action", "action"),
    Column("status", "status"),
    Column("reason", "reason", drop=2, cut=True, min_width=24),
]


def estate_history(runtime: Runtime, regions: str, accounts: str | None, role_arn: str | None, parallel: int, limit: int) -> None:
    where, factory = _places(runtime, regions, accounts, role_arn)
    rows, failed = _rows(estate.fan_out(where, lambda p, c: history_rows(runtime, p, c, limit), factory, parallel))
    errors = [r for r in rows if r.get("error") is not None or r.get("note")]
    actions = sorted((r for r in rows if r not in errors), key=lambda r: (r["when"], r["account"], r["region"]), reverse=True)[:limit]
    for row in actions:
        row["when_text"] = f"{row['when']:%Y-%m-%d %H:%M:%S}"
    _show(runtime, errors + actions, HISTORY_COLUMNS, "actions across regions, newest first")
    _finish(failed)


# -- scan ------------------------------------------------------------------------------


def scan_rows(runtime: Runtime, place: estate.Place, clients: Clients, scratch: Path) -> list[Row] | None:
    """A scan per VPC with a registered healer (else one over the region): verdicts only, nothing recorded anywhere."""
    settings = runtime.settings
    found = estate.stores_in(clients, settings.selector, vpc_here(runtime, place), settings.state)
    vpcs = sorted({s.vpc_id for s in found}, key=lambda v: v or "") or [vpc_here(runtime, place)]
    rows = []
    for vpc in vpcs:
        store = SqliteStore(scratch / f"{place.account}-{place.region}-{vpc or 'all'}.db")  # a scan's record stays here, not in a healer's table
        try:
            report = sweep(settings.model_copy(update={"vpc_id": vpc}), SweepDeps(clients=clients, store=store, notify=False), mode=Mode.SCAN)
        finally:
            store.close()
        counts = report.verdict_counts()
        rows.append({"vpc_id": vpc or "*", "instances": len(report.facts), "healthy": counts.get(VerdictKind.HEALTHY.value, 0),
                     "not_healthy": {k: n for k, n in sorted(counts.items()) if k != VerdictKind.HEALTHY.value}})
    return rows


SCAN_COLUMNS = [
    Column("account", "account", drop=2),
    Column("region", "region"),
    Column("vpc_id", "vpc"),
    Column("instances", "instances", drop=1),
    Column("healthy", "healthy"),
    Column("not_healthy_text", "not healthy"),  # one verdict and its count a line: a verdict is never cut
]


def estate_scan(runtime: Runtime, regions: str, accounts: str | None, role_arn: str | None, parallel: int) -> None:
    where, factory = _places(runtime, regions, accounts, role_arn)
    with tempfile.TemporaryDirectory(prefix="orch-scan-") as tmp:
        rows, failed = _rows(estate.fan_out(where, lambda p, c: scan_rows(runtime, p, c, Path(tmp)), factory, parallel))
    for row in rows:
        if "not_healthy" in row:
            row["not_healthy_text"] = "\n".join(f"{k} {n}" for k, n in row["not_healthy"].items()) or "-"
    _show(runtime, rows, SCAN_COLUMNS, "scan across regions")
    _finish(failed, unhealthy=any(row.get("not_healthy") for row in rows))
