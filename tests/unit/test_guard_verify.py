"""Does the guard work? Judged from the box's status lines and orch's record since the guard began."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.guard.script import parse_status
from orchestrator.guard.verify import Judgement, judge
from orchestrator.model import ActionAttempt, ActionKind, InstanceHistory

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
SINCE = NOW - timedelta(hours=6)


def lines(*service: str, since: datetime | None = SINCE, applied: str = "yes") -> str:
    head = f"ORCH_GUARD state applied={applied}" + (f" since={int(since.timestamp())}" if since else "")
    return "\n".join([head, *(f"ORCH_GUARD service process=ruby {s}" for s in service)])


def reboot(hours_ago: float) -> ActionAttempt:
    return ActionAttempt(at=NOW - timedelta(hours=hours_ago), kind=ActionKind.REBOOT)


@pytest.mark.parametrize(
    ("stdout", "history", "judgement", "says"),
    [
        (lines("running=yes oom_kills=0 restarts=14"), None, Judgement.WORKS, "14 time(s)"),
        (lines("running=yes oom_kills=9 restarts=unknown"), None, Judgement.WORKS, "9 time(s)"),  # own cgroup: the kernel's count
        (lines("running=yes oom_kills=0 restarts=0"), None, Judgement.UNPROVEN, "not reached the limit"),
        (lines("running=yes oom_kills=3 restarts=3"), InstanceHistory("i-1", actions=(reboot(2),)), Judgement.FAILED, "orch acted 1 time(s)"),
        (lines("running=yes oom_kills=3 restarts=3"), InstanceHistory("i-1", actions=(reboot(7),)), Judgement.WORKS, "3 time(s)"),  # before it
        (lines("running=yes oom_kills=3 restarts=3"), InstanceHistory("i-1", first_failure_at=NOW - timedelta(minutes=5)),
         Judgement.FAILED, "SSH failed"),
        (lines("running=no"), None, Judgement.FAILED, "not running"),
        (lines("running=yes oom_kills=2", since=None), None, Judgement.UNKNOWN, "not recorded"),
        ("ORCH_GUARD state applied=no", None, Judgement.ABSENT, "no guard"),
        ("", None, Judgement.UNKNOWN, "did not answer"),
    ],
)
def test_the_guard_is_judged_from_the_box_and_the_record(stdout, history, judgement, says):
    verdict = judge(parse_status(stdout), history, NOW)
    assert verdict.judgement is judgement and says in verdict.why, verdict
