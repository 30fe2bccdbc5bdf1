"""`orch`: the command line. Each command is a thin shell over the library.

This module imports click and the light option definitions only: the commands load when
used (``orchestrator.cli.commands``), so `orch --help` starts in a tenth of a second.
"""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.commands import COMMANDS
from orchestrator.cli.group import OrchGroup, help_command
from orchestrator.cli.options import EXIT_HELP, add_global_options


@click.group(
    cls=OrchGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
    epilog=EXIT_HELP,
)
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


cli.add_command(help_command)


def main() -> None:
    cli(prog_name="orch")
