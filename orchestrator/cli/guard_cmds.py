"""`orch guard plan|apply|status|remove`: host protections through SSM Run Command (orchestrator.guard).

plan reads and sends nothing to the boxes; apply and remove ask first (``--yes`` off a
terminal, ``--dry-run`` to see what would be sent); status runs a read-only script.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import click

from orchestrator.cli.common import Exit, OrchError, Runtime, add_global_options, common_options
from orchestrator.cli.instances import resolve_instance
from orchestrator.cli.params import FiniteFloat
from orchestrator.cli.sweep_cmds import no_match
from orchestrator.cli.tables import Column, fitted_table
from orchestrator.guard import facts
from orchestrator.guard import ssm as guard_ssm
from orchestrator.guard.plan import GuardError, GuardSpec, InstancePlan, Target, check_process, plan, spec_for, target_from_chronic
from orchestrator.guard.script import Action, render
from orchestrator.guard.verify import Judgement, judge
from orchestrator.model import Instance
from orchestrator.observe import inventory
from orchestrator.observe.ssm import ping_status

sleep = time.sleep  # how the polls wait; injected by tests


def clock() -> datetime:
    """Now, for judging chronic conditions; tests inject a fixed one."""
    return datetime.now(timezone.utc)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


@click.group("guard")
@add_global_options
def guard_group(**_: Any) -> None:
    """Keep SSH alive through a leak: shield sshd, bound the leaking service, restart it instead of the box.

    \b
      orch guard plan --chronic          what would be written on the chronic instances, and why
      orch guard apply --chronic         write it, through SSM Run Command (asks first)
      orch guard status                  applied or not, limits in force, restarts and OOM kills
      orch guard remove --all            undo exactly what apply wrote
    """


def _selection(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("instances", nargs=-1, metavar="[INSTANCE]..."),
        click.option("--chronic", is_flag=True, help="The instances orch found chronic (leak again after every remedy)."),
        click.option("--all", "every", is_flag=True, help="Every selected instance."),
        click.option("--process", metavar="NAME", help="The leaking process as the kernel names it (default: the one chronic detection named)."),
        click.option("--limit-percent", type=FiniteFloat(1, 100), metavar="N", help="The service's memory limit, % of the box (default 75, lowered to leave 1 GiB)."),
        click.option("--oomd", is_flag=True, help="Also let systemd-oomd kill the bounded unit under memory pressure."),
        click.option("--earlyoom", is_flag=True, help="Also configure earlyoom, where installed, to spare sshd and the agents."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _sending(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--max-instances", default=50, show_default=True, type=click.IntRange(1, 10000), help="At most this many instances a run."),
        click.option("--batch-size", default=guard_ssm.MAX_IDS_PER_COMMAND, show_default=True,
                     type=click.IntRange(1, guard_ssm.MAX_IDS_PER_COMMAND), help="Instance ids per SendCommand."),
        click.option("--wait", "wait_seconds", default=300, show_default=True, type=FiniteFloat(0, 3600),
                     help="Seconds to follow each invocation before calling it timed out."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass
class Chosen:
    fleet: list[Instance]
    plans: dict[str, InstancePlan]


def _choose(runtime: Runtime, instances: tuple[str, ...], chronic: bool, every: bool, process: str | None,
            limit_percent: float | None, oomd: bool, earlyoom: bool, need_choice: bool) -> Chosen:
    try:
        check_process(process or "")
    except GuardError as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    if need_choice and not (instances or chronic or every):
        raise OrchError("name the instances (INSTANCE...), or pass --chronic or --all: the guard is never written fleet-wide "
                        "by default", Exit.USAGE)
    settings = runtime.settings
    fleet = inventory.list_instances(runtime.clients.ec2, settings.selector, vpc_id=settings.vpc_id)
    if not fleet:
        raise no_match(runtime)
    if instances:
        named = {resolve_instance(runtime, ref) for ref in instances}
        outside = sorted(named - {i.instance_id for i in fleet})
        if outside:
            raise OrchError(f"{', '.join(outside)} not among the instances selected by {runtime.selector_text()}: "
                            "orch guards only its fleet (check --selector)", Exit.USAGE)
        fleet = [i for i in fleet if i.instance_id in named]
    conditions = {}
    if chronic or not process:
        histories = runtime.store.get_histories([i.instance_id for i in fleet])
        conditions = facts.chronic_conditions(histories, clock(), settings)
    if chronic and not instances:
        fleet = [i for i in fleet if i.instance_id in conditions]
    memory = facts.memory_mib(runtime.clients.ec2, [i.instance_type or "" for i in fleet]) if fleet else {}
    plans = {}
    for i in sorted(fleet, key=lambda x: x.instance_id):
        target = target_from_chronic(i.instance_id, i.name, conditions.get(i.instance_id), memory.get(i.instance_type or ""))
        if process:
            target = Target(target.instance_id, target.name, process, target.memory_mib, target.cycle_minutes, target.cycles_24h)
        try:
            plans[i.instance_id] = plan(target, spec_for(target, limit_percent, oomd=oomd, earlyoom=earlyoom))
        except GuardError as exc:
            raise OrchError(str(exc), Exit.USAGE) from None
    return Chosen(fleet, plans)


def _plan_document(p: InstancePlan) -> dict[str, Any]:
    s = p.spec
    return {"instance_id": p.instance_id, "name": p.name, "process": s.process or None, "limit_percent": s.limit_percent if s.process else None,
            "high_percent": s.high_percent if s.process else None, "restart_seconds": s.restart_seconds, "oomd": s.oomd, "earlyoom": s.earlyoom,
            "writes": [{"path": w.path, "why": w.why, "content": w.content} for w in p.writes], "reasons": list(p.reasons)}


PLAN_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=1, cut=True, min_width=10),
    Column("process", "bounded process"),
    Column("limit", "limit"),
    Column("why", "why", cut=True, min_width=20),
)


@guard_group.command("plan")
@_selection
@click.option("--script", "show_script", is_flag=True, help="Also print the apply script each instance would run.")
@common_options
def plan_command(runtime: Runtime, instances: tuple[str, ...], chronic: bool, every: bool, process: str | None, limit_percent: float | None,
                 oomd: bool, earlyoom: bool, show_script: bool) -> None:
    """What the guard would write on each instance, and why. Sends nothing to any box."""
    chosen = _choose(runtime, instances, chronic, every, process, limit_percent, oomd, earlyoom, need_choice=False)
    document = {"instances": [_plan_document(p) for p in chosen.plans.values()]}
    if show_script:
        for item, p in zip(document["instances"], chosen.plans.values()):
            item["script"] = render(p.spec, Action.APPLY)

    def table() -> None:
        cells = [{"instance": p.instance_id, "name": p.name or "-", "process": p.spec.process or "- (shields only)",
                  "limit": f"{p.spec.limit_percent:g}%" if p.spec.process else "-", "why": " ".join(p.reasons[1:2]) or p.reasons[0]}
                 for p in chosen.plans.values()]
        runtime.console().print(fitted_table(None, PLAN_COLUMNS, cells, runtime.console().width))
        for p in list(chosen.plans.values())[:1]:
            runtime.say(f"on {p.instance_id}, for example:")
            for w in p.writes:
                runtime.say(f"  {w.path}: {w.why}")
        if show_script:
            for p in chosen.plans.values():
                click.echo(f"# --- {p.instance_id}\n{render(p.spec, Action.APPLY)}")
        if chosen.plans:
            runtime.say("nothing was sent; to write it: orch guard apply with the same arguments")

    runtime.emit(document, table)
    if not chosen.plans:
        what = "no instance is chronic now (orch learns that from its sweeps)" if chronic else "no instance chosen"
        raise OrchError(what, Exit.UNHEALTHY)


ANSWER_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=1, cut=True, min_width=10),
    Column("outcome", "outcome", cut=True, min_width=20),
)


def _answer_document(a: guard_ssm.Answer) -> dict[str, Any]:
    box = a.box
    return {"instance_id": a.instance_id, "command_id": a.command_id, "status": a.status, "response_code": a.response_code,
            "applied": box.applied, "changed": box.changed, "removed": box.removed, "files": box.files, "bound": box.bound or None,
            "service": box.service or None, "shields": box.shields, "errors": box.errors, "notes": box.notes}


def _outcome(a: guard_ssm.Answer, action: Action) -> str:
    box = a.box
    if a.status != "Success" and not box.errors:
        return f"{a.status}" + (f": {a.stderr.strip().splitlines()[-1][:120]}" if a.stderr.strip() else "")
    if box.errors:
        return f"{a.status}: " + "; ".join(" ".join(f"{k}={v}" for k, v in e.items()) for e in box.errors)
    if action is Action.REMOVE:
        return "removed" if box.removed else "nothing was applied"
    service = box.service
    parts = ["applied" if box.applied else "not applied"]
    if action is Action.APPLY and box.changed is not None:
        parts.append("changed" if box.changed else "already in place")
    if service.get("running") == "yes":
        parts.append(f"{service.get('process')} limit {service.get('limit_bytes')} B, restarts {service.get('restarts')}, "
                     f"OOM kills {service.get('oom_kills')}")
    elif service:
        parts.append(f"{service.get('process')} not running")
    return ", ".join(parts)


def _send(runtime: Runtime, action: Action, chosen: Chosen, max_instances: int, batch_size: int, wait_seconds: float,
          dry_run: bool, assume_yes: bool) -> None:
    read = runtime.clients.client("ssm")
    running = [i.instance_id for i in chosen.fleet if i.state == "running"]
    ping = ping_status(read, running) if running else {}
    specs: dict[str, GuardSpec] = {i: p.spec for i, p in chosen.plans.items()}
    delivery = guard_ssm.plan_delivery(chosen.fleet, specs, ping, max_instances, batch_size)
    document: dict[str, Any] = {
        "action": action.value,
        "dry_run": dry_run,
        "document": guard_ssm.DOCUMENT,
        "batches": [list(b.instance_ids) for b in delivery.batches],
        "refused": [{"instance_id": r.instance_id, "name": r.name, "why": r.why} for r in delivery.refused],
        "plans": [_plan_document(chosen.plans[i]) for i in delivery.targets] if action is Action.APPLY else [],
        "answers": [],
    }
    asks = action is not Action.STATUS
    if delivery.targets and asks and not dry_run and not assume_yes:
        if not _interactive():
            raise OrchError(f"orch guard {action.value} would run a root script through SSM on {len(delivery.targets)} instance(s): "
                            "pass --yes to confirm off a terminal, or --dry-run to see what would be sent", Exit.USAGE)
        if not click.confirm(f"{action.value} the guard on {len(delivery.targets)} instance(s)?", default=False, err=True):
            raise OrchError("nothing sent (you said no)", Exit.UNHEALTHY)
    answers: list[guard_ssm.Answer] = []
    verdicts = {}
    if delivery.targets and not dry_run:
        answers = guard_ssm.run(read, runtime.clients.mutating_client("ssm"), delivery, action, wait_seconds=wait_seconds, sleep=sleep)
        document["answers"] = [_answer_document(a) for a in answers]
        if action is Action.STATUS:
            histories = runtime.store.get_histories([a.instance_id for a in answers])
            now = clock()
            verdicts = {a.instance_id: judge(a.box, histories.get(a.instance_id), now) for a in answers}
            for item in document["answers"]:
                v = verdicts[item["instance_id"]]
                item["guard"] = {"judgement": v.judgement.value, "why": v.why, "kills": v.kills, "actions_since": v.actions_since}
    failed = [a for a in answers if a.status != "Success" or a.box.errors
              or (a.instance_id in verdicts and verdicts[a.instance_id].judgement is Judgement.FAILED)]

    def table() -> None:
        names = {i.instance_id: i.name for i in chosen.fleet}
        cells = []
        if dry_run:
            cells = [{"instance": i, "name": names.get(i) or "-", "outcome": f"would send the {action.value} script ({guard_ssm.DOCUMENT})"}
                     for i in delivery.targets]
        cells += [{"instance": a.instance_id, "name": names.get(a.instance_id) or "-",
                   "outcome": (f"{verdicts[a.instance_id].judgement.value}: {verdicts[a.instance_id].why}; " if a.instance_id in verdicts else "")
                   + _outcome(a, action)} for a in answers]
        cells += [{"instance": r.instance_id, "name": r.name or "-", "outcome": f"refused: {r.why}"} for r in delivery.refused]
        runtime.console().print(fitted_table(None, ANSWER_COLUMNS, cells, runtime.console().width))
        if dry_run:
            runtime.say("dry run: nothing was sent (orch guard plan --script shows the script)")

    runtime.emit(document, table)
    if not delivery.targets:
        raise OrchError("no instance can take the guard now (each refused one is listed with why)", Exit.UNHEALTHY)
    if delivery.refused or failed:
        sys.exit(int(Exit.UNHEALTHY))


def _write_command(action: Action, summary: str) -> Callable[..., Any]:
    @_selection
    @_sending
    @click.option("--dry-run", is_flag=True, help="Show who would get which script; send nothing.")
    @click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask (needed off a terminal).")
    @common_options
    def command(runtime: Runtime, instances: tuple[str, ...], chronic: bool, every: bool, process: str | None, limit_percent: float | None,
                oomd: bool, earlyoom: bool, max_instances: int, batch_size: int, wait_seconds: float, dry_run: bool, assume_yes: bool) -> None:
        chosen = _choose(runtime, instances, chronic, every, process, limit_percent, oomd, earlyoom, need_choice=True)
        if not chosen.plans:
            raise OrchError("no instance is chronic now (orch learns that from its sweeps): name instances or pass --all", Exit.UNHEALTHY)
        _send(runtime, action, chosen, max_instances, batch_size, wait_seconds, dry_run, assume_yes)

    command.__doc__ = summary
    return guard_group.command(action.value)(command)


apply_command = _write_command(Action.APPLY, """Write the guard on the chosen instances through SSM Run Command (AWS-RunShellScript).

    Running instances whose SSM agent is Online only; batches of at most 50; idempotent (a
    second apply changes nothing). Asks first on a terminal; --yes off it; --dry-run sends nothing.
    """)
remove_command = _write_command(Action.REMOVE, """Undo exactly what apply wrote (its manifest on each box), through SSM Run Command.""")


@guard_group.command("status")
@_selection
@_sending
@common_options
def status_command(runtime: Runtime, instances: tuple[str, ...], chronic: bool, every: bool, process: str | None, limit_percent: float | None,
                   oomd: bool, earlyoom: bool, max_instances: int, batch_size: int, wait_seconds: float) -> None:
    """Per instance: applied or not, the limit in force, the service's restarts and OOM kills (a read-only script)."""
    chosen = _choose(runtime, instances, chronic, every, process, limit_percent, oomd, earlyoom, need_choice=False)
    _send(runtime, Action.STATUS, chosen, max_instances, batch_size, wait_seconds, dry_run=False, assume_yes=True)
