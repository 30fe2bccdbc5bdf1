"""Fleet patterns: the troubled instances' common AMI / type / group / tag stands out."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.decide.patterns import patterns
from orchestrator.model import VerdictKind
from tests.builders import facts, instance, verdict


def test_the_new_app_version_stands_out():
    fleet = []
    verdicts = {}
    for n in range(8):
        version = "v2" if n < 4 else "v1"
        inst = replace(instance(n, tags={"app:version": version}), image_id="ami-new" if n < 4 else "ami-old", instance_type="m5.large")
        f = facts(inst)
        fleet.append(f)
        kind = VerdictKind.UNREACHABLE if n < 3 else (VerdictKind.MEMORY_FORECAST if n == 3 else VerdictKind.HEALTHY)
        verdicts[inst.instance_id] = verdict(f, kind)
    stopped = replace(instance(99, tags={"app:version": "v2"}), state="stopped")
    fleet.append(facts(stopped))
    verdicts[stopped.instance_id] = verdict(fleet[-1], VerdictKind.UNKNOWN)

    found = patterns(fleet, verdicts, tag="app:version")

    top = found["tag app:version"][0]
    assert (top.value, top.total, top.unhealthy, top.leaking) == ("v2", 4, 3, 1)
    assert found["tag app:version"][1].value == "v1" and found["tag app:version"][1].share == 0
    assert found["ami"][0].value == "ami-new"
    (only_type,) = found["instance type"]
    assert (only_type.total, only_type.unhealthy + only_type.leaking) == (8, 4)


def test_no_tag_no_tag_dimension():
    assert "tag x" not in patterns([], {}, None) and set(patterns([], {}, "x")) >= {"ami", "tag x"}


def test_leaking_is_the_verdicts_leaking_so_the_counts_agree():
    """`orch report` once said "leaking 4" where the verdicts said 2: one definition now."""
    fleet, verdicts = [], {}
    for n, kind, slope in ((0, VerdictKind.MEMORY_FORECAST, 1.0), (1, VerdictKind.MEMORY_FORECAST, 0.8),
                           (2, VerdictKind.HEALTHY, 0.9), (3, VerdictKind.HEALTHY, 2.0), (4, VerdictKind.UNREACHABLE, 1.5)):
        f = facts(instance(n))
        fleet.append(f)
        verdicts[f.instance.instance_id] = replace(verdict(f, kind), memory_slope_per_min=slope)
    found = patterns(fleet, verdicts)
    forecast = sum(1 for v in verdicts.values() if v.kind is VerdictKind.MEMORY_FORECAST)
    for rows in found.values():
        assert sum(r.leaking for r in rows) == forecast == 2
        assert sum(r.unhealthy for r in rows) == 1
