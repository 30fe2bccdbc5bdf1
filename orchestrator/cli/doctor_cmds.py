"""`orch doctor` and `orch permissions`: is this place ready to run orch, and what IAM does it take?

Thin shells: the policy is made by ``orchestrator.iam.policy``, the doctor's facts are
gathered by ``orchestrator.doctor.gather`` and judged by ``orchestrator.doctor.checks``.
"""

from __future__ import annotations

import ipaddress
import sys
import textwrap
import time
from datetime import datetime, timezone
from typing import Any

import click
from rich.text import Text

from orchestrator.aws import AWS_CALL_ERRORS, AwsError, describe_aws_error
from orchestrator.cli.common import Exit, Runtime, common_options
from orchestrator.cli.tables import Column, fitted_table
from orchestrator.doctor import fail2ban, gather
from orchestrator.doctor.checks import (
    CheckResult,
    DoctorFacts,
    InventoryFacts,
    MetricFacts,
    NetworkFacts,
    Status,
    passed,
    run_checks,
    simulation_principal,
)
from orchestrator.doctor.resources import Where, dynamodb_table, partition_of
from orchestrator.iam import policy as iam_policy
from orchestrator.observe import inventory
from orchestrator.observe.probe import probe_fleet
from orchestrator.state import default_state_path, lease_scope

DOCTOR_EXIT_HELP = """\b
Exit codes:
  0  every check passed
  1  a check failed, or orch could not tell (the row says why)
  2  bad usage or configuration
  3  no AWS client could be made (no region, an endpoint that is not a URL)"""

STATUS_STYLE = {Status.OK: "green", Status.FAIL: "bold red", Status.UNKNOWN: "yellow"}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _source_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise click.BadParameter(f"{value[:60]!r} is not an IPv4 address: give the address the instances see orch come from, e.g. 10.0.1.5") from None


@click.command("doctor", epilog=DOCTOR_EXIT_HELP)
@click.option("--source", callback=_source_value, metavar="IP",
              help="The address instances see the probes come from (default: this host's, as the kernel routes to each).")
@click.option("--fail2ban", "fail2ban_read", is_flag=True,
              help="Also read fail2ban's ssh jails on up to 3 instances whose SSM agent is online (a read-only AWS-RunShellScript "
                   "command): is the probes' source in ignoreip?")
@common_options
def doctor_command(runtime: Runtime, source: str | None, fail2ban_read: bool) -> None:
    """Check that orch can work from here: credentials, IAM, store, lease, network, metrics, clock.

    One table of checks, each ok, FAIL (with the fix) or cannot tell (and why).
    """
    settings, clients = runtime.settings, runtime.clients
    region = clients.region or "-"
    identity, clock = gather.identity(clients.client("sts"), utc_now)
    principal = simulation_principal(identity.arn) if identity.arn else None
    needed = iam_policy.actions_for(iam_policy.OPERATING, settings)  # running orch; deploying it is `orch permissions deploy`
    # One attempt (the no-retry client): a simulator that is denied or absent is "cannot tell".
    where = Where(region, identity.account or "*", partition_of(region), table=dynamodb_table(settings.state),
                  bucket=settings.evidence.bucket, topic_arn=settings.notify.topic_arn)  # each action on its own resource
    simulation = gather.simulate(clients.mutating_client("iam"), principal, needed, settings.selector, where)
    store = gather.store_facts(
        lambda: runtime.store,
        lambda: runtime.settings.state or f"{default_state_path()} (SQLite)",
        lambda: lease_scope(runtime.account, region, runtime.settings.vpc_id),
    )
    settings = runtime.settings  # beside a deployed healer, opening the store set its VPC
    now = utc_now()
    try:
        instances = inventory.list_instances(clients.ec2, settings.selector, vpc_id=settings.vpc_id)
        found = InventoryFacts(runtime.selector_text(), region, len(instances))
    except AWS_CALL_ERRORS as exc:
        instances, found = [], InventoryFacts(runtime.selector_text(), region, error=describe_aws_error(exc, "ec2:DescribeInstances"))
    # An opted-out instance is never acted on: its SSH path and metrics are not orch's to check
    # (a FAIL there would suggest healing what the tag keeps orch away from).
    opted = sorted(i.instance_id for i in instances if settings.opt_out_tag in i.tags)
    running = [i for i in instances if i.state == "running" and i.instance_id not in opted]
    network = (
        gather.network(clients.ec2, running, settings.probe, settings.probe.address == "public", source, probe_fleet)
        if running else NetworkFacts()
    )
    metrics = (
        gather.metric_presence(clients.cloudwatch, [i.instance_id for i in running], settings, now)
        if running else MetricFacts(settings.memory.namespace, settings.memory.metric)
    )
    facts = DoctorFacts(
        identity, simulation, store, found, network, metrics, clock,
        stale_minutes=settings.memory.stale_minutes, names={i.instance_id: i.name for i in instances},
    )
    rows = run_checks(facts, now, needed, "orch permissions")
    if running and fail2ban_read:
        rows += _fail2ban_rows(clients, running, network, facts.names)
    ok = passed(rows)
    names = {i.instance_id: i.name for i in instances}
    listed = ", ".join(f"{i} ({names[i]})" if names.get(i) else i for i in opted[:5]) + (f" and {len(opted) - 5} more" if len(opted) > 5 else "")
    skipped = f"skipped {len(opted)} opted-out instance(s) (tag {settings.opt_out_tag}: orch never acts on them): {listed}" if opted else ""
    runtime.emit({"ok": ok, "checks": rows, "skipped_opted_out": opted},
                 lambda: (_doctor_table(runtime, rows, ok), runtime.say(skipped) if skipped else None))
    sys.exit(int(Exit.OK if ok else Exit.UNHEALTHY))


def _fail2ban_rows(clients: Any, running: list[Any], network: NetworkFacts, names: dict[str, str]) -> list[CheckResult]:
    """fail2ban's ssh jails on a few instances through SSM: is the probes' source in ignoreip?"""
    found = gather.fail2ban_jails(clients.client("ssm"), clients.mutating_client("ssm"), [i.instance_id for i in running], time.sleep)
    if isinstance(found, str):
        return [CheckResult(fail2ban.CHECK, "SSM Run Command", Status.UNKNOWN, found, "grant ssm:SendCommand on AWS-RunShellScript and the instances, or leave --fail2ban out")]
    return fail2ban.checks(found, {p.instance_id: p.source for p in network.instances}, names)


DOCTOR_COLUMNS = (
    Column("check", "check"),
    Column("subject", "subject", cut=True, min_width=20),  # an instance id and its name: cut after the id
    Column("status", "status"),
    Column("detail", "detail", drop=1, cut=True, min_width=16),
)


def _doctor_table(runtime: Runtime, rows: list[CheckResult], ok: bool) -> None:
    """One line a check; under the table, each check that did not pass with its detail
    and fix in full (wrapped at words), since those are what a person acts on."""
    console = runtime.console()
    cells = [{"check": r.check, "subject": r.subject, "status": Text(r.status.value, style=STATUS_STYLE[r.status]), "detail": r.detail}
             for r in rows]
    console.print(fitted_table(None, DOCTOR_COLUMNS, cells, console.width))
    for row in rows:
        if row.status is not Status.OK:
            said = Text.assemble((f"{row.check} {row.subject}: ", "bold"), (row.status.value, STATUS_STYLE[row.status]), f": {row.detail}")
            console.print(said)
            if row.fix:
                console.print(Text.assemble(("fix: ", "bold"), row.fix))
    failed = sum(1 for r in rows if r.status is Status.FAIL)
    unknown = sum(1 for r in rows if r.status is Status.UNKNOWN)
    runtime.say("every check passed" if ok else f"{failed} failed, {unknown} could not be told")


def _profile_region(runtime: Runtime) -> str | None:
    """The region boto3 would use (profile, AWS_REGION, AWS_DEFAULT_REGION): no AWS call is made."""
    try:
        return runtime.clients.region
    except AwsError:
        return None


def _explicit_output() -> str | None:
    """--output as given on the command or before it, else None (this command's default differs)."""
    ctx = click.get_current_context()
    given = ctx.params.get("output")
    if given is None and ctx.parent is not None:
        given = ctx.parent.params.get("output")
    return given


def statement_lines(statements: list[dict[str, Any]], width: int) -> list[str]:
    """Each statement as a block people read: its resources (an ARN a line, never split),
    its condition in words, and its actions wrapped at spaces. An ARN or an action is one
    word: a terminal narrower than it wraps it, orch never cuts it."""
    lines: list[str] = []
    for statement in statements:
        if lines:
            lines.append("")
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else list(statement["Resource"])
        lines.append(f"{statement['Sid']}:")
        lines += [f"  on {arn}" for arn in resources]
        for test, pairs in statement.get("Condition", {}).items():
            for key, value in pairs.items():
                values = value if isinstance(value, list) else [value]
                lines += textwrap.wrap(f"  if {key} {test} {' or '.join(map(str, values))}", width=max(20, width),
                                       subsequent_indent="     ", break_long_words=False, break_on_hyphens=False)
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else list(statement["Action"])
        lines += textwrap.wrap("  ".join(actions), width=max(20, width), initial_indent="  ", subsequent_indent="  ",
                               break_long_words=False, break_on_hyphens=False)
    return lines


@click.command("permissions")
@click.argument("command_name", metavar="[COMMAND]", required=False, type=click.Choice(iam_policy.NAMES))
@common_options
def permissions_command(runtime: Runtime, command_name: str | None) -> None:
    """The IAM policy (JSON) a person needs to run COMMAND by hand; without COMMAND, every command.

    Made from the declarations the CloudFormation role is checked against. Output is the
    policy document itself unless --output table (the actions, their resources and
    conditions) or text; notes on "*" resources go to stderr.
    """
    settings = runtime.settings
    names = (command_name,) if command_name else iam_policy.NAMES
    made = iam_policy.policy_for(names, settings, _profile_region(runtime))
    runtime.output = _explicit_output() or "json"  # the policy is a document: JSON unless asked otherwise
    err = runtime.console(stderr=True)
    for note in made.notes:
        err.print(f"note: {note}", markup=False, highlight=False)

    def table() -> None:
        out = runtime.console()
        out.print(Text.assemble((f"IAM for orch {command_name or '(every command)'}", "bold"), ": a statement a block"))
        for line in statement_lines(made.document["Statement"], out.width):
            out.print(line, markup=False, highlight=False, soft_wrap=True)

    runtime.emit(made.document, table)
