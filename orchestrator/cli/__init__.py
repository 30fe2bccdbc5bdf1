"""`orch`: the command line. Each command is a thin shell over the library."""

from __future__ import annotations

import click

from orchestrator.cli.deploy_cmds import deploy_command, destroy_command, package_command
from orchestrator.cli.insight_cmds import explain_command, report_command
from orchestrator.cli.probe_cmd import probe_command
from orchestrator.cli.sandbox_cmd import sandbox_command
from orchestrator.cli.simulate_cmd import simulate_command
from orchestrator.cli.state_cmds import (
    history_command,
    pause_command,
    release_command,
    resume_command,
    status_command,
)
from orchestrator.cli.sweep_cmds import heal_command, scan_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="orch")
def cli() -> None:
    """Heal EC2 instances that pass AWS status checks but no longer answer SSH.

    \b
    Exit codes: 0 ok; 1 something is still unhealthy, blocked or failed;
    2 bad usage or configuration; 3 AWS error (nothing acted on after it);
    4 another sweep holds the lease; 5 state store unavailable.
    """


for command in (sandbox_command, scan_command, heal_command, probe_command, explain_command, report_command, status_command, history_command, pause_command, resume_command, release_command):
    cli.add_command(command)
for command in (package_command, deploy_command, destroy_command):
    cli.add_command(command)
cli.add_command(simulate_command)


def main() -> None:
    cli(prog_name="orch")
