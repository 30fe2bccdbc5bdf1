"""How a command's result reaches the user: a table for people, JSON or text for programs.

Every command builds one JSON-able document of its result. ``--output json`` prints it,
``--output text`` prints it the way the AWS CLI's text format does (tab-separated
scalars, one line per object, nested lists under their key in capitals), and ``--query``
(JMESPath, as in the AWS CLI) selects from it first. ``--output table`` (the default)
calls the command's own renderer. Timestamps are in the one format of
``orchestrator.jsonable``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import click
from jmespath.exceptions import JMESPathError
from rich.console import Console

from orchestrator.cli.options import FORMATS, TABLES  # noqa: F401 - re-exported
from orchestrator.echo import clip
from orchestrator.jsonable import to_jsonable


class QueryError(click.ClickException):
    """A --query that compiled but cannot be applied: a usage error (exit 2), one line."""

    exit_code = 2


def console(no_color: bool = False, stderr: bool = False) -> Console:
    """A rich console; NO_COLOR (https://no-color.org) is honoured by rich itself.

    Piped output gets 120 columns, the width orch's tables are laid out for; a
    terminal's own width otherwise.

    Markup and emoji codes are off: every string printed is text as given. What orch
    prints holds AWS's strings (a Name tag ``web [/x] prod``, a stack parameter, a box's
    SSH banner) and rich would read ``[...]`` in them as markup (a crash, or text
    swallowed) and ``:fire:`` as an emoji. orch's own styles are ``rich.text.Text``
    objects (``orchestrator.cli.tables.styled``), so nothing needs escaping call by call.
    """
    made = Console(stderr=stderr, no_color=no_color or None, markup=False, emoji=False)
    if made.is_terminal or os.environ.get("COLUMNS"):
        return made
    return Console(stderr=stderr, no_color=no_color or None, width=120, markup=False, emoji=False)


def render_text(value: Any) -> str:
    """The AWS CLI's ``--output text``: scalars tab-separated, objects one per line."""
    lines: list[str] = []
    _text(value, lines, None, None)
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    return "None" if value is None else str(value)


def _text(item: Any, lines: list[str], identifier: str | None, keys: list[str] | None) -> None:
    if isinstance(item, dict):
        scalars = [_scalar(item.get(k)) for k in keys] if keys is not None else [
            _scalar(v) for _, v in sorted(item.items()) if not isinstance(v, (dict, list))
        ]
        if scalars:
            lines.append("\t".join(([identifier.upper()] if identifier else []) + scalars))
        for key, value in sorted(item.items()):
            if isinstance(value, (dict, list)):
                _text(value, lines, key, None)
    elif isinstance(item, list):
        if not item:
            return
        if any(isinstance(e, dict) for e in item):
            shared = sorted({k for e in item if isinstance(e, dict) for k, v in e.items() if not isinstance(v, (dict, list))})
            for element in item:
                _text(element, lines, identifier, shared if isinstance(element, dict) else None)
            return
        scalars = [e for e in item if not isinstance(e, list)]
        if scalars:
            if identifier:
                lines.extend(f"{identifier.upper()}\t{_scalar(e)}" for e in scalars)
            else:
                lines.append("\t".join(_scalar(e) for e in scalars))
        for nested in (e for e in item if isinstance(e, list)):
            _text(nested, lines, identifier, None)
    else:
        lines.append(f"{identifier.upper()}\t{_scalar(item)}" if identifier else _scalar(item))


def emit(document: Any, output: str, query: Any = None, table: Callable[[], None] | None = None) -> None:
    """Print one command's result in the chosen format; ``query`` is a compiled JMESPath expression."""
    if output in TABLES and table is not None and query is None:
        table()
        return
    value = to_jsonable(document)
    if query is not None:
        try:
            value = query.search(value)
        except JMESPathError as exc:  # compiles, fails on the data: an unknown function, a type mismatch
            raise QueryError(f"--query failed on the result: {clip(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, quote=False)}") from None
    if output == "text":
        text = render_text(value)
        if text:
            click.echo(text)
    else:
        click.echo(json.dumps(value, indent=2))
