"""The handler's input: an EventBridge scheduled event or a manual invoke, validated first.

A manual invoke can only make the sweep *more* careful (``dry_run: true``, ``mode:
scan``); ``dry_run: false`` on a function deployed in dry-run mode is refused. See
``lambdas.heal`` for the whole contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.config import Settings
from orchestrator.echo import clip
from orchestrator.sweep.pipeline import Mode


class InvalidEvent(ValueError):
    """The event is neither a scheduled event nor a valid manual invoke."""


# -- events --------------------------------------------------------------------------


class ScheduledEvent(BaseModel):
    """What EventBridge sends for a schedule rule; unknown envelope fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    id: str | None = None
    time: datetime | None = None
    resources: list[str] = Field(default_factory=list)


class Overrides(BaseModel):
    """A manual invoke's knobs: each can only make the sweep more careful."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool | None = None
    mode: Literal["heal", "scan"] = "heal"


class ManualInvoke(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    orch: Overrides = Field(default_factory=Overrides)


@dataclass(frozen=True)
class Request:
    trigger: str  # "schedule" | "manual"
    mode: Mode
    dry_run: bool | None  # None: the deployed setting (ORCH_DRY_RUN)


EXPECTED = (
    'expected an EventBridge scheduled event (source "aws.events", detail-type "Scheduled Event") '
    'or a manual invoke such as {"orch": {"dry_run": true}}'
)


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        where = clip(".".join(str(p) for p in err["loc"]), quote=False) or "event"
        message = "unknown key (not allowed)" if err["type"] == "extra_forbidden" else clip(err["msg"], quote=False)
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_event(event: Any) -> Request:
    """Which of the two accepted shapes this is, or InvalidEvent naming what is wrong."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"event is {type(event).__name__}, not a JSON object: {EXPECTED}")
    try:
        if "orch" in event:
            manual = ManualInvoke.model_validate(dict(event))
            mode = Mode.SCAN if manual.orch.mode == "scan" else Mode.HEAL
            return Request("manual", mode, manual.orch.dry_run)
        if "source" in event or "detail-type" in event:
            ScheduledEvent.model_validate(dict(event))
            return Request("schedule", Mode.HEAL, None)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid event: {_validation_text(exc)}; {EXPECTED}") from None
    names = sorted(map(str, event))
    keys = ", ".join(clip(k, 64, quote=False) for k in names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    raise InvalidEvent(f"unrecognised event (keys: {keys or 'none'}): {EXPECTED}")


def effective_dry_run(request: Request, settings: Settings) -> bool:
    """The deployed setting, made more careful by a manual invoke, never less."""
    if request.dry_run is False and settings.dry_run:
        raise InvalidEvent(
            'refused: "dry_run": false cannot override the deployed dry-run mode; '
            "redeploy with --parameter Mode=heal to let orch act"
        )
    return bool(settings.dry_run or request.dry_run)
