"""What is worth telling a human this sweep: news, not every sweep's state.

A healer that pages on every sweep is muted within a day, and then its one important
message (the breaker opened; this is a leak, not bad luck) is missed. So a sweep's
findings become *items*, each with a stable key:

- events are told once: an action taken (on an instance that is not part of a known
  chronic pattern), an action that failed or may not have run;
- conditions are told when they begin, again when they change, again every
  ``notify.remind_hours`` while they last, and (fleet-wide ones) when they end: the
  circuit breaker, a network fault in a place, a broken prober, a quarantine, a chronic
  pattern, a block that needs a human (no rung left, budget exhausted, SSM offline).

Blocks that are the operator's own choice or resolve themselves (opted out, in flight,
launch grace, not confirmed yet) are never news. Pure: the state of what was told is
passed in and returned, and the sweep stores it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from orchestrator.decide.patterns import ChronicPattern
from orchestrator.model import ActionOutcome, Blocked, BlockRule, OutcomeStatus, Plan
from orchestrator.state.store import AlertBook, AlertRecord

# Conditions whose end is news too: the fleet can be healed again.
FLEET_RULES = frozenset({BlockRule.BREAKER, BlockRule.MEMORY_BREAKER, BlockRule.NETWORK_FAULT, BlockRule.PROBER, BlockRule.CANARY})
FLEET_PREFIX = "fleet:"


Told = AlertRecord  # key, told_at, digest (what it looked like: a change is news), text


@dataclass(frozen=True, slots=True)
class AlertState:
    told: Mapping[str, Told] = field(default_factory=dict)

    @classmethod
    def from_book(cls, book: AlertBook) -> AlertState:
        return cls({r.key: r for r in book.records})

    def to_book(self, scope: str) -> AlertBook:
        return AlertBook(scope, tuple(self.told[k] for k in sorted(self.told)))


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    text: str
    lasting: bool  # a condition (reminded while it lasts) rather than an event
    digest: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    new: tuple[Item, ...]  # begun or changed this sweep, or events
    reminders: tuple[Item, ...]  # lasting and not told for remind_hours
    ended: tuple[Told, ...]  # fleet-wide conditions told before that no longer hold
    state: AlertState

    @property
    def anything(self) -> bool:
        return bool(self.new or self.reminders or self.ended)


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def pattern_item(pattern: ChronicPattern, ssm_configured: bool) -> Item:
    """A chronic pattern is news when it appears or its shape changes, not when orch acts again."""
    shape = (
        len(pattern.members).bit_length(),  # 1, 2-3, 4-7, 8-15...: a pattern that doubles has changed
        round(pattern.exhaustion_minutes / 10) if pattern.exhaustion_minutes is not None else None,
        round(pattern.growth_per_min * 2) if pattern.growth_per_min is not None else None,
        pattern.process,
    )
    return Item(pattern.key, pattern.describe(ssm_configured), lasting=True, digest=_digest(*shape))


def items(
    plan: Plan,
    outcomes: Iterable[ActionOutcome],
    patterns: Iterable[ChronicPattern],
    chronic_ids: frozenset[str],
    quarantined: Mapping[str, str],
    action_lines: Mapping[str, str],
    ssm_configured: bool,
    dry_run: bool,
) -> list[Item]:
    """Everything this sweep could tell, keyed; ``action_lines`` are the words for each action."""
    found: list[Item] = []
    by_id = {o.action.instance_id: o for o in outcomes}
    for action in plan.actions:
        outcome = by_id.get(action.instance_id)
        line = action_lines.get(action.instance_id, action.reason)
        if dry_run or outcome is None or outcome.status is OutcomeStatus.DRY_RUN:
            # What a dry run would do is a condition: told once while it stays planned.
            found.append(Item(f"would:{action.instance_id}:{action.kind.value}", line, lasting=True))
            continue
        routine = outcome.status is OutcomeStatus.DONE and action.instance_id in chronic_ids
        if not routine:  # a chronic instance's routine action is told in its pattern
            found.append(Item(f"action:{action.instance_id}:{action.kind.value}", line, lasting=False))
    for pattern in patterns:
        found.append(pattern_item(pattern, ssm_configured))
    for instance_id, reason in sorted(quarantined.items()):
        found.append(Item(f"quarantine:{instance_id}", f"{instance_id} quarantined: {reason}", lasting=True, digest=_digest(reason)))
    fleet_seen: set[BlockRule] = set()
    for blocked in plan.blocked:
        found.extend(_block_items(blocked, fleet_seen))
    return found


def _block_items(blocked: Blocked, fleet_seen: set[BlockRule]) -> list[Item]:
    rule = blocked.rule
    if rule.expected or rule in (BlockRule.PAUSED, BlockRule.QUARANTINE, BlockRule.BUDGET_SWEEP):
        return []  # the operator's choice, served by the next sweep, or told as its own condition
    if rule in FLEET_RULES:
        if rule in fleet_seen:
            return []
        fleet_seen.add(rule)
        return [Item(f"{FLEET_PREFIX}{rule.value}", blocked.why, lasting=True)]
    return [Item(f"block:{blocked.instance_id}:{rule.value}", f"{blocked.instance_id} not acted on: {blocked.why}", lasting=True)]


def decide(found: Iterable[Item], state: AlertState, now: datetime, remind: timedelta, complete: bool = True) -> Decision:
    """``complete=False``: ``found`` is not the whole fleet's news (a person's single action),
    so what it does not mention is neither ended nor forgotten."""
    new: list[Item] = []
    reminders: list[Item] = []
    told: dict[str, Told] = {}
    for item in found:
        before = state.told.get(item.key)
        if not item.lasting:
            new.append(item)
            continue
        if before is None or before.digest != item.digest:
            new.append(item)
            told[item.key] = Told(item.key, now, item.digest, item.text)
        elif now - before.told_at >= remind:
            reminders.append(item)
            told[item.key] = Told(item.key, now, item.digest, item.text)
        else:
            told[item.key] = before
    if not complete:
        kept = {key: t for key, t in state.told.items() if key not in told}
        return Decision(tuple(new), tuple(reminders), (), AlertState({**kept, **told}))
    ended = tuple(t for key, t in sorted(state.told.items()) if key not in told and key.startswith(FLEET_PREFIX))
    return Decision(tuple(new), tuple(reminders), ended, AlertState(told))
