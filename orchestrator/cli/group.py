"""The `orch` group itself: Ctrl-C and `orch help`.

Ctrl-C is the person's choice, not an error: exit 130 (128 + SIGINT, as the AWS CLI and
shells do) with nothing printed but the newline that closes the terminal's ``^C``; click's
own "Aborted!" and exit 1 (orch's "something is unhealthy") would mislead a script.
"""

from __future__ import annotations

import sys
from typing import Any

import click

INTERRUPTED = 130


class OrchGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise self._interrupted() from None
        except click.Abort as exc:
            # click turns Ctrl-C (and EOF) at a prompt into Abort; an Abort of its own (a "no"
            # to confirm(abort=True)) is a refusal, which keeps click's meaning and exit 1.
            if isinstance(exc.__context__, (KeyboardInterrupt, EOFError)):
                raise self._interrupted() from None
            raise

    @staticmethod
    def _interrupted() -> click.exceptions.Exit:
        if sys.stderr.isatty():
            click.echo("", err=True)
        return click.exceptions.Exit(INTERRUPTED)


@click.command("help", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_command(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Show orch's help, or COMMAND's (the same as `orch COMMAND --help`)."""
    assert ctx.parent is not None
    current = ctx.parent
    for word in words:
        command = current.command
        found = command.get_command(current, word) if isinstance(command, click.Group) else None
        if found is None:
            where = "orch" if current is ctx.parent else f"orch {current.command_path.split(' ', 1)[-1]}"
            raise click.UsageError(f"no command {word!r} in {where}: `orch help` lists them", ctx)
        current = click.Context(found, info_name=word, parent=current)
    click.echo(current.get_help(), color=ctx.color)
