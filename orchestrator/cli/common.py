"""What every `orch` command shares when it runs: its settings, clients, store and display.

The options, exit codes and the error type themselves live in ``orchestrator.cli.options``
(light, for `orch --help`) and are re-exported here for the commands.

Errors a user can cause or fix (bad config, missing credentials, AWS refusing a call,
an endpoint that does not answer, another sweep holding the lease) end in one line on
stderr and a documented exit code, never a traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import click
from rich.console import Console

from orchestrator.aws import AWS_CALL_ERRORS, AwsError, Clients, describe_aws_error
from orchestrator.cli import output as out
from orchestrator.cli.options import (  # noqa: F401 - re-exported: the commands' one import
    ALL,
    DISPLAY,
    GLOBAL_OPTIONS,
    OUTPUT_HELP,
    Exit,
    F,
    OrchError,
    add_global_options,
    check_endpoint_url,
    is_terminal,
    stdin_is_terminal,
)
from orchestrator.cli.tables import WIDE
from orchestrator.config import ConfigError, Settings, load_settings
from orchestrator.echo import RedactingFilter, clip
from orchestrator.estate import registry
from orchestrator.onboard.config_file import user_config_path
from orchestrator.state import open_store
from orchestrator.state.store import LeaseHeld, StateError, StateStore

log = logging.getLogger(__name__)


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
