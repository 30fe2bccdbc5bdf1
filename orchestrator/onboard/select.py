"""Which instances `orch init` would tag: a pure function of what the describe calls found.

Safety rules, each with a test (tests/unit/test_onboard_select.py):

- only instances in the chosen VPC(s), and only ``running`` or ``stopped`` ones (pending,
  stopping and terminated instances are shown and left alone: a terminated id cannot be
  tagged, and a pending one may still belong to a launch that fails);
- when the matches span several VPCs and none was chosen, nothing is tagged: the caller
  must choose (the probe runs inside one VPC; a fleet in two needs two stacks);
- instances in those VPCs that the criteria did not match are listed as staying
  unmanaged, so a person sees what is left out before saying yes;
- an instance already carrying the selector is reported as such, never tagged twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from orchestrator.model import Instance

ADOPTABLE_STATES = frozenset({"running", "stopped"})


@dataclass(frozen=True, slots=True)
class Excluded:
    instance: Instance
    why: str


@dataclass(frozen=True, slots=True)
class Selection:
    """What init found and what it would do; the plan is data, shown before it is acted on."""

    to_tag: tuple[Instance, ...]
    already_tagged: tuple[Instance, ...]
    excluded: tuple[Excluded, ...]
    unmatched: tuple[Instance, ...]  # in the chosen VPCs, not matched: they stay unmanaged
    vpcs: tuple[str, ...]  # the VPCs the selection lives in
    needs_vpc_choice: dict[str, int] = field(default_factory=dict)  # VPC -> matches, when a choice is needed

    @property
    def adopted(self) -> tuple[Instance, ...]:
        """Every instance the fleet will have: newly tagged and already tagged."""
        return tuple(sorted(self.to_tag + self.already_tagged, key=lambda i: i.instance_id))


def carries(instance: Instance, selector: Mapping[str, str]) -> bool:
    return all(instance.tags.get(k) == v for k, v in selector.items())


def vpc_counts(candidates: Iterable[Instance]) -> dict[str, int]:
    """Matches per VPC, adoptable states only (a terminated instance has no VPC to speak of)."""
    counts = Counter(i.vpc_id or "-" for i in candidates if i.state in ADOPTABLE_STATES)
    return dict(sorted(counts.items()))


def select(
    candidates: Sequence[Instance],
    selector: Mapping[str, str],
    vpcs: Sequence[str] = (),
    neighbours: Sequence[Instance] = (),
) -> Selection:
    """Split what the criteria matched into to-tag, already tagged and excluded (with why).

    ``vpcs``: the chosen VPCs; empty means "the one VPC the matches are in", and matches in
    several VPCs then need a choice (``needs_vpc_choice``) and nothing is tagged.
    ``neighbours``: every instance in those VPCs, to list the ones left unmanaged.
    """
    unique = {i.instance_id: i for i in candidates}
    ordered = sorted(unique.values(), key=lambda i: i.instance_id)
    counts = vpc_counts(ordered)
    chosen = tuple(sorted(set(vpcs)))
    if not chosen:
        if len(counts) > 1:
            return Selection((), (), (), (), (), needs_vpc_choice=counts)
        chosen = tuple(counts)
    to_tag: list[Instance] = []
    already: list[Instance] = []
    excluded: list[Excluded] = []
    for instance in ordered:
        if instance.vpc_id not in chosen:
            excluded.append(Excluded(instance, f"in {instance.vpc_id or 'no VPC'}, not in {', '.join(chosen) or 'the chosen VPC'}"))
        elif instance.state not in ADOPTABLE_STATES:
            excluded.append(Excluded(instance, f"{instance.state}: only running or stopped instances are adopted"))
        elif carries(instance, selector):
            already.append(instance)
        else:
            to_tag.append(instance)
    unmatched = tuple(
        sorted(
            (n for n in {n.instance_id: n for n in neighbours}.values()
             if n.instance_id not in unique and n.vpc_id in chosen and n.state in ADOPTABLE_STATES and not carries(n, selector)),
            key=lambda i: i.instance_id,
        )
    )
    return Selection(tuple(to_tag), tuple(already), tuple(excluded), unmatched, chosen)
