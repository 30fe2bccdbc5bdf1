"""An instance orch stopped is started by orch: finding the ones a stop/start left stopped.

A stop/start can end with the instance still stopped or stopping: the graceful stop and
then ``Force=True`` outlasted their waits, StartInstances failed after a good stop
(``InsufficientInstanceCapacity``), the reply to it was lost, or the Lambda died while
waiting. Inventory sees such an instance as stopped (verdict unknown) and the plan
never picks it, so without this it would stay stopped for good.

Pure. Which instances to ask the store about comes from what the sweep already read
(state, history), so a healthy fleet costs no call; the decision comes from the
instance's latest action record: the intent of a stop/start that never recorded an
outcome, an outcome marked START_PENDING or uncertain, or a start that failed.
"""

from __future__ import annotations

from typing import Sequence

from orchestrator.model import START_PENDING, Action, ActionKind, ActionRecord, ActionStatus, Instance, InstanceHistory, VerdictKind

WAITING = ("stopped", "stopping")
# What the instance was last seen as while running, when orch may have been acting on it.
SUSPECTED = frozenset({VerdictKind.UNREACHABLE, VerdictKind.MEMORY_CRITICAL, VerdictKind.MEMORY_FORECAST, VerdictKind.METRICS_STALE})
UNCERTAIN = "uncertain:"  # how the journal prefixes an uncertain outcome's detail


def worth_asking(instance: Instance, history: InstanceHistory | None) -> bool:
    """Stopped or stopping, and orch had a hand in it: its last action, or a suspicion."""
    if instance.state not in WAITING or history is None:
        return False
    return history.last_action in (ActionKind.STOP_START, ActionKind.START) or history.last_verdict in SUSPECTED


def start_pending(record: ActionRecord | None) -> bool:
    """Whether this latest action record leaves a start of orch's owed."""
    if record is None:
        return False
    uncertain = record.detail.startswith(UNCERTAIN)
    if record.action is ActionKind.STOP_START:
        return (
            record.status is ActionStatus.INTENT  # died mid-action: may have stopped it
            or (record.status is ActionStatus.FAILED and START_PENDING in record.detail)
            or (record.status is ActionStatus.DONE and uncertain)
        )
    if record.action is ActionKind.START:
        return record.status in (ActionStatus.INTENT, ActionStatus.FAILED) or uncertain
    return False


def start_actions(pending: Sequence[tuple[Instance, ActionRecord]], limit: int) -> tuple[list[Action], list[str]]:
    """Start actions for the first ``limit`` of them, and a note for each one left waiting.

    Starting what orch stopped undoes an outage orch caused, so it is not held back by
    the circuit breaker; it still passes the executor's gate (lease, pause, deadline) and
    is capped at max_actions_per_sweep starts a sweep.
    """
    actions: list[Action] = []
    notes: list[str] = []
    for instance, record in sorted(pending, key=lambda p: (p[1].created_at, p[0].instance_id)):
        what = f"{record.action.value} at {record.created_at:%Y-%m-%d %H:%M} UTC ({record.detail or record.status.value})"
        if len(actions) < limit:
            actions.append(Action(instance.instance_id, ActionKind.START, f"left {instance.state} by orch's {what}", asg_name=instance.asg_name))
        else:
            notes.append(f"{instance.instance_id} is {instance.state} after orch's {what}: start pending, max {limit} starts a sweep reached")
    return actions, notes
