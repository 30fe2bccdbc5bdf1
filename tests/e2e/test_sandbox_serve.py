"""`orch sandbox --serve`: export lines, `ready`, usable by another process, and a clean exit on TERM/INT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

pytestmark = pytest.mark.e2e


ORCH = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*ORCH, "sandbox", "--serve", "--instances", "8", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_exports_then_ready_and_stops_on_a_signal(tmp_path: Path, signum: int) -> None:
    orch = ORCH
    server = serve("--state-dir", str(tmp_path))
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


def test_serve_env_file_request_log_and_cleanup(tmp_path: Path) -> None:
    """`--env-file` for `source`; requests (and moto's tracebacks) go to a log file, not the
    terminal; the temporary directory and the env file are gone after the signal."""
    env_file = tmp_path / "sandbox.env"
    orch = ORCH
    server = serve("--env-file", str(env_file))
    try:
        assert server.stdout is not None and server.stderr is not None
        assert server.stdout.readline().strip() == "ready"  # the exports are in the file, not on stdout
        told = [server.stderr.readline(), server.stderr.readline()]
        assert told[0].strip() == f"in another shell: source {env_file}"
        log = Path(told[1].split(" are logged to ")[1].split(";")[0])
        # The README's way: source the file, then orch; and a request moto fails on.
        script = f"source {env_file}\n{' '.join(orch[:2])} {json.dumps(orch[2])} scan --output json --query instances\n"
        script += 'python -c "import os, urllib.request as u; u.urlopen(u.Request(os.environ[\'AWS_ENDPOINT_URL\'] + \'/\', method=\'POST\', '
        script += "data=b'Action=DescribeInstances&Version=2016-11-15&MaxResults=abc', headers={'Authorization': "
        script += "'AWS4-HMAC-SHA256 Credential=sandbox/20260101/us-east-1/ec2/aws4_request'}))\" || true\n"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCH_"))}
        ran = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert ran.stdout.strip().splitlines()[0] == "8", ran.stdout + ran.stderr
        # werkzeug writes the 500's status line first and the traceback after it: wait for both.
        logged = Retrying(stop=stop_after_delay(15), wait=wait_fixed(0.1), retry=retry_if_result(lambda text: "Traceback" not in text),
                          retry_error_callback=lambda state: state.outcome.result())(log.read_text)
        assert "Traceback" in logged and "POST / HTTP/1.1" in logged
        # After `kill %1` the README says orch_sandbox_unset: no dead endpoint or fake key stays in the shell.
        forgot = subprocess.run(["bash", "-c", f"source {env_file}; orch_sandbox_unset; env | grep -c -E '^(AWS_|ORCH_)' || true; "
                                 "type orch_sandbox_unset 2>/dev/null | head -1"], env=env, capture_output=True, text=True, timeout=60)
        assert forgot.stdout.split() == ["0"], forgot.stdout + forgot.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        rest = server.stderr.read()
        assert "Traceback" not in rest and "HTTP/1.1" not in rest, rest
        assert not env_file.exists() and not log.parent.exists()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
