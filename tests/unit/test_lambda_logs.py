"""The breaker metric reads the blocks' rule, not the notes' wording."""

from __future__ import annotations

from lambdas.logs import breaker_tripped
from orchestrator.model import BlockRule


def block(rule: BlockRule, why: str = "held") -> dict[str, str]:
    return {"instance_id": "i-1", "action": "reboot", "why": why, "rule": rule.value}


def test_a_breaker_or_prober_block_trips_whatever_its_words():
    assert breaker_tripped([block(BlockRule.DEBOUNCE), block(BlockRule.BREAKER, "reworded")])
    assert breaker_tripped([block(BlockRule.PROBER, "")])


def test_words_alone_trip_nothing():
    assert not breaker_tripped([block(BlockRule.BUDGET, "circuit breaker open; every probe failed")])
    assert not breaker_tripped([])
