"""Hostile environments for a real `orch` process: one line on stderr, the documented exit code.

The rows of tests/unit/test_hostile_inputs.py that need a process of their own: what the
operator's shell hands over (an endpoint that does not answer, a URL that is not one, a
home directory that does not exist), seen as a person sees it, on the real stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ORCH = [sys.executable, "-c", "from orchestrator.cli import main; main()"]

# (why, arguments, extra environment, exit code, fragment of the one line)
ROWS = [
    ("an endpoint nobody listens on", ["status"], {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, 3, "cannot reach the AWS endpoint http://127.0.0.1:1"),
    ("an endpoint that is not a URL", ["status"], {"AWS_ENDPOINT_URL": "not-a-url"}, 3, "endpoint 'not-a-url' is not a URL"),
    ("--endpoint-url nobody listens on", ["scan", "--endpoint-url", "http://127.0.0.1:1"], {}, 3, "cannot reach the AWS endpoint"),
    ("a home directory that does not exist", ["status", "--state", "~nouser/x.db"], {}, 5, "cannot expand '~nouser/x.db'"),
    ("nan% in the environment", ["heal", "--dry-run"], {"ORCH_SAFETY_MAX_UNHEALTHY": "nan%"}, 2, "safety.max_unhealthy"),
    ("AWS_REGION that is not a region", ["status"], {"AWS_REGION": "r" * 100_000, "AWS_DEFAULT_REGION": ""}, 3, "is not an AWS region name"),
]


@pytest.mark.parametrize("why, args, extra, code, fragment", ROWS, ids=[r[0] for r in ROWS])
def test_one_line_and_the_documented_exit_code(why, args, extra, code, fragment, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update({"AWS_MAX_ATTEMPTS": "1", "XDG_STATE_HOME": str(tmp_path), **extra})
    ran = subprocess.run([*ORCH, *args], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == code, ran.stderr[:2000]
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], ran.stderr[:2000]
    assert len(lines[0]) < 600 and "Traceback" not in ran.stderr and not ran.stdout
