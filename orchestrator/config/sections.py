"""The sections of the settings, one pydantic model each: probe, memory, safety, chronic, evidence, notify.

Each field carries its bounds and a description (the README's table and ``orch
config`` read them); a section refuses fields it does not know, true/false for a
number, and nan/inf, so a mistake is one line at load instead of a surprise later.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from orchestrator.echo import remember_secret
from orchestrator.model import ActionKind


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
