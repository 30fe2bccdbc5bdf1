"""The `orch` group itself: commands loaded when used, Ctrl-C and `orch help`.

Ctrl-C is the person's choice, not an error: exit 130 (128 + SIGINT, as the AWS CLI and
shells do) with nothing printed but the newline that closes the terminal's ``^C``; click's
own "Aborted!" and exit 1 (orch's "something is unhealthy") would mislead a script.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from orchestrator.cli.commands import LazyCommand

INTERRUPTED = 130


class OrchGroup(click.Group):
    """click's group, with commands that load on first use (``orch.cli.commands``).

    `orch --help` lists them from their summaries, so it imports no command module; any
    other use (running one, `orch help X`, shell completion) loads the one it names.
    """

    def __init__(self, *args: Any, lazy: tuple[LazyCommand, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = {entry.name: entry for entry in lazy}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """click's, with "Did you mean" drawn from every command, loaded or not."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            raise click.exceptions.NoSuchCommand(exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, shortened the way click shortens a command's help, but from
        the summaries for commands not loaded yet."""
        names = self.list_commands(ctx)
        shown = [name for name in names if name not in self.commands or not self.commands[name].hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name in shown)
        rows = []
        for name in shown:
            loaded = self.commands.get(name)
            shortened = loaded or click.Command(name, help=self.lazy[name].summary)  # click's own shortening
            text = shortened.get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
