"""What every `orch` command line shares and `orch --help` shows: the global options, the
exit codes, the one error type. Light on purpose: `orch --help` imports this and click,
nothing of boto3, pydantic or rich (a parse that needs them imports them when it runs).

The global options are defined once (``GLOBAL_OPTIONS``) and attached both to the
``orch`` group and to each command, so ``orch --region us-east-1 status`` and
``orch status --region us-east-1`` mean the same, as with the AWS CLI; a value given
after the command wins over one given before it.
"""

from __future__ import annotations

import enum
import shutil
import sys
import textwrap
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

import click

from orchestrator.echo import clip, redact

FORMATS = ("table", "wide", "json", "text")
TABLES = ("table", "wide")  # for people: wide is the table with every column and every reason whole


class Exit(enum.IntEnum):
    """Documented in the README and `orch --help`; scripts and schedulers branch on these."""

    OK = 0
    UNHEALTHY = 1  # the sweep ran; something is still unhealthy, blocked or failed; or nothing matched
    USAGE = 2  # bad flags or configuration
    AWS = 3  # an AWS call failed or the endpoint did not answer; nothing was acted on after it
    LEASE_HELD = 4  # another sweep is running for this scope
    STATE = 5  # the state store cannot be read or written; nothing was acted on


EXIT_HELP = """\b
Exit codes:
  0  ok: scan found every instance healthy (opted-out ones aside);
     heal did what the rules allow, waiting included (an action in
     flight awaiting verification, a failure not yet confirmed, launch
     grace), and left opted-out (orch:skip) instances alone
  1  the sweep ran and needs a look: scan found an unhealthy instance;
     heal was held back by the circuit breaker, a budget, quarantine,
     pause or a rule that needs a human, or an action failed or was
     skipped, or a webhook target did not take the news (SNS and
     the records are kept); or the selector or region matched no
     instance; or you said no at the prompt (then a dry run)
  2  bad usage or configuration, or acting off a terminal without --yes
  3  an AWS call failed or the endpoint did not answer (nothing acted
     on after it)
  4  another sweep holds the lease
  5  the state store cannot be read or written (nothing acted on)
  130  interrupted (Ctrl-C): nothing more is done"""


def is_terminal(stream: Any) -> bool:
    """``stream.isatty()``, False for a stream that is closed or absent: started with
    ``<&-``, Python's sys.stdin is None, and a closed file's isatty() raises."""
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError):
        return False


def stdin_is_terminal() -> bool:
    """Only a person at a terminal can answer a question or press a key."""
    return is_terminal(sys.stdin)


class OrchError(click.ClickException):
    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.exit_code = int(code)

    def show(self, file: Any = None) -> None:
        """One line for logs and scripts; on a terminal the same words wrapped at spaces to
        its width (the terminal itself would break an id or a path mid-word)."""
        stream = file or sys.stderr
        if stream is None:  # stderr closed: nowhere to say it; the exit code still does
            return
        text = f"Error: {redact(self.format_message())}"
        if is_terminal(stream):
            width = shutil.get_terminal_size().columns
            text = textwrap.fill(text, width=max(width, 40), break_long_words=False, break_on_hyphens=False)
        click.echo(text, file=stream)


# -- the global options, defined once ----------------------------------------------------


def _selector_value(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    from orchestrator.config import ConfigError, parse_selector  # pydantic: only when a selector is given

    try:
        return parse_selector(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _query_value(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(value)
    except JMESPathError as exc:
        raise click.BadParameter(f"not a JMESPath expression: {clip(str(exc).splitlines()[0], quote=False)}") from None


def check_endpoint_url(value: str, name: str) -> str:
    """The AWS CLI's rule: a full URL with a scheme and a host (botocore's own error is a traceback)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name}={clip(value)} is not a URL: give http(s)://HOST[:PORT], e.g. http://127.0.0.1:5000")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"{name}={clip(value)} has an invalid port: give http(s)://HOST[:PORT]") from None
    return value


def _endpoint_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_endpoint_url(value, "--endpoint-url")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


OUTPUT_HELP = "Output format; wide: every column, reasons wrapped whole (default: AWS_DEFAULT_OUTPUT, else table)."

GLOBAL_OPTIONS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "region": click.option("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)."),
    "profile": click.option("--profile", help="AWS named profile (default: AWS_PROFILE)."),
    "endpoint_url": click.option(
        "--endpoint-url", callback=_endpoint_value, help="Send every AWS call here (as AWS_ENDPOINT_URL), e.g. a moto server."
    ),
    "config_path": click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file (default: ORCH_CONFIG)."),
    "state": click.option("--state", help="State store: a SQLite path or dynamodb://TABLE."),
    "selector": click.option("--selector", callback=_selector_value, help="Instances to manage, as tag KEY=VALUE[,KEY=VALUE]."),
    "output": click.option("--output", "-o", type=click.Choice(FORMATS), help=OUTPUT_HELP),
    "query": click.option("--query", callback=_query_value, help="JMESPath expression applied to the JSON result (as in the AWS CLI)."),
    "debug": click.option("--debug", is_flag=True, default=None, help="Log orch's and botocore's debug messages to stderr."),
    "no_color": click.option("--no-color", is_flag=True, default=None, help="No colours (also NO_COLOR=1)."),
}
DISPLAY = ("output", "query", "debug", "no_color")  # for commands that call no AWS API
ALL = tuple(GLOBAL_OPTIONS)

F = TypeVar("F", bound=Callable[..., Any])


def add_global_options(func: F, names: tuple[str, ...] = ALL) -> F:
    for name in reversed(names):
        func = GLOBAL_OPTIONS[name](func)  # type: ignore[assignment]
    return func
