"""`orch init`: find a fleet, show it, tag it with the selector, write the config later commands read.

Thin: discovery and tagging are orchestrator.onboard.discover, the choice is
orchestrator.onboard.select (pure), the file is orchestrator.onboard.config_file.
On a terminal it asks what flags did not say; off a terminal it needs the flags, and
tagging needs ``--yes``. ``--dry-run`` reads, shows, and changes nothing (no CreateTags,
no file written).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from orchestrator import files
from orchestrator.cli import consent
from orchestrator.cli.common import Exit, OrchError, Runtime, common_options
from orchestrator.cli.tables import Column, fitted_table
from orchestrator.config import ConfigError, load_settings, parse_selector
from orchestrator.echo import clip
from orchestrator.model import Instance
from orchestrator.onboard import config_file, discover
from orchestrator.onboard.select import Selection, select

WAYS = ("tag", "asg", "name", "ids")


def _interactive() -> bool:
    """Only a person at a terminal can answer a question or confirm tagging (orch's one rule: consent)."""
    return consent.on_terminal()


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({part.strip() for v in values for part in v.split(",") if part.strip()}))


def _query(tag: str | None, asgs: tuple[str, ...], name_pattern: str | None, ids: tuple[str, ...], ask: bool) -> discover.FleetQuery:
    given = [w for w, v in zip(WAYS, (tag, asgs, name_pattern, ids)) if v]
    if len(given) > 1:
        raise OrchError("give one way to find the fleet: --tag, --asg, --name-pattern or --instance-ids, not several", Exit.USAGE)
    if not given:
        if not ask:
            raise OrchError(
                "how to find the fleet? pass --tag KEY=VALUE, --asg NAME, --name-pattern GLOB or --instance-ids ID[,ID]", Exit.USAGE
            )
        way = click.prompt("find the fleet by", type=click.Choice(WAYS), default="name", err=True)
        answer = click.prompt({"tag": "existing tag KEY=VALUE", "asg": "Auto Scaling group name(s), comma separated",
                               "name": "glob on the Name tag (e.g. web-*)", "ids": "instance ids, comma separated"}[way], err=True)
        return _query(answer if way == "tag" else None, (answer,) if way == "asg" else (), answer if way == "name" else None,
                      (answer,) if way == "ids" else (), ask=False)
    if tag:
        try:
            parsed = parse_selector(tag)
        except ConfigError as exc:
            raise OrchError(str(exc).replace("selector:", "--tag:"), Exit.USAGE) from None
        if len(parsed) != 1:
            raise OrchError(f"--tag takes one KEY=VALUE, got {clip(tag)}", Exit.USAGE)
        return discover.FleetQuery(tag=next(iter(parsed.items())))
    if asgs:
        return discover.FleetQuery(asgs=_split(asgs))
    if name_pattern:
        return discover.FleetQuery(name_pattern=name_pattern.strip())
    return discover.FleetQuery(instance_ids=_split(ids))


def _target(runtime: Runtime) -> Path:
    """Where the config goes: --config, else ORCH_CONFIG, else the platform's per-user file."""
    given = runtime.config or os.environ.get("ORCH_CONFIG")
    if given:
        return Path(given).expanduser()
    path = config_file.user_config_path()
    if path is None:
        raise OrchError("no per-user config directory here (platformdirs is missing): pass --config PATH", Exit.USAGE)
    return path


def _row(instance: Instance) -> dict[str, Any]:
    return {"instance_id": instance.instance_id, "name": instance.name, "state": instance.state, "vpc_id": instance.vpc_id}


@click.command("init")
@click.option("--tag", "tag", metavar="KEY=VALUE", help="Find the fleet by a tag it already has.")
@click.option("--asg", "asgs", multiple=True, metavar="NAME", help="Find the fleet by Auto Scaling group (repeat, or comma separated).")
@click.option("--name-pattern", metavar="GLOB", help="Find the fleet by a glob on its Name tag, e.g. 'web-*'.")
@click.option("--instance-ids", "ids", multiple=True, metavar="ID[,ID]", help="Find the fleet by instance id.")
@click.option("--vpc-id", "vpcs", multiple=True, metavar="VPC", help="Adopt only instances in this VPC (repeat for several).")
@click.option("--dry-run", is_flag=True, help="Show what would be tagged and written; change nothing.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Tag without asking (needed off a terminal).")
@common_options
def init_command(runtime: Runtime, tag: str | None, asgs: tuple[str, ...], name_pattern: str | None, ids: tuple[str, ...],
                 vpcs: tuple[str, ...], dry_run: bool, assume_yes: bool) -> None:
    """Adopt a fleet: find it, tag it with the selector, write the config later commands read.

    Run it again at any time: instances already tagged are said so, an unchanged config
    is not rewritten.
    """
    ask = _interactive()
    target = _target(runtime)
    existing = config_file.read(target)
    # The file init writes may not exist yet: settings come from it if it does, never from another file.
    overrides = dict(runtime.overrides)
    if not (overrides.get("region") or existing.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        if not ask:
            raise OrchError("no AWS region: pass --region (or set AWS_REGION)", Exit.USAGE)
        overrides["region"] = click.prompt("AWS region", err=True).strip()
    environ = {k: v for k, v in os.environ.items() if k.upper() != "ORCH_CONFIG"}  # the target is read above, or is new
    runtime._settings = load_settings(target if target.is_file() else None, environ=environ, overrides=overrides)
    settings = runtime.settings
    region = runtime.clients.region
    query = _query(tag, asgs, name_pattern, ids, ask)

    try:
        found = discover.find(runtime.clients.ec2, runtime.clients.autoscaling, query)
    except discover.FleetNotFound as exc:
        raise OrchError(str(exc), Exit.USAGE) from None
    chosen = _split(vpcs)
    selection = select(found, settings.selector, chosen)
    if selection.needs_vpc_choice:
        counts = ", ".join(f"{v}: {n}" for v, n in selection.needs_vpc_choice.items())
        if not ask:
            raise OrchError(f"{query.describe()} matches instances in {len(selection.needs_vpc_choice)} VPCs ({counts}): "
                            "pass --vpc-id for each VPC to adopt (one stack watches one VPC)", Exit.USAGE)
        chosen = _split((click.prompt(f"matches in several VPCs ({counts}); VPC(s) to adopt, comma separated", err=True),))
        selection = select(found, settings.selector, chosen)
    selection = select(found, settings.selector, selection.vpcs, discover.neighbours(runtime.clients.ec2, selection.vpcs))
    if not selection.adopted:
        excluded = f" ({len(selection.excluded)} found but excluded, listed with why in -o json)" if selection.excluded else ""
        runtime.emit(_document(runtime, query, selection, [], None, target, existing, existing, False, dry_run), lambda: _table(runtime, selection))
        raise OrchError(f"no running or stopped instance matches {query.describe()} in region {region}{excluded}: "
                        "check the criteria, --vpc-id and --region", Exit.UNHEALTHY)

    groups = discover.groups_missing_tag(runtime.clients.autoscaling, query.asgs, settings.selector) if query.asgs else []
    decided = {
        "region": region,
        "selector": dict(settings.selector),
        "vpc_id": selection.vpcs[0] if len(selection.vpcs) == 1 else None,
    }
    wanted = config_file.merged(existing, decided)
    changed = wanted != existing
    mutating = bool(selection.to_tag or groups)

    if mutating and not dry_run and not assume_yes:
        consent.require(f"orch init would tag {len(selection.to_tag)} instance(s){f' and {len(groups)} group(s)' if groups else ''} "
                        f"with {runtime.selector_text()}", assume_yes, dry_run)
        _table(runtime, selection, stderr=True)
        left = f"; {len(selection.unmatched)} other instance(s) in {', '.join(selection.vpcs)} stay unmanaged" if selection.unmatched else ""
        if not consent.ask(f"tag {len(selection.to_tag)} instance(s) with {runtime.selector_text()}{left}?"):
            raise OrchError("nothing tagged, no config written (you said no)", Exit.UNHEALTHY)

    # The config is rendered, checked and written beside its path before any tag is set: a
    # value TOML cannot hold or a path that is not a file is refused with nothing changed
    # (and said by a dry run too, which validates what the real run will).
    pending = None
    if changed:
        try:
            if dry_run:
                config_file.render(wanted)
                files.check_writable(target, make_parent=True, probe=True)
            else:
                pending = config_file.prepare(target, wanted)
        except config_file.ConfigFileError as exc:
            raise OrchError(f"{exc}; nothing tagged, no config written", Exit.USAGE) from None
        except files.FileRefused as exc:
            raise OrchError(f"config file {exc}; nothing tagged, no config written", Exit.USAGE) from None

    tagged: list[str] = []
    if not dry_run:
        try:
            if selection.to_tag:
                discover.tag_instances(runtime.clients.mutating_client("ec2"), [i.instance_id for i in selection.to_tag], settings.selector)
                tagged = [i.instance_id for i in selection.to_tag]
            for group in groups:
                discover.tag_group(runtime.clients.mutating_client("autoscaling"), group, settings.selector)
        except BaseException:
            if pending is not None:
                pending.discard()
            raise
        if pending is not None:
            try:
                pending.commit()
            except files.FileRefused as exc:
                raise OrchError(f"config file: {exc}; the instances are tagged: run orch init again to write the config", Exit.USAGE) from None
    document = _document(runtime, query, selection, groups, tagged, target, existing, wanted, changed, dry_run)
    runtime.emit(document, lambda: _say(runtime, selection, document))


def _document(runtime: Runtime, query: discover.FleetQuery, selection: Selection, groups: list[str], tagged: list[str] | None,
              target: Path, existing: dict[str, Any], wanted: dict[str, Any], changed: bool, dry_run: bool) -> dict[str, Any]:
    return {
        "region": runtime.clients.region,
        "found_by": query.describe(),
        "selector": runtime.settings.selector,
        "vpcs": list(selection.vpcs),
        "dry_run": dry_run,
        "to_tag": [_row(i) for i in selection.to_tag],
        "already_tagged": [_row(i) for i in selection.already_tagged],
        "excluded": [{**_row(e.instance), "why": e.why} for e in selection.excluded],
        "unmanaged": [_row(i) for i in selection.unmatched],
        "groups_to_tag": groups,
        "tagged": tagged or [],
        "config": {"path": str(target), "changed": changed, "written": changed and not dry_run, "settings": wanted},
    }


INIT_COLUMNS = (
    Column("instance", "instance"),
    Column("name", "name", drop=1, cut=True, min_width=10),
    Column("state", "state"),
    Column("vpc", "vpc"),
    Column("verdict", "orch init", cut=True, min_width=16),  # "tag", "already tagged", "left alone: why"...
)


def _table(runtime: Runtime, selection: Selection, stderr: bool = False) -> None:
    """Ids and states are never wrapped or cut (an id folded over two lines cannot be
    copied); one VPC is named in the title instead of on every row, 80 columns being few."""
    listed = [(i, "tag") for i in selection.to_tag] + [(i, "already tagged") for i in selection.already_tagged]
    listed += [(e.instance, f"left alone: {e.why}") for e in selection.excluded]
    listed += [(i, "not matched: stays unmanaged") for i in selection.unmatched]
    if not listed:
        return  # the error says what matched nothing; an empty header says nothing more
    vpcs = sorted({i.vpc_id or "-" for i, _ in listed})
    per_row = len(vpcs) > 1
    columns = INIT_COLUMNS if per_row else tuple(c for c in INIT_COLUMNS if c.key != "vpc")
    cells = [{"instance": i.instance_id, "name": i.name or "-", "state": i.state, "vpc": i.vpc_id or "-", "verdict": verdict} for i, verdict in listed]
    console = runtime.console(stderr=stderr)
    console.print(fitted_table(None if per_row else f"{len(listed)} instance(s) in {vpcs[0]}", columns, cells, console.width))


def _say(runtime: Runtime, selection: Selection, document: dict[str, Any]) -> None:
    _table(runtime, selection)
    selector = runtime.selector_text()
    dry = document["dry_run"]
    if selection.to_tag:
        runtime.say(f"{'would tag' if dry else 'tagged'} {len(selection.to_tag)} instance(s) with {selector}")
    if selection.already_tagged:
        runtime.say(f"{len(selection.already_tagged)} instance(s) already carry {selector}: nothing to do for them")
    for group in document["groups_to_tag"]:
        runtime.say(f"{'would tag' if dry else 'tagged'} Auto Scaling group {group} with {selector}, propagated to the instances it launches")
    config = document["config"]
    if config["changed"]:
        runtime.say(f"{'would write' if dry else 'wrote'} {config['path']}: later orch commands read it when no --config is given")
    else:
        runtime.say(f"config {config['path']} already says this: unchanged")
    if not dry:
        runtime.say("next: orch agent check, then orch heal --dry-run")
