"""Points right after an action are the old box's until memory falls (issue 18, found by the sweep property test).

A wedged guest keeps reporting 98-99% until EC2's hard reboot, four minutes after the call;
the box then answers SSH and is verified. Those points must not make the new cycle critical
and act on it again a minute after it came back.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.config import MemorySettings
from orchestrator.decide.memory import MemoryState, assess_memory, since_cycle
from orchestrator.model import MemorySeries

START = datetime(2026, 1, 5, 1, 38, 15, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


WEDGED_UNTIL_HARD_REBOOT = [(at(m), 98.5) for m in (-3, -2, -1, 0.75, 1.75, 2.75, 3.75)]


@pytest.mark.parametrize(
    "name, points, now, kept",
    [
        ("no fall yet, within the settle window: nothing of the new cycle", WEDGED_UNTIL_HARD_REBOOT, at(5.5), 0),
        ("the fall after the hard reboot starts the cycle", WEDGED_UNTIL_HARD_REBOOT + [(at(5.75), 31.0), (at(6.75), 33.0)], at(7), 2),
        ("no fall after the settle window: the action did not reset memory", WEDGED_UNTIL_HARD_REBOOT + [(at(m), 98.5) for m in (6, 8, 10, 11)], at(11),
         len([p for p in WEDGED_UNTIL_HARD_REBOOT if p[0] >= START]) + 4),
        ("no cycle start: every point", WEDGED_UNTIL_HARD_REBOOT, None, len(WEDGED_UNTIL_HARD_REBOOT)),
        ("the old box fell silent before the action: the first point after it is the new cycle's",
         [(at(m), 98.5) for m in (-3, -2, -1)] + [(at(m), 35.0 + m) for m in (1, 2, 3)], at(4), 3),
    ],
)
def test_since_cycle(name: str, points: list, now: datetime | None, kept: int) -> None:
    start = None if now is None else START
    assert len(since_cycle(points, start, now)) == kept


def test_a_box_just_back_from_a_hard_reboot_is_not_critical() -> None:
    series = MemorySeries("i-1", tuple(WEDGED_UNTIL_HARD_REBOOT))
    found = assess_memory(series, at(5.5), MemorySettings(), cycle_start=START)
    assert found.state is MemoryState.NO_DATA
