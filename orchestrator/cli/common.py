"""What every `orch` command shares: AWS-CLI-style options, settings, exit codes, errors.

Errors a user can cause or fix (bad config, missing credentials, AWS refusing a call,
another sweep holding the lease) end in one line on stderr and a documented exit
code, never a traceback.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import click

from orchestrator.aws import AWS_CALL_ERRORS, AwsError, Clients, describe_aws_error
from orchestrator.config import ConfigError, Settings, load_settings, parse_selector
from orchestrator.state import open_store
from orchestrator.state.store import LeaseHeld, StateError, StateStore


class Exit(enum.IntEnum):
    """Documented in the README; scripts and schedulers branch on these."""

    OK = 0
    UNHEALTHY = 1  # the sweep ran; something is still unhealthy, blocked or failed
    USAGE = 2  # bad flags or configuration
    AWS = 3  # an AWS call failed; nothing was acted on after it
    LEASE_HELD = 4  # another sweep is running for this scope
    STATE = 5  # the state store cannot be read or written; nothing was acted on


class OrchError(click.ClickException):
    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.exit_code = int(code)


@dataclass
class Runtime:
    """Options of one invocation, with settings and AWS clients made on first use."""

    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    output: str = "table"
    _settings: Settings | None = None
    _clients: Clients | None = None
    _store: StateStore | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, overrides=self.overrides)
        return self._settings

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(region=self.settings.region, profile=self.settings.profile)
        return self._clients

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_store(self.settings.state, lambda: self.clients)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @property
    def json(self) -> bool:
        return self.output == "json"


F = TypeVar("F", bound=Callable[..., Any])


def _selector_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    try:
        return parse_selector(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def common_options(func: F) -> F:
    """The AWS CLI puts --region/--profile/--output after the command; so does orch."""

    @click.option("--region", envvar=None, help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's).")
    @click.option("--profile", help="AWS named profile (default: AWS_PROFILE).")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="ORCH_CONFIG", help="TOML settings file.")
    @click.option("--state", help="State store: a SQLite path or dynamodb://TABLE.")
    @click.option("--selector", callback=_selector_option, help="Instances to manage, as tag KEY=VALUE[,KEY=VALUE].")
    @click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
    @functools.wraps(func)
    def wrapper(region: str | None, profile: str | None, config_path: str | None, state: str | None,
                selector: dict[str, str] | None, output: str, **kwargs: Any) -> Any:
        runtime = Runtime(
            config=config_path,
            overrides={"region": region, "profile": profile, "state": state, "selector": selector},
            output=output,
        )
        try:
            return func(runtime, **kwargs)
        except ConfigError as exc:
            raise OrchError(str(exc), Exit.USAGE) from None
        except AwsError as exc:
            raise OrchError(str(exc), Exit.AWS) from None
        except AWS_CALL_ERRORS as exc:  # a call no command mapped itself: still one line, exit 3
            raise OrchError(describe_aws_error(exc), Exit.AWS) from None
        except LeaseHeld as exc:
            raise OrchError(f"{exc}; not acting. Wait for it, or pass --wait.", Exit.LEASE_HELD) from None
        except StateError as exc:
            raise OrchError(f"state store: {exc}; nothing was acted on", Exit.STATE) from None
        finally:
            runtime.close()

    return wrapper  # type: ignore[return-value]
