"""The guard, for real: a leaking process under a tiny supervisor, bounded by the guard's own script
in a memory cgroup of its own, beside a real OpenSSH sshd on a loopback address probed by orch's
prober. The kernel kills the leaker inside its limit, the supervisor restarts it, every probe gets
the banner, and `remove` puts every process back where it was and deletes the cgroup.

The supervisor's comm is ``supervise`` (daemontools' name: the guard then bounds the supervisor and
its children, so every restart is born inside the limit). The leaker touches every page it holds
and stops by itself at a ceiling of 256 MiB, whatever happens to the limit (exit 3: the limit did
not hold). cgroup v1's memory controller where it is mounted (the suite's machines), v2 where it is
the unified hierarchy; without a writable one the test skips and says why.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from orchestrator.guard.plan import GuardSpec
from orchestrator.guard.script import Action, Paths, parse_status, render
from orchestrator.model import ProbeOutcome
from orchestrator.observe.probe import probe_once, utc_now
from tests.e2e.test_real_sshd import Sshd, start_sshd  # noqa: F401 - the fixture, shared

pytestmark = pytest.mark.sshd

CGROOT = Path("/sys/fs/cgroup")
LIMIT = 96 * 1024 * 1024
CEILING = 256 * 1024 * 1024
KILLS_WANTED = 3
DEADLINE_SECONDS = 60.0  # a bound on a wait for events, not a sleep: it ends as soon as the kills happened
HOST = "127.0.0.43"
LEAKER = """
import sys, time
held, step, ceiling = [], 4 * 1024 * 1024, int(sys.argv[1])
while len(held) * step < ceiling:
    held.append(b"\\x01" * step)  # touched: resident, not just reserved
    time.sleep(0.004)
sys.exit(3)  # the ceiling: the limit did not hold
"""
SUPERVISOR = """
while :; do
  echo start >> "$LOG"
  "$LEAKER" "$SCRIPT" "$CEILING"
  echo "exit $?" >> "$LOG"
  [ -e "$STOP" ] && exit 0
  sleep 0.1
done
"""


def _memory_cgroup(pid: int | str = "self") -> tuple[bool, str]:
    """(v2?, the memory cgroup path of ``pid``, relative to its hierarchy)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return False, path.rstrip("/")
    if (CGROOT / "cgroup.controllers").exists():
        return True, next(p for h, c, p in (x.split(":", 2) for x in lines) if h == "0").rstrip("/")
    return False, ""


def _writable_controller() -> tuple[Paths | None, str]:
    """Where the guard may make its cgroup here, or why nowhere."""
    if os.geteuid() != 0:
        return None, "not root: cgroups cannot be made"
    v2, own = _memory_cgroup()
    if v2:
        if "memory" not in (CGROOT / "cgroup.controllers").read_text().split():
            return None, "cgroup v2 without the memory controller"
        parent = ""  # v2: a cgroup with processes cannot have controlled children; the guard's goes at the root
        base = CGROOT
    elif (CGROOT / "memory").is_dir():
        parent = own  # v1: nested in this test's own memory cgroup, so it stays inside whatever limits that has
        base = CGROOT / "memory" / own.lstrip("/")
    else:
        return None, "no cgroup v2 and no cgroup v1 memory controller mounted"
    probe = base / f"orch-guard-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        return None, f"the memory controller at {base} is not writable ({exc.strerror})"
    return Paths(cgroup_parent=parent, shield_processes=()), ""


@pytest.fixture
def cgroup_paths(tmp_path: Path) -> Paths:
    found, why = _writable_controller()
    if found is None:
        pytest.skip(why)
    return Paths(state=str(tmp_path / "state"), cgroup_parent=found.cgroup_parent, shield_processes=())


def _python() -> str:
    """The interpreter itself (not a shim that re-execs under another name)."""
    return os.path.realpath(sys.executable)


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh"], input=script, text=True, capture_output=True, timeout=60)


def _exits(log: Path) -> list[int]:
    return [int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("exit ")]


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """The supervisor (comm ``supervise``) running the leaker (comm ``orchleaker``); killed afterwards."""
    (tmp_path / "leak.py").write_text(LEAKER)
    (tmp_path / "supervise").symlink_to("/bin/sh")  # comm is the name it was run by
    (tmp_path / "orchleaker").symlink_to(_python())
    log = tmp_path / "supervisor.log"
    log.write_text("")
    env = {"LOG": str(log), "LEAKER": str(tmp_path / "orchleaker"), "SCRIPT": str(tmp_path / "leak.py"), "CEILING": str(CEILING),
           "STOP": str(tmp_path / "stop"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([str(tmp_path / "supervise"), "-c", SUPERVISOR], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process, log, tmp_path / "stop"
    finally:
        (tmp_path / "stop").touch()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def _wait_for(condition: Callable[[], bool], what: str, also: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {DEADLINE_SECONDS:g} s")
        also()
        time.sleep(0.02)


def _leaker_pid() -> str:
    found = subprocess.run(["pgrep", "-xo", "orchleaker"], capture_output=True, text=True)
    return found.stdout.strip()


def test_the_kernel_kills_the_leaker_inside_its_limit_and_ssh_never_notices(start_sshd, cgroup_paths, supervised):  # noqa: F811
    sshd: Sshd = start_sshd(host=HOST)
    supervisor, log, _ = supervised
    _wait_for(lambda: bool(_leaker_pid()), "the leaker's start")
    _, origin = _memory_cgroup(supervisor.pid)
    total = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))) * 1024
    spec = GuardSpec(process="orchleaker", limit_percent=LIMIT * 100 / total, high_percent=LIMIT * 90 / total)
    guard_dir = None
    try:
        applied = _run(render(spec, Action.APPLY, cgroup_paths))
        status = parse_status(applied.stdout)
        assert applied.returncode == 0 and status.applied, applied.stdout + applied.stderr
        assert status.bound["how"] == "own-cgroup"
        guard_dir = Path(status.bound["cgroup"])
        assert abs(int(status.bound["limit_bytes"]) - LIMIT) < 64 * 1024
        assert _memory_cgroup(supervisor.pid)[1].endswith(f"/{spec.cgroup_name}")  # the supervisor: its restarts are born inside

        probes = []

        def probe() -> None:
            probes.append(asyncio.run(probe_once(sshd.host, sshd.port, connect_timeout=2.0, banner_timeout=2.0, max_bytes=8192, clock=utc_now)))

        def killed_and_restarted() -> bool:
            kills = sum(1 for code in _exits(log) if code == 128 + signal.SIGKILL)
            return kills >= KILLS_WANTED and log.read_text().count("start") > kills

        _wait_for(killed_and_restarted, "three kills inside the limit, each followed by a restart", probe)
        probe()

        exits = _exits(log)
        assert 3 not in exits, f"the leaker reached its {CEILING >> 20} MiB ceiling: the limit did not hold ({exits})"
        assert log.read_text().count("start") >= KILLS_WANTED + 1  # restarted after every kill
        assert len(probes) >= 10 and all(p.outcome is ProbeOutcome.OK and (p.banner or "").startswith("SSH-2.0-OpenSSH") for p in probes), probes
        seen = parse_status(_run(render(spec, Action.STATUS, cgroup_paths)).stdout)
        assert int(seen.service["oom_kills"]) >= KILLS_WANTED  # the kernel's own count, in the guard's cgroup
        assert seen.service["cgroup"] == str(guard_dir)

        removed = _run(render(spec, Action.REMOVE, cgroup_paths))
        assert removed.returncode == 0 and parse_status(removed.stdout).removed, removed.stdout + removed.stderr
        assert not guard_dir.exists()
        assert _memory_cgroup(supervisor.pid)[1] == origin  # back exactly where it was
        assert not Path(cgroup_paths.state).exists()
    finally:
        _clean(guard_dir, origin, cgroup_paths)


def _clean(guard_dir: Path | None, origin: str, paths: Paths) -> None:
    """Whatever the test did not get to: the processes back, the cgroup gone."""
    if guard_dir is None or not guard_dir.exists():
        return
    v2 = (CGROOT / "cgroup.controllers").exists() and not (CGROOT / "memory").is_dir()
    home = (CGROOT if v2 else CGROOT / "memory") / origin.lstrip("/")
    for pid in (guard_dir / "cgroup.procs").read_text().split():
        try:
            (home / "cgroup.procs").write_text(pid)
        except OSError:
            pass
    guard_dir.rmdir()
