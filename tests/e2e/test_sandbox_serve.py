"""`orch sandbox --serve`: export lines, `ready`, usable by another process, and a clean exit on TERM/INT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_exports_then_ready_and_stops_on_a_signal(tmp_path: Path, signum: int) -> None:
    orch = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
    server = subprocess.Popen(
        [*orch, "sandbox", "--serve", "--instances", "8", "--port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env = dict(os.environ)
        assert server.stdout is not None
        for line in server.stdout:
            if line.strip() == "ready":
                break
            assert line.startswith("export "), line
            name, _, value = line.removeprefix("export ").strip().partition("=")
            env[name] = value.strip("'")
        else:
            pytest.fail(f"no ready line: {server.stderr.read() if server.stderr else ''}")
        scan = subprocess.run([*orch, "scan", "--output", "json"], env=env, capture_output=True, text=True, timeout=120)
        assert json.loads(scan.stdout)["instances"] == 8
        server.send_signal(signum)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
