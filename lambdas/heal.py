"""The scheduled Lambda: a thin shell over the same ``sweep`` as ``orch heal``.

Contract
========

Input (``event``), validated before anything else happens:

- an EventBridge scheduled event: ``source == "aws.events"`` and
  ``detail-type == "Scheduled Event"`` (other envelope fields are accepted as AWS sends
  them, so a new field from AWS never breaks the schedule);
- or a manual invoke ``{"orch": {"dry_run": true, "mode": "scan"}}``, both keys
  optional and nothing else allowed. A manual invoke can only make the sweep *more*
  careful: ``dry_run: true`` or ``mode: scan``. ``dry_run: false`` on a function
  deployed with ``Mode=dry-run`` is refused: whoever may invoke the function cannot
  turn on healing that the operator left off (redeploy with ``Mode=heal`` for that).

Settings: the ``ORCH_*`` environment variables the template sets, validated by the same
``load_settings`` as the CLI. The deadline is the context's remaining time: the sweep
starts no new action in its last 30 seconds and reports itself partial, and the SSH
probe's retry window is shortened when it would not fit.

Output: ``SweepReport.summary()``, the JSON ``orch heal --output json`` prints. When
another sweep holds the lease the result is ``{"skipped": "lease held by ...", ...}``:
not an error, the next schedule tries again.

Errors: a malformed event, a bad setting, a context whose deadline cannot be read
(``get_remaining_time_in_millis`` not callable, raising, or not a number), a fact that could not be read
(``SweepAborted``), an AWS client that cannot be made, or a state store that cannot be
used: one JSON line ``{"level": "error", "event": ..., "error": ...}`` on stdout, then
``HandlerError`` is raised, so the invocation fails, the Errors alarm fires, and a
manual invoker sees the same message. Nothing has been acted on in any of these cases.
Every input the line quotes is clipped (``orchestrator.echo.clip``) and the line is at
most ``MAX_ERROR_CHARS`` long: CloudWatch Logs takes 256 KB an event, and a 1 MB event
key must not become a 1 MB log line.
(The Lambda runtime adds its own record of the raised error; ours is the one line
meant to be read.)

Logs: one JSON line per decision (each action with its outcome, each blocked action
with why, each plan note), one summary line, and one CloudWatch embedded-metric-format
line per sweep (namespace ``orch``, dimension ``Selector``), which the template's
breaker alarm watches.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.aws import AWS_CALL_ERRORS, AwsError, Clients, describe_aws_error
from orchestrator.config import ConfigError, Settings, load_settings
from orchestrator.echo import RedactingFilter, clip, redact
from orchestrator.estate import registry
from orchestrator.jsonable import iso_utc, to_jsonable
from orchestrator.observe.metrics import DimensionCache
from orchestrator.observe.probe import probe_fleet
from orchestrator.state import audit, open_store
from orchestrator.state.store import LeaseHeld, StateError
from orchestrator.sweep.pipeline import Mode, Prober, SweepAborted, SweepDeps, SweepReport, sweep, utcnow

METRIC_NAMESPACE = "orch"
GATE_MARGIN_S = 30.0  # sweep's gate refuses new actions with less than this left
OBSERVE_RESERVE_S = 30.0  # inventory, status, metrics, lease and record around the probe
BREAKER_MARKERS = ("circuit breaker", "every probe")  # plan notes of a fleet-wide stop
ACTED = frozenset({"done", "uncertain"})  # outcomes where AWS may have accepted the call
MAX_ERROR_CHARS = 2000  # an error line quotes inputs clipped, and is itself at most this long


class HandlerError(Exception):
    """The invocation failed before acting (or the sweep aborted); the message says why."""


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


# -- deadline --------------------------------------------------------------------------


def fit_probe_to_deadline(settings: Settings, seconds_left: float | None) -> tuple[Settings, str | None]:
    """Shorten the probe's retry window when the worst-case probe would not fit.

    Failures spread over less time than ``safety.debounce_seconds`` do not debounce, so a
    shortened window can only delay an action, never cause one.
    """
    if seconds_left is None:
        return settings, None
    probe = settings.probe
    attempt = probe.connect_timeout + probe.banner_timeout
    room = seconds_left - GATE_MARGIN_S - OBSERVE_RESERVE_S
    if probe.retry_window + attempt <= room:
        return settings, None
    window = max(0.0, room - attempt)
    shorter = settings.model_copy(update={"probe": probe.model_copy(update={"retry_window": window})})
    return shorter, (
        f"{seconds_left:.0f} s left: probe retry window cut from {probe.retry_window:g} s to {window:g} s"
    )


class InvalidContext(ValueError):
    """The context's deadline cannot be read: without it no action can be known to fit."""


def _millis(remaining: Callable[[], Any]) -> float:
    value = remaining()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidContext(f"get_remaining_time_in_millis() returned {clip(value)}, not a number of milliseconds")
    return float(value)


def _time_left(context: Any) -> Callable[[], float] | None:
    """Seconds left, from the context; None when there is no context (a local call).

    Checked once up front (a context whose method is not callable or returns garbage
    fails the invocation before anything happens); a later bad reading counts as no
    time left, so no new action starts on it.
    """
    if context is None:
        return None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    if not callable(remaining):
        raise InvalidContext(f"the context's get_remaining_time_in_millis is {type(remaining).__name__}, not a method")
    try:
        _millis(remaining)
    except InvalidContext:
        raise
    except Exception as exc:  # whatever a broken context raises
        raise InvalidContext(f"get_remaining_time_in_millis() raised {type(exc).__name__}: {clip(str(exc), quote=False)}") from None

    def left() -> float:
        try:
            return _millis(remaining) / 1000.0
        except Exception:
            return 0.0

    return left


# -- logs and metrics --------------------------------------------------------------------


def emit(record: Mapping[str, Any]) -> None:
    """One JSON object per line on stdout, which Lambda sends to the function's log group."""
    sys.stdout.write(redact(json.dumps(record, default=str, separators=(",", ":"))) + "\n")
    sys.stdout.flush()


def selector_dimension(selector: Mapping[str, str]) -> str:
    """``key=value[,key=value]``: the template's alarm uses the same text for one tag."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def breaker_tripped(notes: list[str]) -> bool:
    return any(marker in note for note in notes for marker in BREAKER_MARKERS)


def decision_lines(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    sweep_id = summary["sweep_id"]
    lines: list[dict[str, Any]] = []
    for action in summary["actions"]:
        level = "info" if action["outcome"] in ("done", "dry-run") else "warning"
        lines.append(
            {
                "level": level,
                "event": "action",
                "sweep_id": sweep_id,
                "instance_id": action["instance_id"],
                "action": action["action"],
                "reason": action["reason"],
                "outcome": action["outcome"],
                "detail": action["detail"],
            }
        )
    for blocked in summary["blocked"]:
        lines.append(
            {
                "level": "info",
                "event": "blocked",
                "sweep_id": sweep_id,
                "instance_id": blocked["instance_id"],
                "action": blocked["action"],
                "why": blocked["why"],
            }
        )
    lines.extend({"level": "info", "event": "note", "sweep_id": sweep_id, "note": n} for n in summary["notes"])
    return lines


def metrics_record(report: SweepReport, summary: Mapping[str, Any], selector: Mapping[str, str]) -> dict[str, Any]:
    """One CloudWatch embedded-metric-format object: the metrics of one sweep."""
    finished = report.finished_at or report.started_at
    values = {
        "Instances": summary["instances"],
        "Unreachable": summary["verdicts"].get("unreachable", 0),
        "Actions": sum(1 for a in summary["actions"] if a["outcome"] in ACTED),
        "Blocked": len(summary["blocked"]),
        "BreakerTripped": 1 if breaker_tripped(summary["notes"]) else 0,
        "Chronic": sum(len(p["instances"]) for p in summary.get("chronic", [])),
        "Quarantined": len(summary.get("quarantined", {})),
        "DurationSeconds": round((finished - report.started_at).total_seconds(), 3),
        "ApiCalls": summary["api_calls_total"],
    }
    units = {name: "Count" for name in values} | {"DurationSeconds": "Seconds"}
    return {
        "_aws": {
            "Timestamp": int(finished.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["Selector"]],
                    "Metrics": [{"Name": name, "Unit": units[name]} for name in values],
                }
            ],
        },
        "Selector": selector_dimension(selector),
        "sweep_id": report.sweep_id,
        "dry_run": report.dry_run,
        "partial": report.partial,
        **values,
    }


# -- the handler ---------------------------------------------------------------------------


def default_clients(settings: Settings) -> Clients:
    return Clients(region=settings.region, profile=settings.profile)


@dataclass
class Hooks:
    """What a test replaces; the defaults are the production path (real clients, real probe).

    The default instance lives for the life of a warm Lambda container, so discovered
    metric dimensions are reused across scheduled invocations.
    """

    clients: Callable[[Settings], Clients] = default_clients
    prober: Prober = probe_fleet
    clock: Callable[[], datetime] = utcnow
    dimension_cache: DimensionCache = field(default_factory=DimensionCache)
    environ: Mapping[str, str] | None = None  # None: os.environ


_WARM = Hooks()


def _fail(kind: str, message: str) -> HandlerError:
    message = clip(redact(message), MAX_ERROR_CHARS, quote=False)
    emit({"level": "error", "event": kind, "error": message})
    return HandlerError(message)


def _redact_logs() -> None:
    """Secrets (webhook URLs, routing keys) masked in whatever the runtime's log handlers write."""
    for log_handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in log_handler.filters):
            log_handler.addFilter(RedactingFilter())


def account_of(context: Any) -> str:
    """The account from the function's ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME); '-' if unknown."""
    arn = getattr(context, "invoked_function_arn", None)
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else "-"


def beside_other_healers(settings: Settings, clients: Clients, acting: bool) -> None:
    """Refuse to act on instances another stack's healer manages through another store."""
    healers = registry.list_healers(clients.client("ssm"))
    resolution = registry.resolve(
        healers, settings.selector, settings.vpc_id, settings.state, acting, own_stack=settings.stack
    )
    for note in resolution.notes:
        emit({"level": "warning", "event": "healer-registry", "note": note})


def handler(event: Any, context: Any, hooks: Hooks | None = None) -> dict[str, Any]:
    """Lambda entry point (``lambdas.heal.handler``); see the module docstring for the contract."""
    hooks = hooks or _WARM
    _redact_logs()
    environ = os.environ if hooks.environ is None else hooks.environ
    try:
        request = parse_event(event)
        settings = load_settings(environ=environ)
        dry_run = effective_dry_run(request, settings)
        time_left = _time_left(context)
    except InvalidEvent as exc:
        raise _fail("invalid-event", str(exc)) from None
    except ConfigError as exc:
        raise _fail("invalid-settings", str(exc)) from None
    except InvalidContext as exc:
        raise _fail("invalid-context", f"{exc}; nothing was acted on") from None
    if settings.state is None:
        # Not the CLI's default SQLite file: inside a function it lives in a container that
        # AWS recycles at will, taking the ladder, the in-flight actions and the lease with it.
        raise _fail("state", "ORCH_STATE is not set: the function needs its DynamoDB table (ORCH_STATE=dynamodb://TABLE, "
                             "which cfn/orchestrator.yaml sets); nothing was acted on")
    settings, cut = fit_probe_to_deadline(settings, time_left() if time_left else None)
    if cut:
        emit({"level": "warning", "event": "deadline", "note": cut})
    try:
        clients = hooks.clients(settings)
        store = open_store(settings.state, lambda: clients)
    except AwsError as exc:
        raise _fail("aws", str(exc)) from None
    except StateError as exc:
        raise _fail("state", f"state store: {exc}; nothing was acted on") from None
    deps = SweepDeps(
        clients=clients,
        store=store,
        clock=hooks.clock,
        prober=hooks.prober,
        time_left=time_left,
        dimension_cache=hooks.dimension_cache,
        account=account_of(context),
    )
    started = time.monotonic()
    try:
        beside_other_healers(settings, clients, acting=request.mode is Mode.HEAL and not dry_run)
        report = sweep(settings, deps, mode=request.mode, dry_run=dry_run)
    except registry.HealerConflict as exc:
        emit({"level": "error", "event": "healer-conflict", "error": clip(str(exc), MAX_ERROR_CHARS, quote=False)})
        store.close()
        return {
            "skipped": "another deployed healer manages these instances through another store",
            "mode": request.mode.value,
            "dry_run": dry_run,
            "instances": 0,
            "actions": [],
            "blocked": [],
            "notes": [f"{exc}; not acting"],
        }
    except LeaseHeld as exc:
        skipped = f"lease held by {exc.owner} until {iso_utc(exc.expires_at)}"
        emit({"level": "warning", "event": "lease-held", "skipped": skipped, "error": str(exc)})
        return {
            "skipped": skipped,
            "mode": request.mode.value,
            "dry_run": dry_run,
            "instances": 0,
            "actions": [],
            "blocked": [],
            "notes": [f"{exc}; not acting, the next schedule tries again"],
        }
    except SweepAborted as exc:
        raise _fail("sweep-aborted", f"sweep aborted before acting: {exc}") from None
    except StateError as exc:
        raise _fail("state", f"state store: {exc}; nothing was acted on") from None
    except AwsError as exc:
        raise _fail("aws", str(exc)) from None
    except AWS_CALL_ERRORS as exc:  # one no step mapped (a reply botocore could not parse...)
        raise _fail("aws", describe_aws_error(exc)) from None
    finally:
        store.close()
    summary: dict[str, Any] = to_jsonable(report.summary())
    for line in decision_lines(summary):
        emit(line)
    for delivery in report.deliveries:
        if not delivery.delivered:  # the result's notified.webhooks says the same; the log can be alarmed on
            emit({"level": "warning", "event": "webhook-failed", "sweep_id": summary["sweep_id"], **delivery.as_dict()})
    emit(
        {
            "level": "warning" if report.partial or report.delivery_failed else "info",
            "event": "sweep",
            "trigger": request.trigger,
            "sweep_id": summary["sweep_id"],
            "mode": summary["mode"],
            "dry_run": summary["dry_run"],
            "partial": summary["partial"],
            "instances": summary["instances"],
            "verdicts": summary["verdicts"],
            "actions": len(summary["actions"]),
            "blocked": len(summary["blocked"]),
            "api_calls_total": summary["api_calls_total"],
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    emit(metrics_record(report, summary, settings.selector))
    if report.record_error is not None:
        # The decision lines above are the audit in CloudWatch Logs; the bucket keeps a copy.
        kept = (
            audit.write_bucket(clients.client("s3").put_object, settings.evidence.bucket, settings.evidence.prefix, summary)
            if settings.evidence.bucket
            else "the log lines above"
        )
        raise _fail("state", f"state store: {report.record_error}; {audit.done_before(summary)}; what was done is in {kept}")
    return summary
