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

The parts live beside this shell: ``lambdas.event`` (the input), ``lambdas.deadline``
(the context's time), ``lambdas.logs`` (the lines and the metrics).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from lambdas.deadline import InvalidContext, _time_left, fit_probe_to_deadline
from lambdas.event import InvalidEvent, effective_dry_run, parse_event
from lambdas.logs import METRIC_NAMESPACE, decision_lines, emit, metrics_record, selector_dimension
from orchestrator.aws import AWS_CALL_ERRORS, AwsError, Clients, describe_aws_error
from orchestrator.config import ConfigError, Settings, load_settings
from orchestrator.echo import RedactingFilter, clip, redact
from orchestrator.estate import registry
from orchestrator.jsonable import iso_utc, to_jsonable
from orchestrator.observe.metrics import DimensionCache
from orchestrator.observe.probe import probe_fleet
from orchestrator.state import audit, open_store
from orchestrator.state.store import LeaseHeld, StateError
from orchestrator.sweep.pipeline import Mode, Prober, SweepAborted, SweepDeps, sweep, utcnow

__all__ = [
    "METRIC_NAMESPACE", "HandlerError", "Hooks", "InvalidContext", "InvalidEvent", "emit", "handler", "metrics_record", "selector_dimension",
    "_time_left",
]

MAX_ERROR_CHARS = 2000  # an error line quotes inputs clipped, and is itself at most this long


class HandlerError(Exception):
    """The invocation failed before acting (or the sweep aborted); the message says why."""


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
