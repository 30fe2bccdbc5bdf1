"""The whole of orch's settings: the top-level fields and one field per section.

``Settings`` reads nothing by itself: ``load_settings`` (``loading``) gathers the file,
the environment and the command line and hands the result over.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from orchestrator.config.sections import (
    ChronicSettings,
    EvidenceSettings,
    MemorySettings,
    NotifySettings,
    ProbeSettings,
    SafetySettings,
    _refuse_bool_for_number,
    _Section,
)

ENV_PREFIX = "ORCH_"

# AWS region names: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4, cn-north-1.
REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+){1,2}-\d{1,2}")


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
