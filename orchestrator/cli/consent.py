"""One rule of consent for every command that changes something (heal, reboot, stop-start,
agent install, init, and whatever comes later).

On a terminal the command shows what it would do, by name and with its reasons in full,
and asks; off a terminal nobody can answer, so ``--yes`` is required and its absence is
a usage error (exit 2) that says the fix. A plan declined at the prompt is a dry run:
nothing is done, nobody is told, nothing is recorded as acted.
"""

from __future__ import annotations

import sys

import click

from orchestrator.cli.common import Exit, OrchError, is_terminal, stdin_is_terminal

DECLINED = "declined: nothing was done and nobody was told"


def on_terminal() -> bool:
    """Only a person at a terminal can answer (both ends: a question on stderr, the answer on stdin)."""
    return stdin_is_terminal() and is_terminal(sys.stderr)


def require(what: str, assume_yes: bool, dry_run: bool) -> bool:
    """Whether to ask before acting: False when --yes or --dry-run; off a terminal without
    either, the usage error with the fix. ``what``: "orch heal would reboot or stop instances"."""
    if assume_yes or dry_run:
        return False
    if not on_terminal():
        raise OrchError(f"{what}, and no terminal is here to ask: pass --yes to act without asking, or --dry-run to see the plan",
                        Exit.USAGE)
    return True


def ask(question: str) -> bool:
    """The question, default no: Enter or anything but yes declines; Ctrl-C leaves (exit 130, cli.OrchGroup)."""
    return click.confirm(question, default=False, err=True)
