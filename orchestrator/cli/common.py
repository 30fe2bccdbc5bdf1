"""What every `orch` command shares: AWS-CLI-style options, settings, exit codes, errors.

The global options are defined once (``GLOBAL_OPTIONS``) and attached both to the
``orch`` group and to each command, so ``orch --region us-east-1 status`` and
``orch status --region us-east-1`` mean the same, as with the AWS CLI; a value given
after the command wins over one given before it.

Errors a user can cause or fix (bad config, missing credentials, AWS refusing a call,
an endpoint that does not answer, another sweep holding the lease) end in one line on
stderr and a documented exit code, never a traceback.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

import click
import jmespath
from jmespath.exceptions import JMESPathError
from rich.console import Console

from orchestrator.aws import AWS_CALL_ERRORS, AwsError, Clients, describe_aws_error
from orchestrator.cli import output as out
from orchestrator.cli.render import WIDE
from orchestrator.config import ConfigError, Settings, load_settings, parse_selector
from orchestrator.echo import RedactingFilter, clip, redact
from orchestrator.estate import registry
from orchestrator.onboard.config_file import user_config_path
from orchestrator.state import open_store
from orchestrator.state.store import LeaseHeld, StateError, StateStore

log = logging.getLogger(__name__)


class Exit(enum.IntEnum):
    """Documented in the README and `orch --help`; scripts and schedulers branch on these."""

    OK = 0
    UNHEALTHY = 1  # the sweep ran; something is still unhealthy, blocked or failed; or nothing matched
    USAGE = 2  # bad flags or configuration
    AWS = 3  # an AWS call failed or the endpoint did not answer; nothing was acted on after it
    LEASE_HELD = 4  # another sweep is running for this scope
    STATE = 5  # the state store cannot be read or written; nothing was acted on


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
    try:
        return parse_selector(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _query_value(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
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
    "output": click.option("--output", "-o", type=click.Choice(out.FORMATS), help=OUTPUT_HELP),
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


def given_options(values: dict[str, Any], names: tuple[str, ...] = ALL) -> dict[str, Any]:
    """This command's global options merged over the group's: after the command wins."""
    ctx = click.get_current_context()
    # Every group above the command may carry them (`orch --region X agent check`): the nearest wins.
    before: dict[str, Any] = {}
    parent = ctx.parent
    while parent is not None:
        for name, value in parent.params.items():
            if before.get(name) is None:
                before[name] = value
        parent = parent.parent
    return {name: values.get(name) if values.get(name) is not None else before.get(name) for name in names}


def resolve_output(given: str | None, query: Any) -> str:
    """--output, else AWS_DEFAULT_OUTPUT (as the AWS CLI), else table; --query alone means json."""
    if given is not None:
        if given in out.TABLES and query is not None:
            raise click.UsageError("--query selects from the JSON result: use it with --output json or text")
        return given
    env = os.environ.get("AWS_DEFAULT_OUTPUT", "").strip().lower()
    if env in out.FORMATS:
        chosen = env
    else:
        if env:
            click.echo(f"warning: AWS_DEFAULT_OUTPUT={clip(env)} is not one orch prints ({', '.join(out.FORMATS)}); using table", err=True)
        chosen = "table"
    return "json" if chosen == "table" and query is not None else chosen


def configure_logging(debug: bool) -> None:
    """--debug: orch's and botocore's loggers through `logging` to stderr, as `aws --debug` does."""
    if not debug:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s [%(levelname)s] %(message)s"))
    for name in ("orchestrator", "lambdas", "botocore", "boto3", "urllib3"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


@dataclass
class Display:
    """How results are shown: format, query, colour."""

    output: str = "table"
    query: Any = None
    no_color: bool = False

    @property
    def json(self) -> bool:
        return self.output not in out.TABLES

    def console(self, stderr: bool = False) -> Console:
        return out.console(self.no_color, stderr=stderr)

    def emit(self, document: Any, table: Callable[[], None] | None = None) -> None:
        out.emit(document, self.output, self.query, table)

    def say(self, text: str) -> None:
        """A sentence for people, wrapped at words to the terminal (no markup: a reason may hold brackets)."""
        self.console().print(text, markup=False, highlight=False)


def display_from(values: dict[str, Any]) -> Display:
    configure_logging(bool(values.get("debug")))
    WIDE.set(values.get("output") == "wide")
    return Display(resolve_output(values.get("output"), values.get("query")), values.get("query"), bool(values.get("no_color")))


@dataclass
class Runtime(Display):
    """Options of one invocation, with settings and AWS clients made on first use."""

    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    endpoint_url: str | None = None
    acting: bool = False  # this command may mutate AWS: it must not act beside a deployed healer
    account: str = "-"  # from the deployed healer adopted, for the lease scope
    _settings: Settings | None = None
    _clients: Clients | None = None
    _store: StateStore | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, overrides=self.overrides, default_path=user_config_path())
        return self._settings

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(region=self.settings.region, profile=self.settings.profile, endpoint_url=self.endpoint_url)
        return self._clients

    @property
    def store(self) -> StateStore:
        if self._store is None:
            given = self.settings.state
            if given is not None:
                # A store named by the user is opened first: a bad one is its own error, before any AWS call.
                self._store = open_store(given, lambda: self.clients)
            self._beside_deployed_healers()
            if self._store is None or self.settings.state != given:
                if self._store is not None:
                    self._store.close()
                self._store = open_store(self.settings.state, lambda: self.clients)
        return self._store

    def _beside_deployed_healers(self) -> None:
        """Use the deployed healer's store for the same fleet, or refuse to act beside it (orchestrator.estate.registry)."""
        settings = self.settings
        try:
            healers = registry.list_healers(self.clients.client("ssm"))
        except AWS_CALL_ERRORS as exc:
            problem = f"the deployed healers could not be read ({describe_aws_error(exc, 'ssm:GetParametersByPath')})"
            if self.acting and settings.state is None:
                raise OrchError(
                    f"{problem}: not acting, one could be healing these instances through its own store; "
                    "grant ssm:GetParametersByPath on /orch/healers/ or name the store with --state",
                    Exit.AWS,
                ) from None
            # Only reading: the command goes on; its own calls say what is wrong, if anything.
            log.info("%s; reading the store of --state or the default", problem)
            return
        found = registry.resolve(healers, settings.selector, settings.vpc_id, settings.state, self.acting)
        self._settings = settings.model_copy(update={"state": found.state, "vpc_id": found.vpc_id})
        self.account = found.account
        for note in found.notes:
            self.console(stderr=True).print(f"note: {note}", markup=False, highlight=False)

    def selector_text(self) -> str:
        """The selector as given, for messages: cut to ECHO_LIMIT characters (a 100 kB tag value is not repeated whole)."""
        return clip(",".join(f"{k}={v}" for k, v in self.settings.selector.items()), quote=False)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def user_errors(func: Callable[..., Any], runtime: Runtime | None = None) -> Callable[..., Any]:
    """Every error a user can act on as one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise OrchError(str(exc), Exit.USAGE) from None
        except AwsError as exc:
            raise OrchError(str(exc), Exit.AWS) from None
        except AWS_CALL_ERRORS as exc:  # a call no command mapped itself: still one line, exit 3
            raise OrchError(describe_aws_error(exc), Exit.AWS) from None
        except registry.HealerConflict as exc:
            raise OrchError(f"{exc}; not acting", Exit.LEASE_HELD) from None
        except LeaseHeld as exc:
            raise OrchError(f"{exc}; not acting. Wait for it, or pass --wait.", Exit.LEASE_HELD) from None
        except StateError as exc:
            raise OrchError(f"state store: {exc}; nothing was acted on", Exit.STATE) from None
        finally:
            if runtime is not None:
                runtime.close()

    return wrapper


def common_options(func: F) -> F:
    """Every global option, after the command as with the AWS CLI (and before it, on the group)."""

    def wrapper(**kwargs: Any) -> Any:
        values = given_options({name: kwargs.pop(name) for name in ALL})
        display = display_from(values)
        runtime = Runtime(
            output=display.output,
            query=display.query,
            no_color=display.no_color,
            config=values["config_path"],
            overrides={"region": values["region"], "profile": values["profile"], "state": values["state"], "selector": values["selector"]},
            endpoint_url=values["endpoint_url"],
        )
        return user_errors(func, runtime)(runtime, **kwargs)

    functools.update_wrapper(wrapper, func)
    return add_global_options(wrapper)  # type: ignore[return-value]


def display_options(func: F) -> F:
    """--output, --query, --debug, --no-color for commands that make no AWS client."""

    def wrapper(**kwargs: Any) -> Any:
        values = given_options({name: kwargs.pop(name) for name in DISPLAY}, DISPLAY)
        return func(display_from(values), **kwargs)

    functools.update_wrapper(wrapper, func)
    return add_global_options(wrapper, DISPLAY)  # type: ignore[return-value]
