"""`orch agent check` and `orch agent install`: the CloudWatch agent orch's memory facts come from.

Thin shells over orchestrator.onboard.agent_check (is memory arriving?) and
orchestrator.onboard.agent_install (install and configure it through SSM).
"""

from __future__ import annotations

import re
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from orchestrator.cli import consent
from orchestrator.cli.common import Exit, OrchError, Runtime, add_global_options, common_options
from orchestrator.cli.instances import resolve_instance
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.sweep_cmds import no_match
from orchestrator.cli.tables import Column, fitted_table
from orchestrator.observe import inventory
from orchestrator.observe.ssm import ping_status
from orchestrator.onboard import agent_check, agent_install
from orchestrator.onboard.agent_config import DEFAULT_PARAMETER, ParameterError, agent_config, check_parameter_name, render, tier_for

sleep = time.sleep  # how the polls of a command wait; injected by tests


def clock() -> datetime:
    """Now, for judging arrival; tests inject a fixed one."""
    return datetime.now(timezone.utc)


PARAMETER_NAME = re.compile(r"[A-Za-z0-9_.\-/]{1,1011}")


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    minutes = max(0, int((now - value).total_seconds() // 60))
    return f"{minutes} min ago" if minutes < 120 else value.strftime("%Y-%m-%d %H:%M UTC")


@click.group("agent")
@add_global_options
def agent_group(**_: Any) -> None:
    """The CloudWatch agent that publishes the memory orch reads: check it, install it."""


CHECK_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=1, cut=True, min_width=10),
    Column("memory", "memory"),
    Column("memory_at", "last point"),
    Column("process", "process"),
    Column("process_at", "last point"),
)
INSTALL_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=1, cut=True, min_width=10),
    Column("outcome", "orch agent install", cut=True, min_width=20),
)


@agent_group.command("check")
@click.option("--process", metavar="PATTERN", help="Also check procstat memory for processes whose command line matches PATTERN.")
@common_options
def check_command(runtime: Runtime, process: str | None) -> None:
    """Per selected instance: is memory (and PATTERN's procstat memory) arriving? Exit 1 if not everywhere."""
    settings = runtime.settings
    instances = inventory.list_instances(runtime.clients.ec2, settings.selector, vpc_id=settings.vpc_id)
    if not instances:
        raise no_match(runtime)
    now = clock()
    stale = timedelta(minutes=settings.memory.stale_minutes)
    running = [i.instance_id for i in instances if i.state == "running"]
    memory = agent_check.read_memory_latest(runtime.clients.cloudwatch, settings.memory, running, now)
    processes = None
    if process:
        processes = agent_check.read_process_latest(
            runtime.clients.cloudwatch, settings.memory.namespace, process, running, now, timedelta(minutes=settings.memory.window_minutes)
        )
    rows = agent_check.judge(instances, memory, processes, now, stale)
    lacking = [r for r in rows if r.lacking]
    fix = "orch agent install" + (f" --process '{process}'" if process else "")
    document = {
        "namespace": settings.memory.namespace,
        "metric": settings.memory.metric,
        "process": process,
        "stale_minutes": settings.memory.stale_minutes,
        "instances": [
            {"instance_id": r.instance_id, "name": r.name, "state": r.state, "memory": r.memory.value, "memory_at": r.memory_at,
             "process": r.process.value if r.process else None, "process_at": r.process_at}
            for r in rows
        ],
        "lacking": len(lacking),
        "fix": fix if lacking else None,
    }

    def table() -> None:
        cells = [
            {"instance": r.instance_id, "name": r.name or "-", "memory": r.memory.value, "memory_at": _when(r.memory_at, now),
             "process": r.process.value if r.process else "-", "process_at": _when(r.process_at, now)}
            for r in rows
        ]
        columns = CHECK_COLUMNS if process else CHECK_COLUMNS[:4]
        runtime.console().print(fitted_table(None, columns, cells, runtime.console().width))
        where = f"{settings.memory.namespace} {settings.memory.metric}" + (f", procstat_memory_rss for pattern {process}" if process else "")
        runtime.say(f"{len(rows) - len(lacking)} of {len(rows)} instances publish {where} within {settings.memory.stale_minutes:g} min")

    runtime.emit(document, table)
    if lacking:
        click.echo(f"{len(lacking)} instance(s) lack metrics orch reads; fix: {fix}", err=True)
        sys.exit(int(Exit.UNHEALTHY))


@agent_group.command("install")
@click.argument("instances", nargs=-1, metavar="[INSTANCE]...")
@click.option("--process", "processes", multiple=True, metavar="PATTERN", help="Also publish procstat memory for processes matching PATTERN (repeat).")
@click.option("--parameter-name", default=DEFAULT_PARAMETER, show_default=True, help="SSM parameter that holds the agent config.")
@click.option("--any-parameter-name", is_flag=True, help="Allow a --parameter-name outside AmazonCloudWatch-* (the instances' role must then grant reading it).")
@click.option("--max-instances", default=50, show_default=True, type=click.IntRange(1, 10000), help="At most this many instances a run.")
@click.option("--batch-size", default=agent_install.MAX_IDS_PER_COMMAND, show_default=True,
              type=click.IntRange(1, agent_install.MAX_IDS_PER_COMMAND), help="Instance ids per SendCommand.")
@click.option("--wait", "wait_seconds", default=900, show_default=True, type=FiniteFloat(0, 3600),
              help="Seconds to follow each command before calling it timed out.")
@click.option("--dry-run", is_flag=True, help="Show the config, the commands and who gets them; make no mutating call.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask (needed off a terminal).")
@common_options
def install_command(runtime: Runtime, instances: tuple[str, ...], processes: tuple[str, ...], parameter_name: str, any_parameter_name: bool,
                    max_instances: int,
                    batch_size: int, wait_seconds: float, dry_run: bool, assume_yes: bool) -> None:
    """Install and configure the CloudWatch agent through SSM on the selected instances (or those named).

    The config, written to the SSM parameter first, publishes exactly what orch reads:
    memory.metric in memory.namespace with InstanceId, and procstat memory_rss for each
    --process. Only running instances whose SSM agent is Online get it; the others are
    listed with why.
    """
    if not PARAMETER_NAME.fullmatch(parameter_name):
        raise OrchError(f"--parameter-name {parameter_name!r}: an SSM parameter name is letters, digits and _ . - /", Exit.USAGE)
    try:
        for warning in check_parameter_name(parameter_name, allow_unreadable=any_parameter_name):
            runtime.say(f"warning: {warning}")
    except ParameterError as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    settings = runtime.settings
    fleet = inventory.list_instances(runtime.clients.ec2, settings.selector, vpc_id=settings.vpc_id)
    if not fleet:
        raise no_match(runtime)
    if instances:
        named = {resolve_instance(runtime, ref) for ref in instances}
        outside = sorted(named - {i.instance_id for i in fleet})
        if outside:
            raise OrchError(f"{', '.join(outside)} not among the instances selected by {runtime.selector_text()}: "
                            "orch installs its agent only on its fleet (check --selector)", Exit.USAGE)
        fleet = [i for i in fleet if i.instance_id in named]
    config = agent_config(settings.memory, processes)
    text = render(config)
    try:
        tier = tier_for(text)  # before any call: a config no parameter holds changes nothing
    except ParameterError as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    if tier != "Standard":
        runtime.say(f"the agent config is {len(text.encode())} bytes, over a Standard parameter's 4 KB: it is stored as an Advanced "
                    "parameter, which AWS charges per parameter-month")
    read = runtime.clients.client("ssm")
    ping = ping_status(read, [i.instance_id for i in fleet if i.state == "running"])
    plan = agent_install.plan_install(fleet, ping, max_instances, batch_size)
    current = agent_install.parameter_current(read, parameter_name)
    document: dict[str, Any] = {
        "dry_run": dry_run,
        "parameter": {"name": parameter_name, "changed": current != text, "config": config, "bytes": len(text.encode()), "tier": tier},
        "documents": [
            {"document": agent_install.INSTALL_DOCUMENT, "parameters": agent_install.install_parameters()},
            {"document": agent_install.CONFIGURE_DOCUMENT, "parameters": agent_install.configure_parameters(parameter_name)},
        ],
        "batches": [list(b) for b in plan.batches],
        "refused": [{"instance_id": r.instance_id, "name": r.name, "why": r.why} for r in plan.refused],
        "commands": [],
        "installed": {},
        "configured": {},
    }
    if plan.targets and consent.require(
        f"orch agent install would run SSM commands on {len(plan.targets)} instance(s)", assume_yes, dry_run
    ):
        names = {i.instance_id: i.name for i in fleet}
        err = runtime.console(stderr=True)
        rows = [{"instance": i, "name": names.get(i) or "-",
                 "outcome": f"{agent_install.INSTALL_DOCUMENT}, then {agent_install.CONFIGURE_DOCUMENT}"} for i in plan.targets]
        err.print(fitted_table(None, INSTALL_COLUMNS, rows, err.width, wide=True))
        if not consent.ask(f"install and configure the CloudWatch agent on {len(plan.targets)} instance(s)?"):
            raise OrchError("nothing sent (you said no)", Exit.UNHEALTHY)
    if plan.targets and not dry_run:
        result = agent_install.execute(read, runtime.clients.mutating_client("ssm"), plan, parameter_name, text,
                                       wait_seconds=wait_seconds, sleep=sleep)
        document.update(commands=result.commands, installed=result.installed, configured=result.configured)
        document["parameter"]["written"] = result.parameter_written
    failed = {i: s for i, s in {**document["installed"], **document["configured"]}.items() if s != "Success"}

    def table() -> None:
        verb = "would" if dry_run else "did"
        runtime.say(f"agent config in SSM parameter {parameter_name}: " + ("unchanged" if current == text else f"{verb} write it"))
        names = {i.instance_id: i.name for i in fleet}
        cells = []
        for instance_id in plan.targets:
            if dry_run:
                outcome = f"would run {agent_install.INSTALL_DOCUMENT}, then {agent_install.CONFIGURE_DOCUMENT}"
            else:
                outcome = f"install {document['installed'].get(instance_id, '-')}, configure {document['configured'].get(instance_id, 'not sent')}"
            cells.append({"instance": instance_id, "name": names.get(instance_id) or "-", "outcome": outcome})
        cells += [{"instance": r.instance_id, "name": r.name or "-", "outcome": f"refused: {r.why}"} for r in plan.refused]
        runtime.console().print(fitted_table(None, INSTALL_COLUMNS, cells, runtime.console().width))
        if not dry_run and plan.targets and not failed:
            runtime.say("agent configured; its first points arrive within a minute or two: orch agent check")

    runtime.emit(document, table)
    if not plan.targets:
        raise OrchError("no instance can take the agent now (each refused one is listed with why)", Exit.UNHEALTHY)
    if plan.refused or failed:
        sys.exit(int(Exit.UNHEALTHY))
