"""The commands load when used: `orch --help` must list them all, truthfully, without them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import orchestrator.cli as cli_package
from orchestrator.cli import cli
from orchestrator.cli.commands import COMMANDS
from orchestrator.cli.group import help_command

HEAVY = ("boto3", "botocore", "rich", "pydantic", "pydantic_settings", "moto")


def _first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda entry: entry.name)
def test_each_entry_loads_its_command_with_its_own_summary(entry):
    command = entry.load()
    assert command.name == entry.name
    assert _first_paragraph(command.help or "") == " ".join(entry.summary.split())


def test_no_command_is_left_out():
    """Every top-level command any cli module defines is an entry (or `help`): a command added
    to a module but not to orchestrator/cli/commands.py would never be reachable."""
    loaded = {id(entry.load()) for entry in COMMANDS} | {id(help_command)}
    subcommands = set()
    found = {}
    for info in pkgutil.iter_modules(cli_package.__path__):
        module = importlib.import_module(f"orchestrator.cli.{info.name}")
        for value in vars(module).values():
            if isinstance(value, click.Command) and value is not cli:
                found[id(value)] = f"{info.name}.{value.name}"
                if isinstance(value, click.Group):
                    subcommands |= {id(sub) for sub in value.commands.values()}
    orphans = [name for key, name in found.items() if key not in loaded and key not in subcommands]
    assert not orphans, f"commands no entry loads: {orphans}"


def test_help_lists_every_command_as_click_would_with_all_of_them_loaded():
    lazy_help = cli.get_help(click.Context(cli, info_name="orch", **cli.context_settings))
    eager = click.Group("orch", params=cli.params, help=cli.help, epilog=cli.epilog,
                        context_settings=cli.context_settings)
    for entry in COMMANDS:
        eager.add_command(entry.load())
    eager.add_command(help_command)
    assert lazy_help == eager.get_help(click.Context(eager, info_name="orch", **eager.context_settings))


def test_orch_help_imports_no_command_and_nothing_heavy():
    """What made `orch --help` take a second (timed in scripts/bench, not here)."""
    code = (
        "import sys\n"
        "from orchestrator.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='orch')\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.endswith(('_cmds', '_cmd'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert "Commands:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_mistyped_command_is_matched_against_commands_not_loaded():
    result = CliRunner().invoke(cli, ["hea"])
    assert result.exit_code == 2
    assert "Did you mean 'heal'?" in result.output
