"""Verdicts from facts, table-driven with a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from orchestrator.config import Settings
from orchestrator.decide.diagnose import diagnose
from orchestrator.model import (
    CheckState,
    Corroboration,
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


def silent_after(values: list[float], minutes_ago: int) -> MemorySeries:
    """One point a minute ending ``minutes_ago`` minutes before NOW."""
    n = len(values)
    return MemorySeries(ID, tuple((NOW - timedelta(minutes=minutes_ago + n - 1 - i), v) for i, v in enumerate(values)))


SILENCE = [
    # name, series, corroborated as
    ("silent at a flat 50%: a network fault silences a healthy agent too", silent_since(20), Corroboration.NONE),
    ("silent after reaching 98.5%: the agent starved at the top", silent_after([60.0 + i * 1.3 for i in range(29)] + [98.5], 15), Corroboration.SILENT_AT_TOP),
    ("silent while climbing to exhaustion by now", silent_after([40.0 + 1.5 * i for i in range(31)], 15), Corroboration.SILENT_AT_TOP),
    ("silent while climbing, but exhaustion still ahead", silent_after([40.0 + 0.5 * i for i in range(31)], 11), Corroboration.NONE),
]


@pytest.mark.parametrize("name, series, corroboration", SILENCE, ids=[c[0] for c in SILENCE])
def test_silence_corroborates_only_at_the_top_of_a_climb(name: str, series: MemorySeries, corroboration: Corroboration) -> None:
    v = diagnose(facts(INST, ProbeOutcome.BANNER_TIMEOUT, memory=series), NOW, SETTINGS)
    assert v.kind is VerdictKind.UNREACHABLE and v.agent_silent
    assert v.corroboration is corroboration and bool(v.evidence) is (corroboration is not Corroboration.NONE), v.reasons


def test_fresh_critical_memory_corroborates_as_memory():
    v = diagnose(facts(INST, ProbeOutcome.BANNER_TIMEOUT, memory=pinned(99.0)), NOW, SETTINGS)
    assert v.corroboration is Corroboration.MEMORY and not v.agent_silent


def test_a_box_rebooted_a_moment_ago_is_not_judged_by_the_box_before_it():
    """The agent has not reported since the boot: the newest points are the old box's."""
    series = MemorySeries(ID, tuple((NOW - timedelta(minutes=61 - i), 99.0) for i in range(60)))
    at_reboot = NOW - timedelta(seconds=50)
    assert diagnose(facts(INST, memory=series), NOW, SETTINGS).kind is VerdictKind.MEMORY_CRITICAL  # no cycle known
    v = diagnose(facts(INST, memory=series), NOW, SETTINGS, cycle_start=at_reboot)
    assert v.kind is VerdictKind.HEALTHY and v.memory_percent is None and "no memory data" in v.reasons, v.reasons


def test_the_last_point_before_a_reboot_is_not_the_cycle_even_if_it_came_after_the_decision():
    """The decision is recorded a few seconds before the reboot call; a point can land in between."""
    decided = NOW - timedelta(minutes=10, seconds=20)
    points = [(decided + timedelta(seconds=15), 98.0)] + [(decided + timedelta(minutes=2 + i), 30.0 + 2.0 * i) for i in range(8)]
    v = diagnose(facts(INST, memory=MemorySeries(ID, tuple(points))), NOW, SETTINGS, cycle_start=decided)
    assert v.kind is VerdictKind.MEMORY_FORECAST and v.memory_slope_per_min == pytest.approx(2.0), v.reasons


def test_stopped_instance_is_unknown():
    f = replace(facts(INST), instance=replace(INST, state="stopped"))
    v = diagnose(f, NOW, SETTINGS)
    assert v.kind is VerdictKind.UNKNOWN and "stopped" in v.reasons[0]


def test_memory_not_read_this_sweep_still_diagnoses_ssh():
    v = diagnose(replace(facts(INST, ProbeOutcome.BANNER_TIMEOUT), memory=None), NOW, SETTINGS)
    assert v.kind is VerdictKind.UNREACHABLE and v.memory_percent is None
