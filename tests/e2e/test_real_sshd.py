"""The incident, reproduced with Debian's OpenSSH: SIGSTOP leaves TCP accepted and no banner."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from orchestrator.config import ProbeSettings
from orchestrator.model import ProbeAttempt, ProbeOutcome
from orchestrator.observe.probe import probe_fleet, probe_once, utc_now

SSHD = Path("/usr/sbin/sshd")
KEYGEN = Path("/usr/bin/ssh-keygen")
HOST = "127.0.0.42"

pytestmark = pytest.mark.sshd


@dataclass
class Sshd:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal_group(self, signum: int) -> None:
        """The listener and any per-connection children: all ours, in the session we started."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_listening(sshd: Sshd, timeout: float = 10.0) -> None:
    """sshd -e logs 'Server listening on ...' once bound: a readiness signal, not a guess."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sshd.process.poll() is not None:
            pytest.fail(f"sshd exited with {sshd.process.returncode}: {sshd.log.read_text()}")
        if "Server listening on" in sshd.log.read_text(errors="replace"):
            return
        time.sleep(0.02)
    pytest.fail(f"sshd did not start listening within {timeout}s: {sshd.log.read_text()}")


def _start(directory: Path, extra: list[str], host: str = HOST) -> Sshd:
    key = directory / "hostkey"
    subprocess.run([str(KEYGEN), "-t", "ed25519", "-N", "", "-f", str(key), "-q"], check=True)
    port = _free_port(host)
    config = directory / "sshd_config"
    lines = [
        f"HostKey {key}",
        f"ListenAddress {host}",
        f"Port {port}",
        f"PidFile {directory / 'sshd.pid'}",
        "UsePAM no",
        "StrictModes no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AuthorizedKeysFile none",
        *extra,
    ]
    config.write_text("\n".join(lines) + "\n")
    log = directory / "sshd.log"
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would freeze sshd mid-test
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],  # sshd re-execs itself: absolute path
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    return Sshd(process, host, port, log)


def _stop(server: Sshd) -> None:
    server.signal_group(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    server.signal_group(signal.SIGTERM)
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.signal_group(signal.SIGKILL)
        server.process.wait(timeout=5)


@pytest.fixture
def start_sshd(tmp_path: Path) -> Iterator[Callable[..., Sshd]]:
    """Start sshd with extra config lines; every one started is killed afterwards."""
    if not SSHD.exists() or not KEYGEN.exists():
        pytest.skip("Debian's openssh-server (/usr/sbin/sshd, ssh-keygen) is not installed")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    started: list[Sshd] = []

    def start(*extra: str, host: str = HOST) -> Sshd:
        directory = tmp_path / f"sshd{len(started)}"
        directory.mkdir()
        server = _start(directory, list(extra), host)
        started.append(server)
        _wait_listening(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            _stop(server)


@pytest.fixture
def sshd(start_sshd: Callable[..., Sshd]) -> Sshd:
    return start_sshd()


def probe(sshd: Sshd, banner_timeout: float = 10.0) -> ProbeAttempt:
    """An answering sshd sends its banner at once; the long default only spares a loaded machine a false timeout."""
    return asyncio.run(
        probe_once(sshd.host, sshd.port, connect_timeout=2.0, banner_timeout=banner_timeout, max_bytes=8192, clock=utc_now)
    )


def test_stopped_sshd_is_the_incident(sshd: Sshd) -> None:
    healthy = probe(sshd)
    assert healthy.outcome is ProbeOutcome.OK, healthy
    assert healthy.banner is not None and healthy.banner.startswith("SSH-2.0-OpenSSH")

    os.kill(sshd.pid, signal.SIGSTOP)
    stuck = probe(sshd, banner_timeout=0.5)
    assert stuck.outcome is ProbeOutcome.BANNER_TIMEOUT, stuck  # the kernel accepted, sshd never spoke
    assert "TCP accepted" in stuck.detail

    os.kill(sshd.pid, signal.SIGCONT)
    assert probe(sshd).outcome is ProbeOutcome.OK

    sshd.signal_group(signal.SIGTERM)
    sshd.process.wait(timeout=5)
    assert probe(sshd).outcome is ProbeOutcome.REFUSED


def test_many_concurrent_probes_survive_maxstartups(sshd: Sshd) -> None:
    """MaxStartups 10:30:100 drops a share of these at random; re-probes must absorb it."""
    targets = {f"i-{n:03d}": (sshd.host, sshd.port) for n in range(300)}
    settings = ProbeSettings(concurrency=100, attempts=3, retry_window=1.0, connect_timeout=3.0, banner_timeout=5.0)
    results = probe_fleet(targets, settings)
    first_try = Counter(r.attempts[0].outcome for r in results.values())
    assert {k: r.outcome for k, r in results.items() if r.outcome is not ProbeOutcome.OK} == {}, first_try
    # Shed connections ("Exceeded MaxStartups") are sshd saying no, never "not SSH".
    assert {a.outcome for r in results.values() for a in r.attempts} <= {ProbeOutcome.OK, ProbeOutcome.RESET}


def test_sshd_shedding_is_a_reset_then_recovers(start_sshd: Callable[..., Sshd]) -> None:
    """Hold sshd at MaxStartups with connections that never authenticate: it sheds the probe."""
    server = start_sshd("MaxStartups 2")
    held = [socket.create_connection((server.host, server.port), timeout=5) for _ in range(2)]
    try:
        for sock in held:
            assert sock.recv(256).startswith(b"SSH-2.0-")  # each child is up and counted
        shed = probe(server)
        assert shed.outcome is ProbeOutcome.RESET, shed
        assert "Exceeded MaxStartups" in shed.detail
    finally:
        for sock in held:
            sock.close()
    # The children notice the close and exit; re-probes absorb the moment that takes.
    settings = ProbeSettings(attempts=3, retry_window=2.0, connect_timeout=2.0, banner_timeout=2.0)
    assert probe_fleet({"i-1": (server.host, server.port)}, settings)["i-1"].outcome is ProbeOutcome.OK


def test_sweep_reboots_the_box_whose_sshd_is_stopped_and_only_then(start_sshd: Callable[..., Sshd], tmp_path: Path) -> None:
    """A moto instance whose private IP is where a real sshd listens: the whole pipeline, for real."""
    import boto3
    from moto import mock_aws

    from orchestrator.aws import Clients
    from orchestrator.config import Settings
    from orchestrator.state.sqlite import SqliteStore
    from orchestrator.sweep.pipeline import SweepDeps, sweep

    with mock_aws():
        clients = Clients(boto3.Session(region_name="us-east-1"))
        ec2 = clients.ec2
        vpc = ec2.create_vpc(CidrBlock="127.20.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.20.9.0/24")["Subnet"]["SubnetId"]
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "orch:managed", "Value": "true"}]}]
        reply = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet, TagSpecifications=tags)
        instance = reply["Instances"][0]
        server = start_sshd(host=instance["PrivateIpAddress"])
        settings = Settings.model_validate(
            {
                "probe": {"port": server.port, "banner_timeout": 1.0, "connect_timeout": 1.0, "retry_window": 1.0},
                "safety": {"launch_grace_minutes": 0, "debounce_seconds": 0.5, "max_unhealthy": "100%"},
            }
        )
        store = SqliteStore(tmp_path / "state.db")
        deps = SweepDeps(clients=clients, store=store)

        running = sweep(settings, deps).summary()
        assert running["verdicts"] == {"healthy": 1} and running["actions"] == []

        server.signal_group(signal.SIGSTOP)
        try:
            stopped = sweep(settings, deps).summary()
        finally:
            server.signal_group(signal.SIGCONT)
        assert stopped["verdicts"] == {"unreachable": 1}
        assert [(a["instance_id"], a["action"], a["outcome"]) for a in stopped["actions"]] == [(instance["InstanceId"], "reboot", "done")]
        assert "SSH banner timeout" in stopped["actions"][0]["reason"] and "(TCP accepted)" in stopped["actions"][0]["reason"]

        again = sweep(settings, deps).summary()
        assert again["verdicts"] == {"healthy": 1} and again["actions"] == []
        assert clients.counter.snapshot()["ec2.RebootInstances"] == 1
        store.close()
