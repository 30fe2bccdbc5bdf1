"""The benchmark's fleet: `orch sandbox --serve` in its own process.

The fake sshd endpoints and moto run on Python threads; in the measuring process
they would share its GIL and the sweep would be timed together with its own
counterpart. In a separate process they cost only CPU, which the output reports
(the machine's load average) instead of hiding.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HUNG_FRACTION = 0.001  # TCP accepted, no banner: the incident
SLOW_FRACTION = 0.01  # banner after SLOW_DELAY seconds
NO_METRICS_FRACTION = 0.02  # agent silent
SLOW_DELAY = 1.5


@dataclass(frozen=True)
class FleetMix:
    instances: int
    hung: int
    slow: int
    no_metrics: int

    @classmethod
    def for_size(cls, instances: int) -> FleetMix:
        """About 0.1 % hung, 1 % slow, 2 % silent; at least one of each so tiny fleets show them."""
        return cls(
            instances=instances,
            hung=max(1, round(instances * HUNG_FRACTION)),
            slow=max(1, round(instances * SLOW_FRACTION)),
            no_metrics=max(1, round(instances * NO_METRICS_FRACTION)),
        )

    def describe(self) -> str:
        return f"{self.instances} instances: {self.hung} hung, {self.slow} slow banners ({SLOW_DELAY:g} s), {self.no_metrics} without metrics"


@dataclass
class Fleet:
    """A running `orch sandbox --serve` and what a client needs to reach it."""

    mix: FleetMix
    process: subprocess.Popen[str]
    exports: dict[str, str]
    startup_seconds: float
    log_path: Path
    _drain: threading.Thread | None = field(default=None, repr=False)

    @property
    def aws_env(self) -> dict[str, str]:
        return {k: v for k, v in self.exports.items() if k.startswith("AWS_")}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_exports(stdout: IO[str], deadline: float, process: subprocess.Popen[str]) -> dict[str, str]:
    exports: dict[str, str] = {}
    lines: list[str] = []
    done = threading.Event()
    failure: list[str] = []

    def reader() -> None:
        for line in stdout:
            line = line.strip()
            if line == "ready":
                done.set()
                break
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                exports[name] = shlex.split(value)[0] if value else ""
            else:
                lines.append(line)
        else:
            failure.append("the sandbox exited before it was ready")
            done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    while not done.wait(1.0):
        if time.monotonic() > deadline:
            raise TimeoutError("the sandbox fleet was not ready in time")
        if process.poll() is not None and not thread.is_alive():
            break
    if failure or "AWS_ENDPOINT_URL" not in exports:
        raise RuntimeError(failure[0] if failure else "the sandbox printed no AWS_ENDPOINT_URL")
    return exports


def start_fleet(mix: FleetMix, work_dir: Path, *, seed: int = 0, timeout: float = 1800.0) -> Fleet:
    """Start `orch sandbox --serve` for ``mix`` and wait for its `ready` line."""
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / f"fleet-{mix.instances}.log"
    command = [
        sys.executable, "-c", "from orchestrator.cli import main; main()",
        "sandbox", "--serve",
        "--instances", str(mix.instances),
        "--hung", str(mix.hung),
        "--slow", str(mix.slow),
        "--slow-delay", str(SLOW_DELAY),
        "--no-metrics", str(mix.no_metrics),
        "--refusing", "0", "--leaking", "0", "--opt-out", "0", "--unmanaged", "0",
        "--schedule-minutes", "0",  # measured sweeps only: no scheduled healer in the fleet's process
        "--seed", str(seed),
        "--port", "0",  # a free port: other sandboxes on this host may use 127.20.0.0/16 too
        "--state-dir", str(work_dir / f"fleet-{mix.instances}-state"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "AWS_"))}
    log = log_path.open("w")
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        assert process.stdout is not None
        exports = _read_exports(process.stdout, started + timeout, process)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        log.close()
        raise RuntimeError(f"sandbox fleet of {mix.instances} did not start; see {log_path}") from None
    log.close()
    # Keep reading stdout so the child never blocks on a full pipe.
    drain = threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True)
    drain.start()
    return Fleet(mix, process, exports, time.monotonic() - started, log_path, drain)
