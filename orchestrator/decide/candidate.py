"""What the plan weighs for one instance: a candidate action with the facts and history behind it."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.decide.chronic import Chronic
from orchestrator.model import (
    ActionKind,
    BlockRule,
    Facts,
    InstanceHistory,
    Verdict,
)

IN_SERVICE = "InService"


@dataclass(frozen=True, slots=True)
class Candidate:
    facts: Facts
    verdict: Verdict
    history: InstanceHistory
    kind: ActionKind
    chronic: Chronic | None = None
    corroborated: bool = False  # host-side evidence that no fleet-wide fault explains
    ahead: bool = False  # SSH still answers: acting ahead of a forecast exhaustion
    rung_note: str = ""  # a substitute or skipped rung (orchestrator.decide.rungs), said in the reason
    misfit: str | None = None  # no rung from the ladder's position on fits this instance
    note: str = ""  # why now, when the verdict alone does not say (a chronic cycle's due moment)

    @property
    def instance_id(self) -> str:
        return self.facts.instance.instance_id


Stop = tuple[BlockRule, str]
