"""How many actions a sweep may still take: per sweep, per hour, per Auto Scaling group, in flight included."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from orchestrator.config import Settings
from orchestrator.decide.candidate import IN_SERVICE, Candidate, Stop
from orchestrator.decide.history import recent_attempts
from orchestrator.model import (
    BlockRule,
    Facts,
    InstanceHistory,
)


@dataclass
class Budget:
    """Actions this sweep may still take, counting actions still in flight."""

    settings: Settings
    now: datetime
    per_sweep_left: int
    per_hour_left: int
    group_in_flight: Counter[str]
    group_size: Mapping[str, int]

    @classmethod
    def start(cls, settings: Settings, now: datetime, facts: Mapping[str, Facts], histories: Mapping[str, InstanceHistory]) -> Budget:
        hour = timedelta(hours=1)
        taken_last_hour = sum(recent_attempts(h, now, hour) for h in histories.values())
        in_flight: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for instance_id, f in facts.items():
            group = f.instance.asg_name
            if not group:
                continue
            if f.instance.state == "running" and (f.lifecycle_state in (None, IN_SERVICE)):
                sizes[group] += 1
            h = histories.get(instance_id)
            if h is not None and h.in_flight_key is not None:
                in_flight[group] += 1
        return cls(
            settings,
            now,
            settings.safety.max_actions_per_sweep,
            settings.safety.max_actions_per_hour - taken_last_hour,
            in_flight,
            sizes,
        )

    def group_limit(self, group: str) -> int:
        size = self.group_size.get(group, 0)
        return max(1, int(size * self.settings.safety.max_group_percent / 100))

    def refuse(self, c: Candidate) -> Stop | None:
        s = self.settings.safety
        if self.per_sweep_left <= 0:
            return BlockRule.BUDGET_SWEEP, f"max {s.max_actions_per_sweep} actions per sweep reached"
        if self.per_hour_left <= 0:
            return BlockRule.BUDGET, f"max {s.max_actions_per_hour} actions per hour reached (in-flight included)"
        group = c.facts.instance.asg_name
        if group and self.group_in_flight[group] >= self.group_limit(group):
            return BlockRule.BUDGET, (
                f"Auto Scaling group {group} already has {self.group_in_flight[group]} action(s) in flight "
                f"(limit {self.group_limit(group)}: {s.max_group_percent:g}% of {self.group_size.get(group, 0)} in service)"
            )
        return None

    def spend(self, c: Candidate) -> None:
        self.per_sweep_left -= 1
        self.per_hour_left -= 1
        if c.facts.instance.asg_name:
            self.group_in_flight[c.facts.instance.asg_name] += 1
