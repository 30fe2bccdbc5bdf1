"""Does the guard work on a box? Pure: what the box said (status lines) and what orch recorded since.

It works when the kernel killed the service inside its limit and it came back (a restart
or a kill counted since the guard began), while SSH never failed and orch never had to act.
It did not work when orch acted on the box, or SSH failed, after the guard began. Until the
first kill it is not proven: the leak has not reached the limit yet.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone

from orchestrator.guard.script import BoxStatus
from orchestrator.model import InstanceHistory


class Judgement(str, enum.Enum):
    WORKS = "works"
    FAILED = "did not work"
    UNPROVEN = "not proven yet"
    ABSENT = "not applied"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Verdict:
    judgement: Judgement
    why: str
    kills: int | None = None
    actions_since: int = 0


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def judge(box: BoxStatus, history: InstanceHistory | None, now: datetime) -> Verdict:
    if box.applied is None:
        return Verdict(Judgement.UNKNOWN, "the box did not answer")
    if not box.applied:
        return Verdict(Judgement.ABSENT, "no guard on this box")
    if box.since is None:
        return Verdict(Judgement.UNKNOWN, "the guard's start is not recorded on the box")
    since = datetime.fromtimestamp(box.since, timezone.utc)
    hours = max(0.0, (now - since).total_seconds() / 3600)
    acted = [a for a in (history.actions if history else ()) if a.taken and a.at >= since]
    if acted:
        kinds = ", ".join(sorted({a.kind.value for a in acted}))
        return Verdict(Judgement.FAILED, f"orch acted {len(acted)} time(s) since the guard began {hours:.1f} h ago ({kinds})",
                       actions_since=len(acted))
    if history is not None and history.first_failure_at is not None and history.first_failure_at >= since:
        return Verdict(Judgement.FAILED, f"SSH failed at {history.first_failure_at:%Y-%m-%d %H:%M} UTC, after the guard began")
    service = box.service
    counts = [c for c in (_count(service.get("oom_kills")), _count(service.get("restarts"))) if c is not None]
    kills = max(counts) if counts else None
    process = service.get("process") or "the service"
    if service.get("running") != "yes":
        return Verdict(Judgement.FAILED if service else Judgement.UNPROVEN,
                       f"{process} is not running" if service else "no process bounded (shields only)", kills)
    if kills:
        return Verdict(Judgement.WORKS, f"the kernel stopped {process} inside its limit {kills} time(s) and it came back; "
                       f"SSH never failed and orch never acted in {hours:.1f} h", kills)
    return Verdict(Judgement.UNPROVEN, f"no kill in the {hours:.1f} h since the guard began: the leak has not reached the limit yet", kills)
