"""`orch`: the command line. Each command is a thin shell over the library."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.agent_cmds import agent_group
from orchestrator.cli.common import add_global_options
from orchestrator.cli.deploy_cmds import deploy_command, destroy_command, package_command
from orchestrator.cli.doctor_cmds import doctor_command, permissions_command
from orchestrator.cli.guard_cmds import guard_group
from orchestrator.cli.init_cmd import init_command
from orchestrator.cli.insight_cmds import explain_command, report_command
from orchestrator.cli.manual_cmds import reboot_command, stop_start_command
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
from orchestrator.cli.sweep_cmds import EXIT_HELP, heal_command, scan_command
from orchestrator.cli.top_cmd import top_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=EXIT_HELP)
@click.version_option(package_name="orch")
@add_global_options
def cli(**global_options: Any) -> None:
    """Heal EC2 instances that pass AWS status checks but no longer answer SSH.

    Global options (--region, --profile, --endpoint-url, --config, --state, --selector,
    --output, --query, --debug, --no-color) go before or after the command, as with the
    AWS CLI; after it wins.

    \b
    Shell completion (bash; zsh and fish alike, see click's docs):
      eval "$(_ORCH_COMPLETE=bash_source orch)"
    """


for command in (sandbox_command, scan_command, heal_command, probe_command, explain_command, report_command, status_command, history_command, pause_command, resume_command, release_command):
    cli.add_command(command)
for command in (package_command, deploy_command, destroy_command):
    cli.add_command(command)
cli.add_command(simulate_command)
cli.add_command(top_command)
cli.add_command(init_command)
cli.add_command(agent_group)
cli.add_command(doctor_command)
cli.add_command(permissions_command)
cli.add_command(guard_group)


def main() -> None:
    cli(prog_name="orch")
cli.add_command(reboot_command)
cli.add_command(stop_start_command)
