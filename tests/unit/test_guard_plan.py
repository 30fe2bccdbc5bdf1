"""The guard's planner and its script: table-driven, and the script run for real against a
fake systemd (a systemctl and pgrep on PATH, a /proc and a cgroup tree in a temporary
directory), so apply, a second apply, status and remove are exercised line by line."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestrator.decide.chronic import Chronic
from orchestrator.guard.plan import (
    GuardError,
    GuardSpec,
    Target,
    bound_dropin,
    check_process,
    earlyoom_dropin,
    limit_for,
    plan,
    shield_dropin,
    spec_for,
    target_from_chronic,
)
from orchestrator.guard.script import Action, Paths, parse_status, render

SH = shutil.which("dash") or shutil.which("sh") or "/bin/sh"


@pytest.mark.parametrize(
    ("memory_mib", "wanted", "expected"),
    [
        (None, None, 75.0),  # box size unknown: the default share
        (16384, None, 75.0),  # a big box: 25% is far more than the 1 GiB headroom
        (2048, None, 50.0),  # 2 GiB: 1 GiB left to the system
        (1536, None, 33.3),
        (1024, None, 20.0),  # no room at all: the floor, not zero
        (4096, 80.0, 75.0),  # a wanted share lowered to the headroom
        (None, 60.0, 60.0),
    ],
)
def test_the_limit_leaves_the_system_its_headroom(memory_mib, wanted, expected):
    assert limit_for(memory_mib, wanted) == expected


@pytest.mark.parametrize("wanted", [90.0, 10.0, 100.0])
def test_a_limit_outside_the_sane_range_is_refused_with_the_range(wanted):
    with pytest.raises(GuardError, match="give 20 to 85"):
        limit_for(None, wanted)


@pytest.mark.parametrize("name", ["ruby; rm -rf /", "a b", "$(reboot)", "x" * 16, "-ruby"])
def test_a_process_name_that_is_not_a_comm_is_refused(name):
    with pytest.raises(GuardError, match="not a process name"):
        check_process(name)


@pytest.mark.parametrize("name", ["ruby", "python3.11", "java", "ucrawler.rb", "node+x"])
def test_process_names_the_kernel_records_are_taken(name):
    assert check_process(name) == name


CHRONIC = Chronic(since=datetime(2026, 1, 5, tzinfo=timezone.utc), cycles=41, exhaustion_minutes=35.0, growth_per_min=1.9,
                  process="ruby", process_rss_kb=15_000_000)


@pytest.mark.parametrize(
    ("condition", "memory", "process", "bounded", "mentions"),
    [
        (CHRONIC, 16384, "ruby", True, "about every 26 min"),  # 35 min x 75%
        (CHRONIC, 2048, "ruby", True, "about every 18 min"),  # 35 min x 50%
        (None, 8192, "", False, "only the shields"),
    ],
)
def test_the_plan_follows_what_orch_learned(condition, memory, process, bounded, mentions):
    target = target_from_chronic("i-0123456789abcdef0", "web-1", condition, memory)
    made = plan(target, spec_for(target))
    assert made.spec.process == process
    paths = [w.path for w in made.writes]
    assert "/etc/systemd/system/sshd.service.d/90-orch-guard.conf" in paths
    assert "/var/lib/orch-guard/manifest" in paths
    assert any("<unit running ruby>" in p for p in paths) is bounded
    assert mentions in " ".join(made.reasons)


def test_the_same_spec_gives_the_same_script_and_another_spec_another():
    a = render(GuardSpec(process="ruby"), Action.APPLY)
    assert a == render(GuardSpec(process="ruby"), Action.APPLY)
    assert a != render(GuardSpec(process="ruby", limit_percent=60), Action.APPLY)
    assert a != render(GuardSpec(process="ruby"), Action.REMOVE)


@pytest.mark.parametrize("action", list(Action))
def test_every_script_is_posix_sh(action):
    script = render(GuardSpec(process="ruby", oomd=True, earlyoom=True), action)
    assert script.startswith("#!/bin/sh\n")
    checked = subprocess.run([SH, "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("stdout", "applied", "changed", "errors", "limit"),
    [
        ("ORCH_GUARD state applied=yes changed=yes version=1\nORCH_GUARD service process=ruby running=yes limit_bytes=123\n",
         True, True, 0, "123"),
        ("noise\nORCH_GUARD state applied=no\n", False, None, 0, None),
        ("ORCH_GUARD error reason=process-not-running process=ruby\nORCH_GUARD state applied=yes changed=no\n", True, False, 1, None),
        ("", None, None, 0, None),
        ("ORCH_GUARD\nORCH_GUARDX state applied=yes\n", None, None, 0, None),  # not a status line
    ],
)
def test_status_lines_are_read_back(stdout, applied, changed, errors, limit):
    box = parse_status(stdout)
    assert box.applied is applied and box.changed is changed and len(box.errors) == errors
    assert box.service.get("limit_bytes") == limit


# -- systemd-analyze verify ----------------------------------------------------------------------


def _verify(tmp_path: Path, dropin: str) -> subprocess.CompletedProcess[str]:
    unit = tmp_path / "crawler.service"
    unit.write_text("[Unit]\nDescription=a crawler\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
    (tmp_path / "crawler.service.d").mkdir(exist_ok=True)
    (tmp_path / "crawler.service.d" / "90-orch-guard.conf").write_text(dropin)
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, env=env, timeout=60)


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (apt package systemd)")


@needs_analyze
@pytest.mark.parametrize(
    "dropin",
    [
        shield_dropin(),
        bound_dropin(GuardSpec(process="ruby"), "3221225472", "2952790016"),
        bound_dropin(GuardSpec(process="ruby", oomd=True), "3221225472", "2952790016"),
        earlyoom_dropin(GuardSpec(process="ruby", earlyoom=True)),
    ],
    ids=["shield", "bound", "bound-oomd", "earlyoom"],
)
def test_generated_units_pass_systemd_analyze_verify(tmp_path, dropin):
    if "earlyoom" in dropin and not Path("/usr/bin/earlyoom").exists():
        Path(tmp_path / "bin").mkdir()
        dropin = dropin.replace("/usr/bin/earlyoom", "/bin/true")  # verify checks the binary exists; the arguments are the test
    done = _verify(tmp_path, dropin)
    assert done.returncode == 0 and "90-orch-guard" not in done.stderr, done.stderr


@needs_analyze
def test_verify_reads_the_dropin_so_a_bad_one_fails(tmp_path):
    """Not vacuous: verify does read the drop-in beside the unit, and says so when it is wrong."""
    done = _verify(tmp_path, "[Service]\nMemoryMax=lots\nRestart=sometimes\n")
    assert "90-orch-guard.conf:2: Invalid memory limit" in done.stderr, done.stderr  # so silence about it above means it is valid


# -- the script, run against a fake systemd -------------------------------------------------------------

SYSTEMCTL = r"""#!/bin/sh
echo "$*" >> "$FAKE_LOG"
if [ "$1" = --version ]; then echo "systemd 252 (252.38-1~deb12u1)"; exit 0; fi
if [ "$1" = show ]; then
  case "$3" in
    LoadState) case "$4" in sshd.service|crawlerd.service|amazon-ssm-agent.service) echo LoadState=loaded;; *) echo LoadState=not-found;; esac;;
    Id) echo "Id=$4";;
    MainPID) echo MainPID=0;;
    NRestarts) echo NRestarts=3;;
  esac
fi
exit 0
"""
PGREP = r"""#!/bin/sh
# -xo NAME or -x NAME: the leaker only
[ "$2" = crawlerd ] && echo 4242
exit 0
"""


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "box"
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("systemctl", SYSTEMCTL), ("pgrep", PGREP)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    proc = root / "proc" / "4242"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("4:memory:/system.slice/crawlerd.service\n1:name=systemd:/system.slice/crawlerd.service\n")
    (proc / "comm").write_text("crawlerd\n")
    (proc / "stat").write_text("4242 (crawlerd) S 1 4242 4242 0 -1\n")
    (root / "proc" / "1").mkdir()
    (root / "proc" / "1" / "comm").write_text("systemd\n")
    (root / "proc" / "meminfo").write_text("MemTotal:        4000000 kB\nMemFree:          100000 kB\n")
    cg = root / "cg" / "memory" / "system.slice" / "crawlerd.service"
    cg.mkdir(parents=True)
    (cg / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (cg / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (root / "etc").mkdir()
    (root / "run").mkdir()
    return {"root": root, "bin": bin_dir, "cg": cg, "log": root / "systemctl.log"}


def _paths(box: dict[str, Path]) -> Paths:
    root = box["root"]
    return Paths(state=str(root / "state"), cgroup_root=str(root / "cg"), proc=str(root / "proc"), unit_dir=str(root / "etc"),
                 systemd_run=str(root / "run"), bin_path=f"{box['bin']}:/usr/bin:/bin", shield_processes=())


def _run(box: dict[str, Path], spec: GuardSpec, action: Action) -> subprocess.CompletedProcess[str]:
    env = {"FAKE_LOG": str(box["log"]), "PATH": "/usr/bin:/bin"}
    return subprocess.run([SH], input=render(spec, action, _paths(box)), text=True, capture_output=True, env=env, timeout=60)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (p.read_text() if p.is_file() else "<dir>") for p in sorted(root.rglob("*"))
            if p.name != "systemctl.log"}


def test_apply_writes_the_dropins_and_the_limit_and_remove_restores_exactly(box):
    spec = GuardSpec(process="crawlerd", limit_percent=75, high_percent=70)
    before = _tree(box["root"])
    done = _run(box, spec, Action.APPLY)
    assert done.returncode == 0, done.stdout + done.stderr
    status = parse_status(done.stdout)
    assert status.applied and status.changed and not status.errors and status.since is not None

    etc = box["root"] / "etc"
    assert (etc / "sshd.service.d" / "90-orch-guard.conf").read_text() == shield_dropin()
    assert (etc / "amazon-ssm-agent.service.d" / "90-orch-guard.conf").read_text() == shield_dropin()
    assert not (etc / "ssh.service.d").exists()  # not on this box: nothing written for it
    max_bytes = 4000000 * 1024 * 75 // 100 // 4096 * 4096
    high_bytes = 4000000 * 1024 * 70 // 100 // 4096 * 4096
    assert (etc / "crawlerd.service.d" / "90-orch-guard.conf").read_text() == bound_dropin(spec, str(max_bytes), str(high_bytes))
    assert (box["cg"] / "memory.limit_in_bytes").read_text().strip() == str(max_bytes)  # in force now, not at the next restart
    assert status.service["limit_bytes"] == str(max_bytes) and status.service["oom_kills"] == "2" and status.service["restarts"] == "3"
    assert "daemon-reload" in box["log"].read_text()

    # Idempotent: a second apply changes nothing and reloads nothing.
    manifest = (box["root"] / "state" / "manifest").read_text()
    box["log"].write_text("")
    again = _run(box, spec, Action.APPLY)
    assert again.returncode == 0 and parse_status(again.stdout).changed is False
    assert (box["root"] / "state" / "manifest").read_text() == manifest
    assert "daemon-reload" not in box["log"].read_text()

    removed = _run(box, spec, Action.REMOVE)
    assert removed.returncode == 0 and parse_status(removed.stdout).removed
    assert _tree(box["root"]) == before  # every file, directory and limit as it was


def test_remove_never_touches_a_file_orch_did_not_write(box):
    mine = box["root"] / "etc" / "sshd.service.d" / "90-orch-guard.conf"
    mine.parent.mkdir(parents=True)
    mine.write_text("[Service]\nOOMScoreAdjust=-500\n")  # someone else's, with orch's name
    spec = GuardSpec(process="crawlerd")
    done = _run(box, spec, Action.APPLY)
    assert done.returncode != 0
    assert any(e.get("reason") == "exists-not-written-by-orch" for e in parse_status(done.stdout).errors)
    _run(box, spec, Action.REMOVE)
    assert mine.read_text() == "[Service]\nOOMScoreAdjust=-500\n"


def test_a_process_that_is_not_running_is_an_error_not_a_guess(box):
    done = _run(box, GuardSpec(process="ghost"), Action.APPLY)
    assert done.returncode != 0
    assert {"reason": "process-not-running", "process": "ghost"} in parse_status(done.stdout).errors


def test_status_on_a_box_never_guarded_says_so_and_writes_nothing(box):
    before = _tree(box["root"])
    done = _run(box, GuardSpec(process="crawlerd"), Action.STATUS)
    assert parse_status(done.stdout).applied is False
    assert _tree(box["root"]) == before


def test_target_keeps_the_chronic_numbers():
    t = target_from_chronic("i-1", "n", CHRONIC, 4096)
    assert t == Target("i-1", "n", "ruby", 4096, 35.0, 41)
