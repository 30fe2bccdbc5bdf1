"""The one model of a box: memory, sshd, the agent and the effect of each action, at fixed times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.box.model import Behaviour, Box, Fault, Power, Sshd

T0 = datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc)
LEAK = Behaviour(base_percent=30.0, leak_per_min=2.0, wedge_percent=97.0, noise=0.0, boot_seconds=60.0, shutdown_seconds=0.0, hard_reboot_seconds=0.0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("minute", "sshd", "memory", "wedged"),
    [
        (0, Sshd.OK, 30.0, False),
        (10, Sshd.OK, 50.0, False),
        (33, Sshd.OK, 96.0, False),
        (33.5, Sshd.HUNG, None, True),  # 97% reached at 33.5 min: sshd cannot fork
        (120, Sshd.HUNG, None, True),
    ],
)
def test_a_leak_climbs_then_wedges_sshd(minute: float, sshd: Sshd, memory: float | None, wedged: bool) -> None:
    box = Box.booted("b", LEAK, T0)
    assert box.sshd(at(minute)) is sshd and box.wedged(at(minute)) is wedged
    if memory is not None:
        assert box.memory(at(minute)) == pytest.approx(memory)
    else:
        assert 98.0 <= box.memory(at(minute)) <= 99.5


def test_reboot_refuses_ssh_while_booting_then_leaks_again() -> None:
    box = Box.booted("b", LEAK, T0)
    box.reboot(at(40))
    assert box.sshd(at(40.5)) is Sshd.REFUSED and box.memory(at(40.5)) is None  # booting: no sshd, no agent
    assert box.sshd(at(41.1)) is Sshd.OK and box.memory(at(41.1)) == pytest.approx(30.2, abs=0.01)
    assert box.wedged_since(at(80)) == at(41) + timedelta(minutes=33.5)  # the next wedge, one cycle later


def test_service_restart_keeps_sshd_up_and_resets_memory_after_it_restarts() -> None:
    box = Box.booted("b", LEAK, T0)
    assert box.restart_service(at(30))
    assert box.sshd(at(30.1)) is Sshd.OK and box.memory(at(30.2)) == pytest.approx(90.4)  # still the old process
    assert box.memory(at(30.5)) == pytest.approx(30.0 + 2.0 * (10 / 60), abs=0.01)


def test_a_wedged_box_cannot_run_an_ssm_command() -> None:
    box = Box.booted("b", LEAK, T0)
    assert not box.restart_service(at(40)) and box.wedged(at(41))


@pytest.mark.parametrize(
    ("behaviour", "after_reboot"),
    [
        (Behaviour(fault=Fault.HUNG, fault_after_minutes=0.0, noise=0.0, shutdown_seconds=0), Sshd.HUNG),  # never comes back
        (Behaviour(fault=Fault.HUNG, fault_after_minutes=3.0, noise=0.0, shutdown_seconds=0), Sshd.OK),  # flapping: fine for 3 min...
        (Behaviour(noise=0.0, shutdown_seconds=0), Sshd.OK),
    ],
)
def test_faults_of_the_behaviour_strike_every_cycle(behaviour: Behaviour, after_reboot: Sshd) -> None:
    box = Box.booted("b", behaviour, T0)
    box.reboot(at(10))
    assert box.sshd(at(11.5)) is after_reboot
    if behaviour.fault_after_minutes:
        assert box.sshd(at(11 + behaviour.fault_after_minutes + 0.1)) is Sshd.HUNG  # ...then hangs again


def test_a_wedged_guest_is_hard_rebooted_after_four_minutes_a_clean_one_at_once() -> None:
    slow = Behaviour(base_percent=30.0, leak_per_min=2.0, wedge_percent=97.0, noise=0.0, boot_seconds=60.0)
    wedged = Box.booted("w", slow, T0)
    assert wedged.reboot(at(40)) == at(44)  # cannot shut down: EC2's hard reboot
    assert wedged.sshd(at(44.5)) is Sshd.REFUSED and wedged.sshd(at(45.1)) is Sshd.OK
    assert wedged.down_since(at(44.5)) == at(33.5)  # down since the wedge, not since the reboot
    clean = Box.booted("c", slow, T0)
    assert clean.reboot(at(20)) == at(20) + timedelta(seconds=10)  # a clean shutdown
    assert clean.down_since(at(20.5)) == at(20) and clean.down_since(at(22)) is None


def test_stop_then_start_is_a_new_boot() -> None:
    box = Box.booted("b", LEAK, T0)
    done = box.stop(at(40))
    assert box.sshd(at(40.2)) is Sshd.HUNG  # still wedged while the stop completes
    assert box.state(done + timedelta(seconds=1)).power is Power.STOPPED and box.sshd(done) is Sshd.REFUSED
    box.start(at(45))
    assert box.sshd(at(46.1)) is Sshd.OK and box.memory(at(46.1)) == pytest.approx(30.2, abs=0.01)


def test_an_agent_that_starves_goes_silent_at_the_top() -> None:
    box = Box.booted("b", Behaviour(base_percent=30, leak_per_min=2, wedge_percent=97, noise=0, agent_starves_at=95), T0)
    assert box.memory(at(32)) == pytest.approx(94.0) and box.memory(at(33)) is None


def test_points_are_one_a_minute_and_the_same_for_the_same_seed() -> None:
    noisy = Behaviour(base_percent=40, noise=1.0)
    one, two, other = Box.booted("a", noisy, T0), Box.booted("a", noisy, T0), Box.booted("c", noisy, T0)
    points = one.points(at(0), at(60))
    assert [t for t, _ in points] == [at(m) for m in range(1, 61)]
    assert points == two.points(at(0), at(60)) and points != other.points(at(0), at(60))


def test_fine_means_answering_and_not_leaking() -> None:
    assert Box.booted("f", Behaviour(), T0).fine(at(5))
    assert not Box.booted("l", LEAK, T0).fine(at(5))  # answering, but the leak is under way
    assert not Box.booted("h", Behaviour(fault=Fault.HUNG), T0).fine(at(5))


# -- orch guard: the service bounded, killed by the kernel inside its limit, restarted ----------------

GUARDED = Behaviour(base_percent=30.0, leak_per_min=2.0, wedge_percent=97.0, noise=0.0, boot_seconds=60.0, shutdown_seconds=0.0,
                    hard_reboot_seconds=0.0, guard_limit_percent=80.0, service_restart_seconds=6.0)


@pytest.mark.parametrize(
    ("minute", "memory", "kills"),
    [
        (10, 50.0, 0),
        (24.9, 79.8, 0),  # the limit (80%) is reached at 25 min
        (25.05, 30.0, 1),  # killed: memory back at the baseline; the service restarts 6 s after the kill
        (26.1, 32.0, 1),  # running and leaking again from 25.1 min
        (50.05, 79.9, 1),
        (50.15, 30.0, 2),  # 25.1 + 25 = 50.1: the second kill
        (24 * 60, None, 57),  # a day: every ~25.1 min, never a wedge
    ],
)
def test_a_guarded_leak_is_killed_inside_its_limit_and_restarts(minute, memory, kills) -> None:
    box = Box.booted("b", GUARDED, T0)
    assert box.sshd(at(minute)) is Sshd.OK and not box.wedged(at(minute))
    if memory is not None:
        assert box.memory(at(minute)) == pytest.approx(memory, abs=0.01)
    assert box.guard_kills(T0, at(minute)) == kills
    assert all(not c.booted for c in box.cycles[1:]) and box.oom_events(at(minute)) == []


def test_without_the_guard_the_same_leak_wedges() -> None:
    from dataclasses import replace

    box = Box.booted("b", replace(GUARDED, guard_limit_percent=None), T0)
    assert box.wedged(at(40)) and box.guard_kills(T0, at(40)) == 0


def test_an_action_on_a_guarded_box_comes_before_a_kill_foreseen_after_it() -> None:
    box = Box.booted("b", GUARDED, T0)
    box.sshd(at(26))  # the model looked ahead past the kill at 25 min
    box.reboot(at(20))
    assert box.cycles[-1].booted and box.cycles[-1].started_at == at(20)
    assert box.sshd(at(20.5)) is Sshd.REFUSED and box.guard_kills(T0, at(22)) == 0
