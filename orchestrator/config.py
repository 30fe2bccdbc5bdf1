"""Every setting of orch, validated once, with one clear line per mistake.

Precedence: defaults < TOML file (``--config``, else ``ORCH_CONFIG``, else the per-user
file ``orch init`` writes, when it exists) < ``ORCH_*`` environment variables <
command-line flags. The TOML and ``ORCH_*`` layers are read by
pydantic-settings (its TOML source and its environment source, nested on the first
``_`` after the section name: ``ORCH_PROBE_CONNECT_TIMEOUT`` is ``probe.connect_timeout``),
so a new field is configurable everywhere the moment it exists. What pydantic-settings
does not do, or says less clearly, stays here: a misspelt variable is an error with the
closest known name, a section that is not a table is refused, a file that is not UTF-8
or not TOML is one line, and no message echoes more than ~200 characters of any input.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from orchestrator.echo import clip, remember_secret
from orchestrator.model import ActionKind

ENV_PREFIX = "ORCH_"


class ConfigError(Exception):
    """A setting is wrong; the message names the field, what is allowed, and where it came from."""


class _Section(BaseModel):
    # allow_inf_nan=False: "nan", "inf" and "1e400" (which float() reads as inf) are refused
    # at load, where one line can name them, instead of failing every comparison later.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        return _refuse_bool_for_number(cls.model_fields[info.field_name], value) if info.field_name else value


def _refuse_bool_for_number(field: FieldInfo, value: Any) -> Any:
    """pydantic's lax mode reads ``true`` as 1: ``max_actions_per_sweep = true`` must not mean one action."""
    if isinstance(value, bool) and field.annotation in (int, float, "int", "float"):
        raise ValueError("must be a number, not true/false")
    return value


class ProbeSettings(_Section):
    port: int = Field(22, ge=1, le=65535, description="TCP port of sshd")
    connect_timeout: float = Field(3.0, gt=0, le=60, description="seconds for the TCP handshake")
    banner_timeout: float = Field(5.0, gt=0, le=120, description="seconds from connect to the SSH- line")
    max_banner_bytes: int = Field(8192, ge=256, le=1_048_576, description="bytes read before giving up on a banner")
    concurrency: int = Field(200, ge=1, le=900, description="probes in flight at once (a Lambda has 1024 fds)")
    attempts: int = Field(3, ge=1, le=10, description="probes of a failing target before it counts as unreachable")
    retry_window: float = Field(20.0, ge=0, le=600, description="seconds over which the attempts of a failing target are spread")
    address: Literal["private", "public"] = Field("private", description="which instance address to probe")


class MemorySettings(_Section):
    namespace: str = Field("CWAgent", min_length=1)
    metric: str = Field("mem_used_percent", min_length=1)
    window_minutes: int = Field(60, ge=5, le=1440)
    period_seconds: int = Field(60, ge=60, le=3600)
    critical_percent: float = Field(95.0, gt=0, le=100)
    critical_minutes: float = Field(3.0, ge=0, le=1440, description="how long above critical_percent before it counts")
    stale_minutes: float = Field(10.0, gt=0, le=1440, description="silence after which a reporting agent is stale")
    stale_at_top_minutes: float = Field(
        5.0,
        gt=0,
        le=1440,
        description="silence after a point at or above critical_percent that counts as the agent starving (longer than the metric's delivery delay)",
    )
    history_hours: float = Field(
        6.0, ge=0, le=48, description="for an unreachable box whose agent is silent past the window, how far back to look for its climb (0: never)"
    )
    exhaustion_percent: float = Field(
        97.0, gt=0, le=100, description="level at which sshd can no longer fork: the forecast's target"
    )
    horizon_minutes: float = Field(30.0, gt=0, le=1440, description="forecast exhaustion this far ahead")
    trend_minutes: float = Field(30.0, gt=0, le=1440, description="trailing span the trend is fitted over")
    min_points: int = Field(5, ge=3, le=1440, description="datapoints in the trend span needed for a trend")
    min_slope_per_min: float = Field(
        0.05, ge=0, le=100, description="percent per minute below which a rise is drift, not a leak"
    )

    full_read_every: int = Field(
        1, ge=1, le=1000, description="read the whole fleet's memory every K sweeps; suspects are read every sweep"
    )
    proactive: Literal["off", "notify", "ssm", "reboot"] = Field(
        "off", description="what to do about a forecast exhaustion before SSH dies"
    )
    ssm_document: str = Field("AWS-RunShellScript", min_length=1, description="SSM document for proactive = ssm")
    ssm_commands: tuple[str, ...] = Field((), description="shell commands for proactive = ssm, e.g. systemctl restart crawler")

    @model_validator(mode="after")
    def _ssm_has_commands(self) -> MemorySettings:
        if self.proactive == "ssm" and not self.ssm_commands:
            raise ValueError("memory.proactive = ssm needs memory.ssm_commands (what to run on the box)")
        return self

    @model_validator(mode="after")
    def _period_fits_window(self) -> MemorySettings:
        if self.period_seconds > self.window_minutes * 60:
            raise ValueError("memory.period_seconds must not exceed memory.window_minutes * 60")
        return self

    @model_validator(mode="after")
    def _trend_fits_window(self) -> MemorySettings:
        # A trend span longer than the fetched window would silently fit less than it says.
        if self.trend_minutes > self.window_minutes:
            raise ValueError("memory.trend_minutes must not exceed memory.window_minutes")
        return self


_COUNT = re.compile(r"\d{1,9}")
_PERCENT = re.compile(r"\d{1,3}(\.\d{1,6})?%")
# AWS region names: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4, cn-north-1.
REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+){1,2}-\d{1,2}")


class SafetySettings(_Section):
    """Every limit that keeps one bad network day from becoming a fleet-wide reboot."""

    max_actions_per_sweep: int = Field(3, ge=0, le=1000, description="mutating actions one sweep may take")
    max_actions_per_hour: int = Field(20, ge=0, le=10000, description="actions across the fleet in any hour, in flight included")
    max_group_percent: float = Field(10.0, gt=0, le=100, description="share of an Auto Scaling group's in-service instances acted on at once (at least 1)")
    max_unhealthy: str = Field("20%", description="circuit breaker: uncorroborated unreachable instances tolerated, a count or a percent of the fleet")
    az_fault_percent: float = Field(50.0, gt=0, le=100, description="share of one AZ or subnet unreachable that means a network fault there")
    az_fault_min: int = Field(2, ge=1, description="instances that must be unreachable in one AZ before the AZ rule applies")
    debounce_probes: int = Field(3, ge=1, le=100, description="failed probes before an instance counts as unreachable")
    debounce_seconds: float = Field(20.0, ge=0, le=3600, description="seconds those failures must span")
    launch_grace_minutes: float = Field(10.0, ge=0, le=1440, description="no action on instances younger than this")
    ladder: tuple[ActionKind, ...] = Field(
        (ActionKind.REBOOT, ActionKind.STOP_START, ActionKind.REPLACE), min_length=1, description="escalation ladder, first rung first"
    )
    verify_minutes: float = Field(10.0, gt=0, le=1440, description="after an action, how long before judging it")
    reset_minutes: float = Field(30.0, ge=0, le=10080, description="healthy this long after an action resets the ladder")
    flap_minutes: float = Field(
        10.0,
        ge=0,
        le=1440,
        description="a recovery that lasts less than this before the trouble returns is a flap: it counts as a failed action",
    )
    canary: int = Field(
        1,
        ge=0,
        le=100,
        description="past the breaker, SSH failures the box itself answered (refused, no banner) with no known cause: this many are acted on and verified before the rest",
    )
    boot_ceiling_minutes: float = Field(
        30.0, gt=0, le=1440, description="after an action, the longest orch waits for a box to boot before judging it failed"
    )
    quarantine_attempts: int = Field(4, ge=1, le=100, description="actions within quarantine_hours after which a human must look")
    quarantine_hours: float = Field(6.0, gt=0, le=720)
    stop_wait_seconds: int = Field(300, ge=0, le=840, description="how long a stop/start waits for the stop")
    drain_seconds: int = Field(
        0, ge=0, le=600,
        description="before rebooting an instance behind a load balancer (target groups, or a group with ELB health checks): Standby or "
        "deregister it and wait up to this long for its connections to drain, put it back once it answers; 0: no drain",
    )

    @field_validator("ladder")
    @classmethod
    def _ladder_steps(cls, value: tuple[ActionKind, ...]) -> tuple[ActionKind, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a step appears twice")
        return value

    @field_validator("max_unhealthy", mode="before")
    @classmethod
    def _count_or_percent(cls, value: Any) -> str:
        # A TOML integer (max_unhealthy = 5) is the count it says; anything else must be
        # text in one of two exact forms, so every accepted value has one meaning at plan time.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("must be a count like 5 or a percent like 20%")
        text = value.strip()
        if _COUNT.fullmatch(text):
            return str(int(text))
        if _PERCENT.fullmatch(text):
            percent = float(text[:-1])
            if not math.isfinite(percent) or percent > 100:
                raise ValueError("must be a whole count >= 0 or a percent from 0% to 100%")
            return f"{percent:g}%"
        if re.fullmatch(r"\d+\.\d*", text):
            raise ValueError("must be a whole count >= 0 or a percent from 0% to 100% (a count has no decimals)")
        raise ValueError("must be a count like 5 or a percent like 20%")

    def unhealthy_limit(self, fleet_size: int) -> int:
        """How many uncorroborated unreachable instances the breaker tolerates."""
        text = self.max_unhealthy
        if text.endswith("%"):
            return int(fleet_size * float(text[:-1]) / 100)
        return int(text)


class ChronicSettings(_Section):
    """Boxes that need the same remedy again and again: name the condition, act ahead of it."""

    recoveries: int = Field(
        2, ge=1, le=100, description="verified recoveries from memory exhaustion within window_hours that make an instance chronic"
    )
    window_hours: float = Field(24.0, gt=0, le=720, description="the window for chronic.recoveries")
    action: Literal["auto", "reboot", "ssm", "off"] = Field(
        "auto",
        description="ahead of a chronic instance's next exhaustion: auto = the SSM command when memory.ssm_commands is set, else reboot",
    )
    lead_minutes: float | None = Field(
        None,
        gt=0,
        le=1440,
        description="act this long before the forecast exhaustion (default 1.5 x sweep_interval_minutes: the last sweep before it)",
    )


class EvidenceSettings(_Section):
    console: bool = Field(True, description="read the console output before acting")
    console_reads_per_sweep: int = Field(
        10, ge=0, le=1000, description="unreachable suspects whose console is read before the plan, each sweep (the rest wait for a later sweep)"
    )
    console_max_age_minutes: float = Field(30.0, gt=0, le=1440, description="a console reading older than this is read again for a suspect still failing")
    bucket: str | None = Field(None, description="S3 bucket for whole evidence bundles (summary always goes to the state store)")
    prefix: str = Field("orch/evidence/", description="key prefix in the bucket")
    diagnostic_interrupt: bool = Field(
        False, description="reboot with SendDiagnosticInterrupt (a kdump crash dump first); only for instances set up for kdump"
    )


class WebhookTarget(_Section):
    """One place besides SNS that hears the news: a Slack incoming webhook, PagerDuty, or our JSON.

    The URL and the routing key are secrets (a Slack webhook URL is its own credential):
    they are never printed; a target is named by ``name`` or by its format and host.
    """

    url: str = Field(description="http(s) URL the message is POSTed to", repr=False)
    format: Literal["slack", "pagerduty", "json"] = Field(description="slack, pagerduty (Events API v2) or json (orch's own document)")
    routing_key: SecretStr | None = Field(None, description="PagerDuty integration key (format = pagerduty only)")
    name: str | None = Field(None, min_length=1, max_length=60, description="how reports name this target (default: format and host)")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        remember_secret(value)  # masked in every error and log line from now on, valid or not
        value = value.strip()
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
            raise ValueError("contains a space, a line break or a control character: percent-encode it (%20) or remove it")
        if not value.isascii():
            raise ValueError("contains a non-ASCII character: percent-encode the path and give the host in its xn-- form")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host, e.g. https://hooks.slack.com/services/...")
        try:
            parts.port
        except ValueError:
            raise ValueError("has an invalid port") from None
        return value.strip()

    @model_validator(mode="after")
    def _routing_key_for_pagerduty(self) -> WebhookTarget:
        if self.routing_key is not None:
            remember_secret(self.routing_key.get_secret_value())
        if self.format == "pagerduty" and (self.routing_key is None or not self.routing_key.get_secret_value().strip()):
            raise ValueError("a pagerduty target needs routing_key (the Events API v2 integration key)")
        if self.format != "pagerduty" and self.routing_key is not None:
            raise ValueError(f"routing_key is for format = pagerduty, not {self.format}")
        return self

    @property
    def label(self) -> str:
        """A name safe to print and record: never the URL's path or query, which may be the secret."""
        if self.name:
            return self.name
        parts = urlsplit(self.url)
        return f"{self.format} {parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class NotifySettings(_Section):
    topic_arn: str | None = Field(None, description="SNS topic for messages about what changed")
    chatbot: bool = Field(
        True,
        description="publish to the topic with MessageStructure json: https subscribers (AWS Chatbot) get a Chatbot custom notification, every other protocol the plain text",
    )
    remind_hours: float = Field(
        24.0, gt=0, le=720, description="a condition that persists (a chronic pattern, a quarantine, an open breaker) is told again after this long"
    )
    webhooks: tuple[WebhookTarget, ...] = Field(
        (), max_length=10, description="webhook targets besides SNS: slack, pagerduty or json (ORCH_NOTIFY_WEBHOOKS takes a JSON list)"
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, description="seconds one webhook request may take")
    webhook_total_seconds: float = Field(
        20.0, gt=0, le=300, description="seconds all attempts of one webhook message may take, retries and waits included"
    )
    webhook_attempts: int = Field(4, ge=1, le=10, description="attempts of one webhook message (connection errors, 429 and 5xx are retried)")


class Settings(BaseSettings):
    # Settings come only from what load_settings hands over (see settings_customise_sources):
    # constructing Settings() in code or tests never reads the process environment.
    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,  # ORCH_PROBE_CONNECT_TIMEOUT -> probe / connect_timeout
        case_sensitive=False,
    )

    region: str | None = Field(None, description="AWS region; default from the AWS profile/environment")
    profile: str | None = Field(None, description="AWS named profile")
    selector: dict[str, str] = Field(default_factory=lambda: {"orch:managed": "true"})
    opt_out_tag: str = Field("orch:skip", min_length=1)
    dry_run: bool = False
    state: str | None = Field(None, description="SQLite path or dynamodb://TABLE")
    stack: str | None = Field(None, description="the CloudFormation stack this healer belongs to (the template sets it); see the healer registry")
    vpc_id: str | None = Field(None, description="only instances in this VPC (the deployed stack sets its own: a Lambda reaches no other)")
    sweep_interval_minutes: float = Field(  # EventBridge schedules run at most once a minute; below that simulate would never end
        5.0, ge=1, le=1440, description="how often sweeps run (the stack sets its schedule's); sets the chronic lead's default"
    )
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    chronic: ChronicSettings = Field(default_factory=ChronicSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        return _refuse_bool_for_number(cls.model_fields[info.field_name], value) if info.field_name else value

    @field_validator("region")
    @classmethod
    def _region_name(cls, value: str | None) -> str | None:
        if value is not None and not REGION_NAME.fullmatch(value):
            raise ValueError("is not an AWS region name (like us-east-1 or eu-west-2)")
        return value

    @model_validator(mode="after")
    def _chronic_ssm_has_commands(self) -> Settings:
        if self.chronic.action == "ssm" and not self.memory.ssm_commands:
            raise ValueError("chronic.action = ssm needs memory.ssm_commands (what to run on the box)")
        return self

    def lead_minutes(self) -> float:
        """How long before a forecast exhaustion a proactive or chronic action is taken.

        The default is one and a half sweep intervals: the last sweep that still comes
        before the exhaustion acts, whatever the phase of the schedule, with half an
        interval to spare for the forecast's error.
        """
        return self.chronic.lead_minutes if self.chronic.lead_minutes is not None else 1.5 * self.sweep_interval_minutes

    @field_validator("selector")
    @classmethod
    def _selector_not_empty(cls, value: dict[str, str]) -> dict[str, str]:
        # An empty selector would mean "every instance in the account" (SRE book, ch. 7).
        if not value:
            raise ValueError("must name at least one tag (an empty selector would select the whole account)")
        for key, tag_value in value.items():
            if not key.strip():
                raise ValueError("tag keys must not be blank")
            # EC2 filters read * and ? as wildcards (and \\ as their escape) while the
            # role's IAM condition compares literally: `Name=*` would select instances
            # the role may not touch, and plan to act on them.
            wild = sorted({c for c in tag_value if c in "*?\\"})
            if wild:
                raise ValueError(
                    f"tag value {tag_value!r} of {key!r} contains {' '.join(wild)}: EC2 filters treat * and ? as wildcards "
                    "but the role's tag condition matches literally; name the exact value"
                )
        return value


SECTIONS: dict[str, type[_Section]] = {
    name: info.annotation
    for name, info in Settings.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, _Section)
}


def parse_selector(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` as used on the command line and in ORCH_SELECTOR.

    A key given twice is refused: ``a=1,a=2`` has no meaning a person would agree on.
    """
    result: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"selector: {clip(part)} is not KEY=VALUE (example: orch:managed=true)")
        if key.strip() in result:
            raise ConfigError(f"selector: tag {clip(key.strip())} is given twice; give each tag once (KEY=VALUE,OTHER=VALUE)")
        result[key.strip()] = value.strip()
    return result


def env_variables() -> dict[str, tuple[str, ...]]:
    """Every ORCH_* variable orch reads, with the setting it sets."""
    known: dict[str, tuple[str, ...]] = {}
    for name in Settings.model_fields:
        if name in SECTIONS:
            for sub in SECTIONS[name].model_fields:
                known[f"{ENV_PREFIX}{name}_{sub}".upper()] = (name, sub)
        else:
            known[f"{ENV_PREFIX}{name}".upper()] = (name,)
    return known


def _check_env_names(environ: Mapping[str, str]) -> None:
    """pydantic-settings ignores variables it does not know; a misspelt one must not be a no-op.

    Names are read without regard to case, so ``ORCH_DRY_RUN`` and ``orch_dry_run`` are one
    setting spelt twice; which one wins would depend on the environment's order. Two
    spellings of one setting are refused, naming both.
    """
    known = env_variables()
    spellings: dict[str, list[str]] = {}
    for var in environ:
        if var.upper().startswith(ENV_PREFIX):
            spellings.setdefault(var.upper(), []).append(var)
    for upper, names in spellings.items():
        if len(names) > 1:
            listed = " and ".join(clip(n, 60, quote=False) for n in sorted(names))
            raise ConfigError(
                f"{listed} are one setting spelt {len(names)} ways (orch reads these names whatever their case): "
                f"unset all but one, e.g. keep {upper[:60]}"
            )
    for var in environ:
        upper = var.upper()
        if not upper.startswith(ENV_PREFIX) or upper == "ORCH_CONFIG" or upper in known:
            continue
        close = difflib.get_close_matches(upper[:100], known, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see the README's configuration section"
        raise ConfigError(f"{clip(var, quote=False)}: unknown setting{hint}")


def _list_variables() -> frozenset[str]:
    found = set()
    for var, path in env_variables().items():
        model: Any = Settings if len(path) == 1 else SECTIONS[path[0]]
        if getattr(model.model_fields[path[-1]].annotation, "__origin__", None) in (tuple, list):
            found.add(var)
    return frozenset(found)


def _webhooks_json(value: Any) -> Any:
    """ORCH_NOTIFY_WEBHOOKS: a JSON list of targets (their URLs and keys are secrets, kept out of files)."""
    text = str(value).strip()
    if text in ("", ","):
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"ORCH_NOTIFY_WEBHOOKS is not JSON ({exc.msg} at character {exc.pos}): "
            'give a list like [{"url": "https://...", "format": "slack"}]'
        ) from None


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (the Lambda passes its own).

    Lists and the selector keep orch's documented forms (``reboot,stop-start``,
    ``key=value,key2=value2``) instead of pydantic-settings' JSON.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # An empty list variable (a template sets ORCH_MEMORY_SSM_COMMANDS="" when no
        # command is configured) means an empty list; pydantic-settings would pass ''.
        environ = {k: ("," if v == "" and k.upper() in _LIST_VARIABLES else v) for k, v in self._environ.items()}
        return parse_env_vars(environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        if field_name == "selector":
            return parse_selector(value)
        if field_name == "webhooks":
            return _webhooks_json(value)
        return [part.strip() for part in str(value).split(",") if part.strip()]


class _TomlFile(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, with one line for each way a file can be unusable."""

    def __init__(self, path: Path) -> None:
        try:
            path.exists()
        except OSError as exc:  # a name too long for the file system, a path through a file...
            raise ConfigError(f"config file {clip(str(path), quote=False)} cannot be read: {exc.strerror or exc}") from None
        if not path.exists():
            raise ConfigError(f"config file {clip(str(path), quote=False)} does not exist (set --config or ORCH_CONFIG to a TOML file)")
        if not path.is_file():
            raise ConfigError(f"config file {clip(str(path), quote=False)} is not a file (set --config or ORCH_CONFIG to a TOML file)")
        self._shown = clip(str(path), quote=False)
        super().__init__(Settings, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            raw = Path(file_path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"config file {self._shown} cannot be read: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConfigError(f"config file {self._shown} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as UTF-8") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {self._shown} is not valid TOML: {clip(str(exc), quote=False)}") from None
        except RecursionError:  # tomllib parses nested arrays and inline tables recursively: 50,000 `[` exhaust the stack
            raise ConfigError(f"config file {self._shown} is not valid TOML: arrays or tables nested too deeply") from None
        for name in SECTIONS:
            if name in data and not isinstance(data[name], dict):
                raise ConfigError(
                    f"config file {self._shown}: {name} must be a table ([{name}] with settings under it), got {clip(data[name])}"
                )
        return data


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and key != "selector":
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def describe_validation_error(exc: ValidationError, source: str = "") -> str:
    lines = []
    for err in exc.errors():
        where = clip(".".join(str(p) for p in err["loc"]), quote=False) or "settings"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1])[:100], _FIELD_NAMES, n=1)
            lines.append(f"{where}: unknown setting" + (f"; did you mean {close[0]}?" if close else ""))
        elif "webhooks" in err["loc"]:
            lines.append(f"{where}: {message} (the value is not shown: a webhook's URL and key are secrets)")
        else:
            lines.append(f"{where}: {message} (got {clip(err.get('input'))})")
    suffix = f" [from {source}]" if source else ""
    return clip("invalid configuration" + suffix + ": " + "; ".join(lines), 600, quote=False)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    default_path: Path | None = None,
) -> Settings:
    """Build Settings from every source, raising ConfigError with a one-line message.

    ``default_path`` is the per-user file (the CLI passes the platform config directory's
    ``config.toml``, which ``orch init`` writes): read only when neither ``config_path`` nor
    ``ORCH_CONFIG`` names a file, and only if it exists, so a machine without one behaves
    as before. The Lambda passes none: its settings come from its environment alone.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources = []
    path = config_path or env.get("ORCH_CONFIG") or (default_path if default_path is not None and default_path.is_file() else None)
    if path:
        data = _merge(data, _TomlFile(Path(path))())
        sources.append(clip(str(path), quote=False))
    _check_env_names(env)
    try:
        env_data = _Environment(env)()
    except ValueError as exc:  # pydantic-settings' SettingsError: a value it could not decode
        raise ConfigError(f"ORCH_* environment: {clip(str(exc), quote=False)}") from None
    if env_data:
        data = _merge(data, env_data)
        sources.append("ORCH_* environment")
    if overrides:
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
        sources.append("command line")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, " / ".join(sources))) from None


_LIST_VARIABLES = _list_variables()
_FIELD_NAMES = sorted({*Settings.model_fields, *WebhookTarget.model_fields, *(f for m in SECTIONS.values() for f in m.model_fields)})
