"""The README's examples, run as written: each block in bash from the repository root, and
each must exit 0 (tests/unit/test_readme.py makes sure no block goes unmarked).

They use `scripts/sandbox` and `.venv/bin/orch` as a reader would, so they need this
test run's virtualenv to be the repository's `.venv` (what `scripts/test` makes).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_text import all_text

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = all_text()  # the README and docs/: a marked block may live in either


def block(marker: str) -> str:
    match = re.compile(r"```sh\n(.*?)```", re.S).search(README, README.index(f"<!-- {marker}"))
    assert match, f"no sh block after {marker}"
    return match.group(1)


@pytest.fixture
def shell_env() -> dict[str, str]:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"the README's examples use {ROOT / '.venv'}; this run's virtualenv is {sys.prefix}")
    digest = hashlib.sha1((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    if not list((ROOT / ".venv").glob(f".installed-{digest}*")):
        pytest.skip("the README's examples need .venv installed for this pyproject.toml (run them through scripts/test)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCH_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT / ".venv")))
    env["COLUMNS"] = "120"
    return env


def run(script: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a block in bash in a session of its own: a block that outlives ``timeout`` is
    killed with everything it started (a background sandbox too), so no sandbox.env and no
    listening fleet is left for the next run to trip on."""
    with subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as shell:
        try:
            out, err = shell.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
            out, err = shell.communicate()
            (ROOT / "sandbox.env").unlink(missing_ok=True)
            pytest.fail(f"the block ran over {timeout:g} s and was killed\n{out[-3000:]}{err[-3000:]}")
    return subprocess.CompletedProcess(shell.args, shell.returncode, out, err)


def test_the_demo_examples_exit_0(shell_env):
    text = block("readme-demo")
    ran = run(text, shell_env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    # The figures in the block's comment ("4 broken: 3 healed, 1 next sweep, verified") are this run's.
    said = re.search(r"# (\d+) broken: (\d+) healed, (\d+) next sweep, verified", text)
    assert said, "the demo block's comment no longer says what the run shows"
    broken, first, rest = map(int, said.groups())
    assert broken == first + rest
    sweeps = 2 + (rest > 0)  # the healing sweeps, then one that verifies
    assert f"healed: {broken} of {broken} broken instances answer SSH again after {sweeps} sweeps" in ran.stdout
    assert f"sweep 1: find and heal ({rest} more next sweep" in ran.stdout
    assert len(re.findall(r"^sweep 1: i-[0-9a-f]+: reboot -> done", ran.stdout, re.M)) == first
    assert len(re.findall(r"^sweep 2: i-[0-9a-f]+: reboot -> done", ran.stdout, re.M)) == rest
    assert f"sweep {sweeps}: verify" in ran.stdout
    assert ran.stdout.rstrip().endswith("]") and '"sweeps"' not in ran.stdout  # the --query picked [ok, sweeps, healed]


def test_the_serve_example_exits_0(shell_env):
    env_file = ROOT / "sandbox.env"
    assert not env_file.exists(), "a sandbox.env is left over in the repository"
    # The harness's own line: whatever happens, the background sandbox is stopped and
    # waited for (it removes sandbox.env as it stops).
    ran = run("trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + block("readme-serve"), shell_env)
    assert not env_file.exists()
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "rebooted" in ran.stdout or "done" in ran.stdout
    assert "crawler-1" in ran.stdout and "Traceback" not in ran.stderr


def test_the_simulate_examples_exit_0(shell_env):
    ran = run(block("readme-simulate"), shell_env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "chronic-leak" in ran.stdout and "naive" in ran.stdout and "met" in ran.stdout
    assert ran.stdout.rstrip().endswith('''[
  [
    "network-fault",
    0
  ],
  [
    "dark-az",
    0
  ]
]''')
