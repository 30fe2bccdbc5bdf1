"""Verdicts from facts, table-driven with a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from orchestrator.config import Settings
from orchestrator.diagnose import diagnose
from orchestrator.model import (
    CheckState,
    Facts,
    MemorySeries,
    ProbeOutcome,
    StatusChecks,
    VerdictKind,
)
from tests.builders import NOW, facts, flat_memory, instance

INST = instance(1)
ID = INST.instance_id
SETTINGS = Settings()


def leak(start: float, per_min: float, minutes: int = 60) -> MemorySeries:
    return MemorySeries(ID, tuple((NOW - timedelta(minutes=minutes - i), start + per_min * i) for i in range(minutes)))


def pinned(percent: float) -> MemorySeries:
    return flat_memory(ID, percent)


def silent_since(minutes_ago: int) -> MemorySeries:
    return MemorySeries(ID, tuple((NOW - timedelta(minutes=minutes_ago + 30 - i), 50.0) for i in range(30)))


IMPAIRED = StatusChecks(ID, CheckState.OK, CheckState.IMPAIRED)
INITIALIZING = StatusChecks(ID, CheckState.INITIALIZING, CheckState.INITIALIZING)

CASES = [
    ("banner answers, memory flat", facts(INST), VerdictKind.HEALTHY, "SSH banner in 10 ms"),
    ("the incident: TCP accepted, no banner, status ok", facts(INST, ProbeOutcome.BANNER_TIMEOUT), VerdictKind.UNREACHABLE, "SSH banner timeout after 5.0 s (TCP accepted)"),
    ("refused while status ok", facts(INST, ProbeOutcome.REFUSED), VerdictKind.UNREACHABLE, "refused"),
    ("connect timeout while status ok", facts(INST, ProbeOutcome.CONNECT_TIMEOUT), VerdictKind.UNREACHABLE, "TCP connect timeout"),
    ("AWS says impaired: left to AWS", facts(INST, ProbeOutcome.BANNER_TIMEOUT, status=IMPAIRED), VerdictKind.AWS_IMPAIRED, "left to EC2 auto-recovery"),
    ("no banner while still initializing: unknown", facts(INST, ProbeOutcome.BANNER_TIMEOUT, status=INITIALIZING), VerdictKind.UNKNOWN, "still booting"),
    ("no address: unknown, never sick", facts(INST, ProbeOutcome.NO_ADDRESS), VerdictKind.UNKNOWN, "no address"),
    ("probe could not run: unknown", facts(INST, ProbeOutcome.ERROR), VerdictKind.UNKNOWN, "probe could not run"),
    ("memory pinned at 99%", facts(INST, memory=pinned(99.0)), VerdictKind.MEMORY_CRITICAL, "99"),
    ("memory leaking toward exhaustion", facts(INST, memory=leak(20.0, 1.2)), VerdictKind.MEMORY_FORECAST, "97%"),
    ("agent went silent", facts(INST, memory=silent_since(20)), VerdictKind.METRICS_STALE, ""),
    ("no memory data at all is not sick", facts(INST, memory=MemorySeries(ID)), VerdictKind.HEALTHY, "no memory data"),
]


@pytest.mark.parametrize("name, f, kind, fragment", CASES, ids=[c[0] for c in CASES])
def test_verdicts(name: str, f: Facts, kind: VerdictKind, fragment: str) -> None:
    v = diagnose(f, NOW, SETTINGS)
    assert v.kind is kind, v.reasons
    assert any(fragment in r for r in v.reasons), v.reasons


def test_unreachable_with_critical_memory_is_corroborated():
    v = diagnose(facts(INST, ProbeOutcome.BANNER_TIMEOUT, memory=pinned(99.0)), NOW, SETTINGS)
    assert v.kind is VerdictKind.UNREACHABLE and v.evidence and v.memory_percent == pytest.approx(99.0)


def test_unreachable_with_flat_memory_is_not_corroborated():
    v = diagnose(facts(INST, ProbeOutcome.BANNER_TIMEOUT), NOW, SETTINGS)
    assert v.kind is VerdictKind.UNREACHABLE and v.evidence == ()


def test_unreachable_with_silent_agent_is_corroborated():
    v = diagnose(facts(INST, ProbeOutcome.BANNER_TIMEOUT, memory=silent_since(20)), NOW, SETTINGS)
    assert v.kind is VerdictKind.UNREACHABLE and v.evidence


def test_stopped_instance_is_unknown():
    f = replace(facts(INST), instance=replace(INST, state="stopped"))
    v = diagnose(f, NOW, SETTINGS)
    assert v.kind is VerdictKind.UNKNOWN and "stopped" in v.reasons[0]


def test_memory_not_read_this_sweep_still_diagnoses_ssh():
    v = diagnose(replace(facts(INST, ProbeOutcome.BANNER_TIMEOUT), memory=None), NOW, SETTINGS)
    assert v.kind is VerdictKind.UNREACHABLE and v.memory_percent is None
