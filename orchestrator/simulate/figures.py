"""What one simulated run measured, and which policy ran it: the type scenarios judge.

Its own module so that scenarios (which judge figures) and run (which makes them) both
import it and not each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Policy(str, enum.Enum):
    ORCH = "orch"
    NOBODY = "nobody"  # nobody acts
    REACTIVE = "reactive"  # reboot every box not answering SSH at each sweep (a perfect detector)
    NAIVE = "naive"  # the cron script: reboot every instance whose probe fails, unless rebooted in the last 10 min
    ORACLE = "oracle"  # knows when each box will wedge: reboots it at most ORACLE_AHEAD before, and any box down


@dataclass(frozen=True)
class Figures:
    scenario: str
    policy: Policy
    hours: float
    instances: int
    sweeps: int
    availability: float
    wedged_box_hours: float
    actions: dict[str, int]
    actions_total: int
    failed_actions: int
    on_fine_boxes: int
    quarantined: int
    first_quarantine_hours: float | None
    quarantine_reasons: tuple[str, ...]
    chronic: int
    messages: int
    message_subjects: tuple[str, ...]
    chronic_text: tuple[str, ...]
    down_to_action_median_min: float | None
    down_to_action_p95_min: float | None
    max_actions_in_an_hour: int
    api_calls: dict[str, int] = field(default_factory=dict)
    max_budgeted_in_an_hour: int = 0  # the same, counting only what the fleet's budgets count (not chronic boxes)
    seeds: int = 1  # runs this row stands for (see ``combine``)
    availability_min: float | None = None  # the worst seed's, when several
    service_restarts: int = 0  # the guard's: the kernel killed the service inside its limit, it restarted
    guard: str = ""  # what the guard did, when the boxes have one

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "policy": self.policy.value,
            "hours": self.hours,
            "instances": self.instances,
            "sweeps": self.sweeps,
            "availability": round(self.availability, 4),
            "wedged_box_hours": round(self.wedged_box_hours, 2),
            "actions": self.actions,
            "actions_total": self.actions_total,
            "failed_actions": self.failed_actions,
            "actions_on_fine_boxes": self.on_fine_boxes,
            "quarantined": self.quarantined,
            "first_quarantine_hours": None if self.first_quarantine_hours is None else round(self.first_quarantine_hours, 2),
            "quarantine_reasons": list(self.quarantine_reasons),
            "chronic_instances": self.chronic,
            "messages": self.messages,
            "message_subjects": list(self.message_subjects),
            "chronic_text": list(self.chronic_text),
            "down_to_action_minutes": {"median": _round(self.down_to_action_median_min), "p95": _round(self.down_to_action_p95_min)},
            "max_actions_in_an_hour": self.max_actions_in_an_hour,
            "max_budgeted_actions_in_an_hour": self.max_budgeted_in_an_hour,
            "api_calls": self.api_calls,
            "seeds": self.seeds,
            "availability_min": None if self.availability_min is None else round(self.availability_min, 4),
            "service_restarts": self.service_restarts,
            "guard": self.guard,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
