"""The console as a person and a script meet it, against one sandbox fleet.

One rule of consent (orchestrator.cli.consent):

Off a terminal every mutating command needs --yes (exit 2 with the fix, nothing called);
on a terminal `orch heal` shows the plan by Name with every reason whole and asks; a "no"
makes the sweep a dry run: no SNS message, no action recorded, the sweep recorded as a dry
run; Ctrl-C at the question exits 130 without "Aborted!". Real pseudo-terminals (pexpect)
at 80 and 120 columns against a sandbox fleet.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Iterator

import pexpect
import pytest

from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import exports, stage
from orchestrator.state import open_store
from tests.e2e.sandbox_env import in_second_vpc
from tests.e2e.test_terminal_fit import ANSI, ORCH

pytestmark = pytest.mark.e2e

PROMPT = r"take (\d+) action\(s\)\? \[y/N\]"


@pytest.fixture(scope="module")
def fleet_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    spec = FleetSpec(instances=12, hung=2, refusing=1, leaking=1, opt_out=1, unmanaged=1, seed=7, port=0)
    with Sandbox(in_second_vpc(spec)) as sb:
        env = exports(sb, stage(sb, tmp_path_factory.mktemp("state")))
        yield sb, {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(tmp_path_factory.mktemp("home")), **env}


def orch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def published(sb: Sandbox) -> int:
    """Messages the sandbox's SNS topic took (moto keeps them in its backend)."""
    from moto.sns.models import sns_backends

    backend = sns_backends[sb.account_id][sb.region]
    return sum(len(getattr(t, "sent_notifications", [])) for t in backend.topics.values())


def recorded(env: dict[str, str]) -> tuple[list[str], int]:
    """(modes of the recorded sweeps, actions recorded)."""
    store = open_store(env["ORCH_STATE"])
    try:
        return [s.mode for s in store.list_sweeps(100)], len(store.list_actions(None, 100))
    finally:
        store.close()


@pytest.mark.parametrize("args", [("heal",), ("reboot", "crawler-1"), ("stop-start", "crawler-1"), ("agent", "install")])
def test_off_a_terminal_every_mutating_command_needs_yes(fleet_env, args):
    _, env = fleet_env
    before = recorded(env)
    ran = orch(env, *args)
    assert ran.returncode == 2, (args, ran.stdout, ran.stderr)
    assert "no terminal is here to ask: pass --yes" in ran.stderr and "--dry-run" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert recorded(env) == before


def heal_at_terminal(env: dict[str, str], columns: int, answer: str | None) -> tuple[str, int]:
    child = pexpect.spawn("bash", ["-c", f"{ORCH} heal"], env=env, dimensions=(40, columns), encoding="utf-8", timeout=120, use_poll=True)
    child.expect(PROMPT)
    shown = child.before + child.after
    if answer is None:
        child.sendintr()
    else:
        child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    return ANSI.sub("", shown + (child.before or "")), child.exitstatus if child.exitstatus is not None else 128 + child.signalstatus


@pytest.mark.parametrize("columns", [80, 120])
def test_no_at_the_prompt_is_a_dry_run_that_tells_nobody(fleet_env, columns):
    sb, env = fleet_env
    modes_before, actions_before = recorded(env)
    told_before = published(sb)
    shown, status = heal_at_terminal(env, columns, "n")
    modes, actions = recorded(env)
    assert status == 1, shown
    question = shown[: shown.index("take ")]
    assert not [line for line in question.splitlines() if len(line.rstrip()) > columns]
    assert re.search(r"\bcrawler-\d+\b", question), question  # names, not ids only
    assert "…" not in question  # every reason whole
    planned = json.loads(orch(env, "heal", "--dry-run", "-o", "json").stdout)["actions"]
    words = {w for a in planned for w in a["reason"].split() if not re.search(r"\d", w)}  # figures move between sweeps
    assert words <= set(question.split()) | {"-"}, sorted(words - set(question.split()))[:5]
    assert "declined at the prompt: nothing was done and nobody was told" in shown
    assert "notified" not in shown
    assert published(sb) == told_before
    assert actions == actions_before
    assert modes[0] == "dry-run" and len(modes) == len(modes_before) + 1


def test_ctrl_c_at_the_prompt_exits_130_quietly_and_does_nothing(fleet_env):
    sb, env = fleet_env
    _, actions_before = recorded(env)
    told_before = published(sb)
    shown, status = heal_at_terminal(env, 80, None)
    assert status == 130, shown
    assert "Aborted" not in shown and "Traceback" not in shown
    assert recorded(env)[1] == actions_before and published(sb) == told_before


def test_probe_takes_names_and_ids_and_the_sandbox_port(fleet_env):
    _, env = fleet_env
    fleet = json.loads(orch(env, "scan", "-o", "json").stdout)["instances_detail"]
    healthy = next(i for i in fleet if i["verdict"] == "healthy" and i["name"])
    ran = orch(env, "probe", healthy["name"], healthy["instance_id"], "-o", "json")
    rows = json.loads(ran.stdout)
    assert ran.returncode == 0, ran.stderr
    assert [r["target"] for r in rows] == [healthy["name"], healthy["instance_id"]]
    assert all(r["outcome"] == "ok" and r["address"].endswith(f":{env['ORCH_PROBE_PORT']}") for r in rows)
    assert rows[0]["address"] == rows[1]["address"] and rows[0]["address"].startswith("127.")
    unknown = orch(env, "probe", "i-0123456789abcdef0")
    assert unknown.returncode == 2 and "not among the instances selected" in unknown.stderr


def test_ctrl_c_anywhere_exits_130_without_a_word(tmp_path):
    """Not only at a prompt: a long command interrupted says nothing and exits 130 (not 1, orch's "unhealthy")."""
    env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(tmp_path)}
    child = pexpect.spawn("bash", ["-c", f"{ORCH} simulate --scenario all --hours 240"], env=env, dimensions=(24, 80),
                          encoding="utf-8", timeout=120, use_poll=True)
    child.expect("sweeps")  # the progress line: it is under way
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    said = ANSI.sub("", child.before or "")
    assert child.exitstatus == 130, said
    assert "Aborted" not in said and "Traceback" not in said and "KeyboardInterrupt" not in said


def test_help_command_and_unknown_command(fleet_env):
    _, env = fleet_env
    assert orch(env, "help").stdout == orch(env, "--help").stdout
    assert orch(env, "help", "agent", "install").stdout == orch(env, "agent", "install", "--help").stdout
    wrong = orch(env, "help", "nope")
    assert wrong.returncode == 2 and "no command 'nope'" in wrong.stderr


def test_doctor_skips_opted_out_instances(fleet_env):
    _, env = fleet_env
    fleet = json.loads(orch(env, "scan", "-o", "json").stdout)["instances_detail"]
    opted = [i["instance_id"] for i in fleet if i["opted_out"]]
    assert opted and all(i["verdict"] == "unreachable" for i in fleet if i["opted_out"])  # a FAIL row were it checked
    ran = orch(env, "doctor", "-o", "json")
    document = json.loads(ran.stdout)
    assert document["skipped_opted_out"] == opted
    assert not [c for c in document["checks"] if any(i in c["subject"] for i in opted)], document["checks"]


# Last in the module: it heals the shared fleet, and shows the checks above could fail.
def test_yes_acts_and_tells(fleet_env):
    sb, env = fleet_env
    told_before = published(sb)
    ran = orch(env, "heal", "--yes", "-o", "json")
    assert ran.returncode in (0, 1), ran.stderr
    assert published(sb) > told_before and recorded(env)[1] > 0
