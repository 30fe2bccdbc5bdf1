"""Instances by id or by Name, wherever an instance is an argument (as people name them)."""

from __future__ import annotations

import re

from orchestrator.cli.common import Exit, OrchError, Runtime
from orchestrator.echo import clip
from orchestrator.observe import inventory

INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")


def resolve_instance(runtime: Runtime, ref: str) -> str:
    """An instance id as given, or the one selected instance whose Name tag is ``ref``.

    An id needs no AWS call (history and release work from the state store alone); a name
    is looked up among the selected instances only, so it never reaches outside the fleet.
    """
    ref = ref.strip()
    if INSTANCE_ID.fullmatch(ref):
        return ref
    named = [i for i in inventory.list_instances(runtime.clients.ec2, runtime.settings.selector) if i.tags.get("Name") == ref]
    if len(named) == 1:
        return named[0].instance_id
    where = f"selected by {runtime.selector_text()} in {runtime.clients.region or '-'}"
    if not named:
        raise OrchError(
            f"{clip(ref)} is neither an instance id (i-...) nor the Name of an instance {where}: check the name, --selector and --region",
            Exit.USAGE,
        )
    ids = ", ".join(i.instance_id for i in named)
    raise OrchError(f"the Name {clip(ref)} is on {len(named)} instances {where} ({ids}): give the instance id", Exit.USAGE)
