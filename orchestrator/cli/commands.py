"""orch's commands, each loaded only when it runs: `orch --help` lists them from here.

Every command module imports what it works with (boto3, pydantic, rich); importing all of
them made `orch --help` take a second. Each entry says the command's name and the first
paragraph of its help, and loads the command with a plain import, so a renamed module or
command fails in tests (tests/unit/test_cli_lazy.py loads every entry and compares its name
and summary with the command's own), not in a user's shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import click


@dataclass(frozen=True)
class LazyCommand:
    name: str
    summary: str  # the first paragraph of the command's help, as `orch --help` shortens it
    load: Callable[[], click.Command]


def _agent() -> ModuleType:
    from orchestrator.cli import agent_cmds

    return agent_cmds


def _deploy() -> ModuleType:
    from orchestrator.cli import deploy_cmds

    return deploy_cmds


def _doctor() -> ModuleType:
    from orchestrator.cli import doctor_cmds

    return doctor_cmds


def _guard() -> ModuleType:
    from orchestrator.cli import guard_cmds

    return guard_cmds


def _init() -> ModuleType:
    from orchestrator.cli import init_cmd

    return init_cmd


def _insight() -> ModuleType:
    from orchestrator.cli import insight_cmds

    return insight_cmds


def _manual() -> ModuleType:
    from orchestrator.cli import manual_cmds

    return manual_cmds


def _probe() -> ModuleType:
    from orchestrator.cli import probe_cmd

    return probe_cmd


def _sandbox() -> ModuleType:
    from orchestrator.cli import sandbox_cmd

    return sandbox_cmd


def _simulate() -> ModuleType:
    from orchestrator.cli import simulate_cmd

    return simulate_cmd


def _state() -> ModuleType:
    from orchestrator.cli import state_cmds

    return state_cmds


def _sweep() -> ModuleType:
    from orchestrator.cli import sweep_cmds

    return sweep_cmds


def _top() -> ModuleType:
    from orchestrator.cli import top_cmd

    return top_cmd


COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand("agent", "The CloudWatch agent that publishes the memory orch reads: check it, install it.", lambda: _agent().agent_group),
    LazyCommand(
        "deploy",
        "Package, upload and create or update the stack through a change set (or a stack set: --stack-set).",
        lambda: _deploy().deploy_command,
    ),
    LazyCommand(
        "destroy",
        "Delete the stack. The state table and the evidence bucket are kept (DeletionPolicy Retain).",
        lambda: _deploy().destroy_command,
    ),
    LazyCommand(
        "doctor",
        "Check that orch can work from here: credentials, IAM, store, lease, network, metrics, clock.",
        lambda: _doctor().doctor_command,
    ),
    LazyCommand(
        "explain",
        "Everything orch knows about one instance (by id or Name): verdict, memory, probes, evidence, actions.",
        lambda: _insight().explain_command,
    ),
    LazyCommand(
        "guard",
        "Keep SSH alive through a leak: shield sshd, bound the leaking service, restart it instead of the box.",
        lambda: _guard().guard_group,
    ),
    LazyCommand(
        "heal",
        "Observe, diagnose, plan and act: reboot instances that pass status checks but not SSH.",
        lambda: _sweep().heal_command,
    ),
    LazyCommand(
        "history",
        "Actions taken, newest first: all, or one instance's (by id or Name); --regions: across regions and accounts.",
        lambda: _state().history_command,
    ),
    LazyCommand(
        "init",
        "Adopt a fleet: find it, tag it with the selector, write the config later commands read.",
        lambda: _init().init_command,
    ),
    LazyCommand(
        "package",
        "Build the Lambda zip: orch plus its dependencies as wheels for Lambda's platform.",
        lambda: _deploy().package_command,
    ),
    LazyCommand("pause", "Stop all actions (every sweep reads this flag) until `orch resume`.", lambda: _state().pause_command),
    LazyCommand(
        "permissions",
        "The IAM policy (JSON) a person needs to run COMMAND by hand; without COMMAND, every command.",
        lambda: _doctor().permissions_command,
    ),
    LazyCommand(
        "probe",
        "Probe sshd on each TARGET the way a sweep does; exit 1 unless all answer.",
        lambda: _probe().probe_command,
    ),
    LazyCommand(
        "reboot",
        "Reboot INSTANCE (an id or a Name) as a sweep would: lease, pause, evidence, history, alerts.",
        lambda: _manual().reboot_command,
    ),
    LazyCommand(
        "release",
        "Take an instance (id or Name) out of quarantine and restart its escalation ladder.",
        lambda: _state().release_command,
    ),
    LazyCommand(
        "report",
        "Unhealthy and leaking instances grouped by AMI, template, type, group and tag.",
        lambda: _insight().report_command,
    ),
    LazyCommand("resume", "Allow actions again.", lambda: _state().resume_command),
    LazyCommand(
        "sandbox",
        "A simulated fleet on embedded AWS (moto on 127.0.0.1), healed by the real sweep.",
        lambda: _sandbox().sandbox_command,
    ),
    LazyCommand(
        "scan",
        "Observe and diagnose the fleet; never acts. Exit 1 if an instance (not opted out) is unhealthy.",
        lambda: _sweep().scan_command,
    ),
    LazyCommand("simulate", "Judge your settings over simulated days before they meet a fleet.", lambda: _simulate().simulate_command),
    LazyCommand(
        "status",
        "Ladder rung, in-flight actions, quarantine, lease and pause for the selected fleet (--regions: across regions and accounts).",
        lambda: _state().status_command,
    ),
    LazyCommand(
        "stop-start",
        "Stop and start INSTANCE (an id or a Name; EBS-backed, not in an Auto Scaling group) as a sweep would.",
        lambda: _manual().stop_start_command,
    ),
    LazyCommand(
        "top",
        "The fleet live, worst first: verdict, SSH, memory and its window, time to exhaustion, ladder, action in flight, "
        "chronic or quarantined. Reads; never acts.",
        lambda: _top().top_command,
    ),
)
