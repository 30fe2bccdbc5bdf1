"""The sandbox's pure parts (roles, memory shapes, subnet sizing) and its endpoint loop."""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from orchestrator.sandbox.build import subnet_cidrs
from orchestrator.sandbox.endpoints import (
    BANNER,
    EndpointFleet,
    FdLimitError,
    Mode,
    ensure_fd_limit,
)
from orchestrator.sandbox.memory import EXHAUSTED_AT, MemoryShape, box_for
from orchestrator.sandbox.spec import FleetSpec, assign_roles


def test_roles_are_a_function_of_the_seed() -> None:
    spec = FleetSpec(instances=40, hung=4, refusing=2, leaking=3, slow=1, no_metrics=2, seed=3)
    assert assign_roles(spec) == assign_roles(spec)
    assert assign_roles(spec) != assign_roles(spec.model_copy(update={"seed": 4}))
    roles = assign_roles(spec)
    assert [r.index for r in roles] == list(range(40))
    plain = [r for r in roles if not r.opt_out]
    assert sum(r.mode is Mode.HUNG for r in plain) == 4
    assert sum(r.mode is Mode.REFUSING for r in plain) == 2
    assert sum(r.mode is Mode.SLOW for r in plain) == 1
    assert sum(r.memory is MemoryShape.LEAKING for r in plain) == 3
    silent = [r for r in roles if not r.reports_metrics]
    assert len(silent) == 2 and all(r.mode is Mode.HEALTHY and r.memory is MemoryShape.FLAT for r in silent)
    (opted,) = [r for r in roles if r.opt_out]
    assert opted.mode is Mode.HUNG and opted.memory is MemoryShape.EXHAUSTED


def test_opt_out_can_be_healthy() -> None:
    roles = assign_roles(FleetSpec(instances=5, hung=0, refusing=0, leaking=0, opt_out=2, opt_out_hung=False))
    assert [r.mode for r in roles if r.opt_out] == [Mode.HEALTHY, Mode.HEALTHY]


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


def series(box, start: datetime, count: int) -> list[float]:
    return [box.memory(start + minutes(i)) for i in range(count)]


def test_leak_climbs_to_exhaustion_within_half_an_hour() -> None:
    for seed in range(20):
        box = box_for(MemoryShape.LEAKING, random.Random(seed), NOW, seed=f"s{seed}")
        level = box.memory(NOW)
        assert 74.0 <= level <= 86.0
        history = series(box, NOW - minutes(59), 60)
        assert history[-1] == level and history[-1] > history[-11] + 7.0
        wedged_at = box.wedged_since(NOW + minutes(30))
        assert wedged_at is not None and wedged_at - NOW <= minutes(30) and box.memory(wedged_at) >= EXHAUSTED_AT


def test_exhausted_sits_at_the_top_and_reboot_returns_to_baseline() -> None:
    box = box_for(MemoryShape.EXHAUSTED, random.Random(1), NOW, seed="x")
    history = series(box, NOW - minutes(59), 60)
    assert all(v >= EXHAUSTED_AT for v in history[-6:]) and box.wedged(NOW)
    assert history[0] < 60.0  # the climb is visible an hour back
    box.reboot(NOW + minutes(1))
    assert 33.0 <= box.memory(NOW + minutes(1)) <= 37.0 and not box.wedged(NOW + minutes(1))
    assert box.memory(NOW + minutes(120)) < 40.0  # the hung box's leak does not come back


def test_a_leaky_process_leaks_again_after_a_reboot() -> None:
    box = box_for(MemoryShape.LEAKING, random.Random(2), NOW, seed="y")
    box.reboot(NOW)
    first = box.memory(NOW)
    assert box.memory(NOW + minutes(10)) > first + 7.0 and not box.wedged(NOW + minutes(10))


def test_flat_memory_stays_flat() -> None:
    box = box_for(MemoryShape.FLAT, random.Random(5), NOW, seed="z")
    values = series(box, NOW - minutes(59), 120)
    assert all(25.0 <= v <= 55.0 for v in values) and not box.wedged(NOW + minutes(600))


def test_the_same_seed_replays_the_same_series() -> None:
    one, two = (box_for(MemoryShape.LEAKING, random.Random(3), NOW, seed="same") for _ in range(2))
    assert series(one, NOW - minutes(30), 60) == series(two, NOW - minutes(30), 60)


@pytest.mark.parametrize(
    ("per_subnet", "expected_prefix"),
    [(10, 24), (251, 24), (252, 23), (5_100, 19), (16_000, 18), (16_500, 17)],
)
def test_subnets_grow_with_the_fleet(per_subnet: int, expected_prefix: int) -> None:
    first, second = (ipaddress.ip_network(c) for c in subnet_cidrs("127.20.0.0/16", per_subnet))
    vpc = ipaddress.ip_network("127.20.0.0/16")
    assert first.prefixlen == second.prefixlen == expected_prefix
    assert first.subnet_of(vpc) and second.subnet_of(vpc) and not first.overlaps(second)
    assert first.num_addresses - 5 >= per_subnet
    if expected_prefix == 24:
        assert (str(first), str(second)) == ("127.20.1.0/24", "127.20.2.0/24")


def test_fd_limit_is_raised_and_an_impossible_one_is_refused() -> None:
    assert ensure_fd_limit(64) >= 64
    with pytest.raises(FdLimitError, match="file descriptors"):
        ensure_fd_limit(10**12)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def _outcome(ip: str, port: int) -> str:
    try:
        sock = socket.create_connection((ip, port), timeout=2)
    except ConnectionRefusedError:
        return "refused"
    with sock:
        sock.settimeout(0.3)
        try:
            return "banner" if sock.recv(64) == BANNER else "other"
        except TimeoutError:
            return "silent"


def _until(done: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Wait for an event the test caused; the limit only ends a broken run."""
    deadline = time.monotonic() + limit_s
    while not done():
        assert time.monotonic() < deadline, "the event never came"
        time.sleep(0.005)


def test_endpoint_modes_switch_at_runtime_and_a_later_change_wins() -> None:
    port = _free_port()
    fleet = EndpointFleet(port)
    fleet.start(expected_endpoints=3)
    try:
        fleet.add_many([("i-a", "127.20.250.4", Mode.HEALTHY), ("i-b", "127.20.250.5", Mode.HUNG)])
        fleet.add("i-c", "127.20.250.6", Mode.REFUSING)
        assert [_outcome(f"127.20.250.{n}", port) for n in (4, 5, 6)] == ["banner", "silent", "refused"]
        with pytest.raises(ValueError, match="already exists"):
            fleet.add("i-a", "127.20.250.7")

        fleet.set_mode("i-b", Mode.HEALTHY)
        fleet.set_mode("i-c", Mode.HEALTHY)
        fleet.set_mode("i-a", Mode.REFUSING)
        assert [_outcome(f"127.20.250.{n}", port) for n in (4, 5, 6)] == ["refused", "banner", "banner"]

        fleet.set_mode("i-a", Mode.HEALTHY, delay=0.05)  # a boot that a hang overtakes
        fleet.set_mode("i-a", Mode.HUNG)
        # A marker change due no earlier than the overtaken one: the loop fires timers in
        # deadline order, so once the marker has switched, the boot's timer has fired too
        # (no guessed sleep: the order is the proof).
        fleet.set_mode("i-c", Mode.REFUSING, delay=0.05)
        _until(lambda: fleet.mode("i-c") is Mode.REFUSING)
        assert fleet.mode("i-a") is Mode.HUNG and _outcome("127.20.250.4", port) == "silent"

        fleet.remove("i-b")
        assert "i-b" not in fleet and len(fleet) == 2
        assert _outcome("127.20.250.5", port) == "refused"
    finally:
        fleet.stop()
    assert _outcome("127.20.250.6", port) == "refused"


def _reached(ip: str, port: int) -> str:
    """``_outcome``, or "timeout" when the handshake never completes (a cut path drops the SYN)."""
    try:
        socket.create_connection((ip, port), timeout=0.3).close()
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        pass
    return _outcome(ip, port)


def test_a_cut_path_times_out_whatever_sshd_does_and_the_mode_set_meanwhile_holds_after() -> None:
    """A network fault (orchestrator.sandbox.scenario's outages) is the path, not sshd."""
    port = _free_port()
    fleet = EndpointFleet(port)
    fleet.start(expected_endpoints=3)
    ips = [f"127.20.250.{n}" for n in (10, 11, 12)]
    try:
        fleet.add_many([("i-a", ips[0], Mode.HEALTHY), ("i-b", ips[1], Mode.HUNG), ("i-c", ips[2], Mode.REFUSING)])
        for instance_id in ("i-a", "i-b", "i-c"):
            fleet.set_cut(instance_id, True)
        assert fleet.cut_off() == {"i-a", "i-b", "i-c"}
        assert [_reached(ip, port) for ip in ips] == ["timeout"] * 3
        fleet.set_mode("i-b", Mode.HEALTHY)  # rebooted while cut off: still unreachable
        fleet.set_mode("i-a", Mode.REFUSING)
        fleet.set_cut("i-a", True)  # idempotent
        assert [_reached(ip, port) for ip in ips] == ["timeout"] * 3
        for instance_id in ("i-a", "i-b", "i-c"):
            fleet.set_cut(instance_id, False)
        assert fleet.cut_off() == set()
        assert [_reached(ip, port) for ip in ips] == ["refused", "banner", "refused"]
        fleet.set_cut("i-b", True)
        fleet.remove("i-b")  # a terminated box's cut socket goes with it
        assert _reached(ips[1], port) == "refused"
    finally:
        fleet.stop()


def test_a_half_built_batch_leaves_nothing_behind() -> None:
    port = _free_port()
    fleet = EndpointFleet(port)
    fleet.start()
    try:
        with pytest.raises(OSError, match="cannot listen"):
            # 8.8.8.8 is not a local address: bind fails, nothing is ever sent anywhere.
            fleet.add_many([("i-a", "127.20.250.8", Mode.HEALTHY), ("i-b", "8.8.8.8", Mode.HEALTHY)])
        assert len(fleet) == 0
        assert _outcome("127.20.250.8", port) == "refused"
    finally:
        fleet.stop()


def test_a_busy_port_is_found_before_the_build_and_a_free_one_taken_when_allowed():
    """Another sandbox on the same addresses (or a wildcard listener) holds the port: the fallback
    takes a free one and says so; without it, the error names the fix and nothing was built."""
    import errno
    import socket as sockets

    from orchestrator.sandbox import FleetSpec, Sandbox
    from orchestrator.sandbox.build import subnet_cidrs
    from orchestrator.sandbox.ports import taken

    holder = sockets.socket(sockets.AF_INET, sockets.SOCK_STREAM)
    holder.bind(("0.0.0.0", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        assert taken(port, subnet_cidrs("127.20.0.0/16", 70)) is not None
        with pytest.raises(OSError) as refused:
            Sandbox(FleetSpec(instances=2, hung=0, refusing=0, leaking=0, opt_out=0, unmanaged=0, port=port)).start()
        assert refused.value.errno == errno.EADDRINUSE and "--port 0" in str(refused.value)
        with Sandbox(FleetSpec(instances=2, hung=0, refusing=0, leaking=0, opt_out=0, unmanaged=0, port=port, port_fallback=True)) as sb:
            assert sb.port != port and f"port {port} is taken" in sb.port_note
    finally:
        holder.close()
    assert taken(port, subnet_cidrs("127.20.0.0/16", 70)) is None
