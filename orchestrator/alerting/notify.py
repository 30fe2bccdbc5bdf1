"""Telling people: one readable message for a sweep that has news (see ``alerts``).

Composing is pure (the words are tested as text); publishing is one SNS call. The text
is plain so that e-mail and SMS show it as it is. AWS Chatbot is another matter: it
delivers AWS services' events and custom notifications in its documented schema, not
plain text, and it subscribes to the topic over ``https``. So, unless ``notify.chatbot`` is off, the message
is published with ``MessageStructure="json"``: ``default`` (what every protocol without
its own key gets: e-mail, SMS, SQS, Lambda) is the same plain text as before, ``https``
the custom notification (``alert_formats.chatbot_notification``). The SNS API reference:
with ``json`` the Message must be a JSON object with at least a top-level ``default``
string; other top-level keys name the protocol they are for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from orchestrator.alerting.news import FLEET_PREFIX, Decision
from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error
from orchestrator.model import Action, ActionKind, Facts, OutcomeStatus, Verdict

PERMISSIONS = frozenset({"sns:Publish"})
SUBJECT_MAX = 100
# SNS Publish: a message of at most 256 KB, counted in UTF-8 bytes (262,144), not in
# characters (SNS API reference). Room is left for the subject and the request itself.
PUBLISH_MAX_BYTES = 262_144
BODY_MAX_BYTES = PUBLISH_MAX_BYTES - 4_096

PAST = {
    ActionKind.REBOOT: "rebooted",
    ActionKind.STOP_START: "stopped and started",
    ActionKind.REPLACE: "marked for replacement",
    ActionKind.RUN_COMMAND: "sent an SSM command",
    ActionKind.START: "started (finishing orch's stop/start)",
}


def describe_instance(facts: Facts | None, instance_id: str) -> str:
    name = facts.instance.name if facts else ""
    return f"{instance_id} ({name})" if name else instance_id


def memory_phrase(verdict: Verdict | None) -> str:
    if verdict is None or verdict.memory_percent is None:
        return ""
    text = f"memory {verdict.memory_percent:.0f}%"
    if verdict.memory_slope_per_min is not None and verdict.memory_slope_per_min >= 0.05:
        text += f" rising {verdict.memory_slope_per_min:.1f}%/min"
    return text


def action_line(report: Any, action: Action) -> str:
    """One action in words: who, what became of it, and why, with the evidence that was captured."""
    facts: Mapping[str, Facts] = {f.instance.instance_id: f for f in report.facts}
    verdicts: Mapping[str, Verdict] = {v.instance_id: v for v in report.verdicts}
    outcome = next((o for o in report.outcomes if o.action.instance_id == action.instance_id), None)
    who = describe_instance(facts.get(action.instance_id), action.instance_id)
    parts = [action.reason.split("; corroborated by")[0]]
    status = facts[action.instance_id].status if action.instance_id in facts else None
    if status is not None:
        parts.append(f"status checks {status.label()}")
    memory = memory_phrase(verdicts.get(action.instance_id))
    if memory:
        parts.append(memory)
    evidence = report.evidence.get(action.instance_id) or {}
    if evidence.get("console_summary"):
        parts.append(f"console: {evidence['console_summary']}")
    if outcome is None:
        verb = f"{action.kind.value} planned"
    elif outcome.status is OutcomeStatus.DONE:
        verb = PAST[action.kind]
    elif outcome.status is OutcomeStatus.DRY_RUN:
        verb = f"would be {PAST[action.kind]} (dry run)"
    else:
        verb = f"{action.kind.value} {outcome.status.value} ({outcome.detail})"
    return f"{who} {verb}: {'; '.join(parts)}"


def action_lines(report: Any) -> dict[str, str]:
    return {a.instance_id: action_line(report, a) for a in report.plan.actions}


def compose(report: Any, decision: Decision) -> tuple[str, str] | None:
    """(subject, body) for what is new, what persists past its reminder, and what ended."""
    if not decision.anything:
        return None
    lines: list[str] = [item.text for item in decision.new]
    if decision.reminders:
        lines.append("")
        lines.append("still so:")
        lines.extend(f"- {item.text}" for item in decision.reminders)
    if decision.ended:
        lines.append("")
        lines.append("over now:")
        lines.extend(f"- no longer: {told.text}" for told in decision.ended)
    done = sum(1 for o in report.outcomes if o.status is OutcomeStatus.DONE)
    subject = f"orch: {done} healed, {len(report.plan.blocked)} blocked of {len(report.facts)} instances"
    fleet_new = [i for i in decision.new if i.key.startswith(FLEET_PREFIX)]
    if any("circuit breaker" in i.text or "every probe" in i.text for i in fleet_new):
        subject = "orch: circuit breaker open, " + subject.removeprefix("orch: ")
    elif any(i.key.startswith("chronic:") for i in decision.new):
        subject = "orch: chronic memory leak, " + subject.removeprefix("orch: ")
    elif decision.ended and not decision.new:
        subject = "orch: back to normal, " + subject.removeprefix("orch: ")
    return subject[:SUBJECT_MAX], "\n".join(lines).strip() + f"\n\nsweep {report.sweep_id}"


def _utf8_cost(line: str) -> int:
    return len(line.encode()) + 1  # the line and its newline


def _json_cost(line: str) -> int:
    """Bytes of the line inside a JSON string (quotes, backslashes, control characters
    escaped) and of its escaped newline."""
    return len(json.dumps(line, ensure_ascii=False).encode()) - 2 + 2


def fit(subject: str, body: str, limit: int = BODY_MAX_BYTES, cost: Callable[[str], int] = _utf8_cost) -> tuple[str, str]:
    """A composed (subject, body) cut to what one Publish accepts, most important lines kept.

    One line per blocked instance passes 256 KB at about 1,800 of them: exactly when the
    breaker's notice matters most. The message's first lines (what was done) and its
    last (notes such as the breaker's, the sweep id) are kept; lines from the middle
    give way, replaced by one line saying how many and where to find them all.
    """
    lines = body.split("\n")
    if sum(cost(line) for line in lines) - 1 <= limit:
        return subject, body
    room = limit - 300  # the "left out" line
    tail: list[str] = []
    used = 0
    for line in reversed(lines):  # the end first: notes and the sweep id, up to half the room
        size = cost(line)
        if used + size > room // 2:
            break
        tail.insert(0, line)
        used += size
    head: list[str] = []
    for line in lines[: len(lines) - len(tail)]:
        size = cost(line)
        if used + size > room:
            break
        head.append(line)
        used += size
    left_out = len(lines) - len(head) - len(tail)
    marker = f"... {left_out} more lines left out to fit SNS's 256 KB limit; every instance is in `orch status` and the sweep record"
    return subject, "\n".join(head + [marker] + tail)


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """One Publish: the subject, the plain text, and the Chatbot notification if any."""

    subject: str
    text: str  # e-mail, SMS and every protocol without its own key
    chatbot: str | None = None  # the serialized custom notification, for https subscriptions

    def publish_args(self) -> dict[str, str]:
        if self.chatbot is None:
            return {"Subject": self.subject, "Message": self.text}
        message = json.dumps({"default": self.text, "https": self.chatbot}, ensure_ascii=False)
        return {"Subject": self.subject, "Message": message, "MessageStructure": "json"}


def sns_message(subject: str, body: str, chatbot: Mapping[str, Any] | None = None, limit: int = BODY_MAX_BYTES) -> SnsMessage:
    """The composed news fitted to one Publish: with a Chatbot notification the 256 KB
    hold the whole JSON object, so the text gives up what the notification and the
    escaping take (the notification itself is kept short: ``alert_formats``)."""
    if chatbot is None:
        return SnsMessage(*fit(subject, body, limit))
    chat = json.dumps(chatbot, ensure_ascii=False, separators=(",", ":"))
    frame = len(SnsMessage(subject, "", chat).publish_args()["Message"].encode())
    fitted_subject, text = fit(subject, body, limit - frame, cost=_json_cost)
    return SnsMessage(fitted_subject, text, chat)


def publish(sns: Any, topic_arn: str, message: SnsMessage) -> str | None:
    """Returns an error line instead of raising: a failed alert must not undo a sweep's record."""
    try:
        sns.publish(TopicArn=topic_arn, **message.publish_args())
    except AWS_CALL_ERRORS as exc:
        return describe_aws_error(exc, "sns:Publish")
    return None
