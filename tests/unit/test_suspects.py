"""Who needs which extra facts (decide/suspects.py): one pure choice, read by AwsFleet and SimFleet alike."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.config import Settings
from orchestrator.decide.suspects import Suspects, choose_suspects, memory_targets
from orchestrator.model import ActionKind, InstanceHistory, ProbeOutcome, VerdictKind
from tests.builders import facts, instance, probe, verdict


def fleet():
    """1 unreachable standalone, 2 unreachable in a group, 3 memory-critical, 4 healthy, 5 unreachable on instance store."""
    made = [
        facts(instance(1), ProbeOutcome.BANNER_TIMEOUT),
        facts(instance(2, asg="crawlers"), ProbeOutcome.BANNER_TIMEOUT),
        facts(instance(3)),
        facts(instance(4)),
        facts(replace(instance(5), root_device_type="instance-store"), ProbeOutcome.BANNER_TIMEOUT),
    ]
    kinds = [VerdictKind.UNREACHABLE, VerdictKind.UNREACHABLE, VerdictKind.MEMORY_CRITICAL, VerdictKind.HEALTHY, VerdictKind.UNREACHABLE]
    return made, [verdict(f, k) for f, k in zip(made, kinds)]


def ids(*numbers: int) -> frozenset[str]:
    return frozenset(instance(n).instance_id for n in numbers)


def test_defaults_read_the_group_member_and_the_stoppable_standalone_only():
    made, verdicts = fleet()
    assert choose_suspects(made, verdicts, Settings()) == Suspects(lifecycle=ids(2), ssm_reach=frozenset(), stoppable=ids(1))


def test_a_healthy_fleet_needs_nothing_more():
    made = [facts(instance(n)) for n in (1, 2)]
    chosen = choose_suspects(made, [verdict(f, VerdictKind.HEALTHY) for f in made], Settings())
    assert chosen == Suspects() and not chosen


def test_ssm_commands_make_memory_suspects_need_ssm_reach_and_their_group_state():
    made, verdicts = fleet()
    config = Settings.model_validate({"memory": {"proactive": "ssm", "ssm_commands": ["systemctl restart crawler"]}})
    chosen = choose_suspects(made, verdicts, config)
    assert chosen.ssm_reach == ids(3)
    assert chosen.lifecycle == ids(2)  # 3 is standalone: no group state to read


def test_chronic_commands_off_means_no_ssm_read():
    made, verdicts = fleet()
    config = Settings.model_validate({"memory": {"ssm_commands": ["systemctl restart crawler"]}, "chronic": {"action": "off"}})
    assert choose_suspects(made, verdicts, config).ssm_reach == frozenset()


def test_no_stop_start_rung_no_stop_facts_unless_a_person_asks():
    made, verdicts = fleet()
    config = Settings.model_validate({"safety": {"ladder": [ActionKind.REBOOT.value]}})
    assert choose_suspects(made, verdicts, config).stoppable == frozenset()
    asked = choose_suspects(made, verdicts, config, also_stoppable=ids(4))
    assert asked.stoppable == ids(4)


def test_memory_targets_read_everyone_on_a_full_sweep_else_the_suspects():
    running = [instance(n) for n in (1, 2, 3)]
    probes = {running[0].instance_id: probe(ProbeOutcome.BANNER_TIMEOUT), running[1].instance_id: probe(ProbeOutcome.OK)}
    histories = {running[2].instance_id: InstanceHistory(running[2].instance_id, last_verdict=VerdictKind.MEMORY_FORECAST)}
    assert memory_targets(running, probes, histories, full=True) == [i.instance_id for i in running]
    assert memory_targets(running, probes, histories, full=False) == [running[0].instance_id, running[2].instance_id]
