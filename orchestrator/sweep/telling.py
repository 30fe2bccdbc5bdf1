"""Telling people what a sweep did, after its record is written and its lease released: SNS and webhooks, bounded, never raising."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.alerting import formats as alert_formats
from orchestrator.alerting import news as alerts
from orchestrator.alerting import notify, webhook
from orchestrator.config import Settings
from orchestrator.model import (
    OutcomeStatus,
)
from orchestrator.state.fit import fit_sweep_summary
from orchestrator.state.store import AlertBook, StateError, SweepRecord
from orchestrator.sweep.deps import SweepDeps
from orchestrator.sweep.report import Mode, SweepReport

WEBHOOK_DEADLINE_MARGIN_S = 30.0  # kept for the sweep record and the lease release after the webhooks

log = logging.getLogger(__name__)


def _record_told(settings: Settings, deps: SweepDeps, report: SweepReport) -> None:
    """The sweep record again, now with what was told (``notified``); the first one already holds what was done."""
    try:
        _record_sweep(settings, deps, report)
    except StateError as exc:
        report.notes.append(f"what was told could not be added to the sweep record ({exc}); the record of what was done stands")


@dataclass(frozen=True)
class _News:
    """What to tell (``_news``) and what was already told (the book it was decided against)."""

    book: AlertBook
    decision: alerts.Decision
    message: tuple[str, str] | None
    now: datetime


def _news(settings: Settings, deps: SweepDeps, report: SweepReport, scope: str) -> _News | None:
    """Decide what is news (see ``alerts``): the store is read, nothing outside is called, nothing raises."""
    config = settings.notify
    if not (config.topic_arn or config.webhooks) or report.mode is Mode.SCAN or not deps.notify:
        return None
    try:
        book = deps.store.get_alerts(scope)
    except StateError as exc:
        book = AlertBook(scope)  # better to tell twice than to miss the breaker opening
        report.notes.append(f"what was told before could not be read ({exc}): everything current is told")
    state = alerts.AlertState.from_book(book)
    chronic_ids = frozenset(i for p in report.patterns for i in p.members)
    quarantined = {i: h.quarantine_reason for i, h in report.histories.items() if h.quarantined_at is not None}
    found = alerts.items(
        report.plan,
        report.outcomes,
        report.patterns,
        chronic_ids,
        quarantined,
        notify.action_lines(report),
        ssm_configured=bool(settings.memory.ssm_commands),
        dry_run=report.dry_run,
    )
    now = deps.clock()
    # A person's single action saw the whole fleet but planned for one instance: what it
    # did not plan for has not ended (the breaker stays open), so nothing else is settled.
    decision = alerts.decide(found, state, now, timedelta(hours=config.remind_hours), complete=deps.manual is None)
    return _News(book, decision, notify.compose(report, decision), now)


def _tell(settings: Settings, deps: SweepDeps, report: SweepReport, scope: str) -> bool:
    """Tell the news; what was told is remembered only once it was sent. Never raises; True when anything was told or tried.

    Runs after the sweep record and the lease release (so a second sweep may, in that
    moment, tell the same news again: better twice than lost). SNS first, then each webhook on
    its own, each bounded as a whole (``webhook``): a failed webhook never keeps SNS from
    being told; it is a note, a line in the summary's ``notified.webhooks`` (added to the
    sweep record) and exit 1. What was told is remembered when at least one channel took
    it (a webhook that stays broken must not make SNS repeat itself every sweep); when
    none did, everything is told again next sweep. Anything unforeseen on the way is a
    note: the actions are recorded already and must not be reported as a crash.
    """
    try:
        news = _news(settings, deps, report, scope)
        if news is None:
            return False
        _tell_channels(settings, deps, report, news, scope)
    except Exception as exc:  # noqa: BLE001 - the record of what was done is written; telling must not undo the report
        log.warning("telling the news failed: %s", type(exc).__name__, exc_info=False)
        report.notes.append(f"the news could not be told ({type(exc).__name__}); it is told again next sweep")
    return True


def _tell_channels(settings: Settings, deps: SweepDeps, report: SweepReport, news: _News, scope: str) -> None:
    config = settings.notify
    message, decision, now, book = news.message, news.decision, news.now, news.book
    if message is not None:
        told = False
        done = sum(1 for o in report.outcomes if o.status is OutcomeStatus.DONE)
        counts = {"instances": len(report.facts), "healed": done, "blocked": len(report.plan.blocked)}
        doc = alert_formats.document(*message, decision, report.sweep_id, now, scope, report.dry_run, counts)
        if config.topic_arn:
            chatbot = alert_formats.chatbot_notification(doc) if config.chatbot else None
            error = deps.the_fleet.publish(config.topic_arn, notify.sns_message(*message, chatbot))
            if error is not None:
                report.notes.append(f"{error}; told again next sweep")
            else:
                told = True
                report.message = message
                report.notes.append(f"notified {config.topic_arn}")
        if config.webhooks:
            told = _tell_webhooks(settings, deps, report, doc) or told
        if not told:
            if config.webhooks and not config.topic_arn:
                report.notes.append("no webhook took the news: told again next sweep")
            return
    new_book = decision.state.to_book(scope)
    if new_book != book:
        try:
            deps.store.put_alerts(new_book)
        except StateError as exc:
            report.notes.append(f"what was told could not be recorded ({exc}): it may be told again")


def _tell_webhooks(settings: Settings, deps: SweepDeps, report: SweepReport, doc: alert_formats.AlertDocument) -> bool:
    """True when at least one webhook target took the news (or had nothing to say: PagerDuty pages conditions only)."""
    config = settings.notify
    total = config.webhook_total_seconds
    if deps.time_left is not None:  # a Lambda: the webhooks share what is left, the record keeps its margin
        total = min(total, max(1.0, (deps.time_left() - WEBHOOK_DEADLINE_MARGIN_S) / len(config.webhooks)))
    policy = webhook.Policy(config.webhook_timeout_seconds, total, config.webhook_attempts)
    report.deliveries = deps.webhooks(config.webhooks, doc, policy)
    for delivery in report.deliveries:
        if delivery.delivered:
            report.notes.append(f"notified webhook {delivery.target} ({delivery.attempts} attempt(s))")
        else:
            report.notes.append(f"webhook {delivery.target} not delivered: {delivery.error}")
    return not report.deliveries or any(d.delivered for d in report.deliveries)


def _record_sweep(settings: Settings, deps: SweepDeps, report: SweepReport) -> None:
    mode = "dry-run" if report.dry_run and report.mode is Mode.HEAL else report.mode.value
    deps.store.put_sweep(
        SweepRecord(
            sweep_id=report.sweep_id,
            started_at=report.started_at,
            mode=mode,
            scope=",".join(f"{k}={v}" for k, v in sorted(settings.selector.items())),
            finished_at=report.finished_at,
            partial=report.partial,
            summary=fit_sweep_summary(report.summary()),
        )
    )
