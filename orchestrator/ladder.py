"""Which rungs of the escalation ladder fit an instance.

The configured ladder (reboot, stop/start, replace by default) is the operator's order of
preference; not every rung can be taken on every instance. Replace is done through
Auto Scaling (SetInstanceHealth), so a standalone instance has no replace rung: once
the rungs it has are spent, a human must look. Pure: the plan and the history both ask.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model import ActionKind, Instance


@dataclass(frozen=True, slots=True)
class Fitted:
    rungs: tuple[ActionKind, ...]
    skipped: tuple[str, ...]  # why a configured rung does not fit, for the operator


def rung_problem(instance: Instance, kind: ActionKind) -> str | None:
    """Why ``kind`` cannot be taken on ``instance``, or None when it can."""
    if kind is ActionKind.REPLACE and not instance.asg_name:
        return "replace is done only for Auto Scaling members (SetInstanceHealth); this instance is standalone"
    return None


def fitting_ladder(instance: Instance, ladder: tuple[ActionKind, ...]) -> Fitted:
    rungs: list[ActionKind] = []
    skipped: list[str] = []
    for kind in ladder:
        problem = rung_problem(instance, kind)
        if problem is None:
            rungs.append(kind)
        else:
            skipped.append(f"{kind.value}: {problem}")
    return Fitted(tuple(rungs), tuple(skipped))
