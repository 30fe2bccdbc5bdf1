"""docs/deploy.md's try-it blocks, run as written against embedded AWS on 127.0.0.1.

Two ways in, as the doc offers: moto's server (the harness runs it in-process, ready
when start() returns, instead of the block's `moto_server ... &` line, and moves the
port off 5000), or `orch sandbox --serve` (a subprocess, given a free port and a state
directory, whose export lines are used exactly as a person would paste them). Then the deploy block runs verbatim in bash
with this venv's `orch` and `python` first on PATH.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from orchestrator.deploy import package
from tests.unit.test_package import fake_installer

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")


def block(marker: str) -> str:
    text = DOC.read_text()
    match = re.compile(r"```sh\n(.*?)```", re.S).search(text, text.index(f"<!-- {marker}"))
    assert match, f"no sh block after {marker}"
    return match.group(1)


def run_deploy_block(cwd: Path, exports: str) -> subprocess.CompletedProcess[str]:
    package.build(cwd / "orch-lambda.zip", installer=fake_installer)  # what step 1 leaves behind
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCH_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "160"
    script = exports + "\n" + block("try-it-deploy")
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_deployed_and_destroyed(ran: subprocess.CompletedProcess[str]) -> None:
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "change set for orch-try (CREATE)" in ran.stdout
    assert "stack orch-try: CREATE_COMPLETE" in ran.stdout
    assert "stack orch-try: DELETE_COMPLETE" in ran.stdout
    assert "kept AWS::DynamoDB::Table" in ran.stdout and "kept AWS::S3::Bucket" in ran.stdout


def test_the_try_it_blocks_with_motos_server(tmp_path):
    start = block("try-it-moto")
    first, exports = start.split("\n", 1)
    assert first == "moto_server -H 127.0.0.1 -p 5000 &"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")).read()
        ran = run_deploy_block(tmp_path, exports.replace("127.0.0.1:5000", f"127.0.0.1:{port}"))
    finally:
        server.stop()
    assert_deployed_and_destroyed(ran)


def test_the_try_it_blocks_with_the_sandbox(tmp_path):
    # The documented command, plus a free fake-sshd port and a state directory under tmp_path.
    env_file = tmp_path / "sandbox.env"
    command = [str(BIN / "orch"), "sandbox", "--serve", "--instances", "8", "--env-file", str(env_file),
               "--port", "0", "--state-dir", str(tmp_path / "sandbox")]
    assert "orch sandbox --serve --instances 8 --env-file sandbox.env &" in DOC.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCH_"))}
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert serve.stdout is not None
        if serve.stdout.readline().strip() != "ready":
            pytest.fail(f"orch sandbox --serve ended before ready: {serve.stderr.read()}")  # type: ignore[union-attr]
        exports = env_file.read_text()  # what `source sandbox.env` runs
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in exports
        ran = run_deploy_block(tmp_path, exports)
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    assert_deployed_and_destroyed(ran)
