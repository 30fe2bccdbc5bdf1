"""docs/deploy.md's try-it block, run as written against a moto server on 127.0.0.1.

The harness starts the server itself (in-process, ready when start() returns) instead
of the block's `moto_server ... &` line, moves the port off 5000, and puts this venv's
`orch` and `python` first on PATH; every other line runs verbatim in bash.
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

from orchestrator import package
from tests.unit.test_package import fake_installer

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
pytestmark = pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")


def try_it_block() -> str:
    text = DOC.read_text()
    marker = text.index("<!-- try-it")
    match = re.compile(r"```sh\n(.*?)```", re.S).search(text, marker)
    assert match, "no sh block after the try-it marker"
    return match.group(1)


def test_the_try_it_block_deploys_and_destroys(tmp_path):
    block = try_it_block()
    assert block.startswith("moto_server -H 127.0.0.1 -p 5000 &\n")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")).read()
        script = block.split("\n", 1)[1].replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        package.build(tmp_path / "orch-lambda.zip", installer=fake_installer)  # what step 1 leaves behind
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["COLUMNS"] = "160"
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        server.stop()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "change set for orch-try (CREATE)" in ran.stdout
    assert "stack orch-try: CREATE_COMPLETE" in ran.stdout
    assert "stack orch-try: DELETE_COMPLETE" in ran.stdout
    assert "kept AWS::DynamoDB::Table" in ran.stdout and "kept AWS::S3::Bucket" in ran.stdout
