"""The news of one sweep as the documents webhook targets accept: pure, no I/O.

``AlertDocument`` is what was decided to tell (``alerts.decide``) with the words of
``notify.compose``; each format turns it into the JSON bodies to POST:

- ``slack``: an incoming-webhook message, ``text`` (the fallback notifications show)
  plus Block Kit ``blocks`` (a header, the lines, the sweep id);
- ``pagerduty``: Events API v2 events. Conditions that need a human (a fleet-wide
  stop, a quarantine, a chronic pattern, a block no rule will lift) *trigger* with a
  ``dedup_key`` stable per condition and scope, so a reminder or a change updates the
  same alert; a fleet-wide condition that ends is *resolved* with the same key. Events
  (an action taken) and dry-run plans are not paged: they are in Slack, SNS and JSON.
- ``json``: orch's own document (``SCHEMA``), every field documented in the README;
- ``chatbot_notification``: not a webhook but the SNS topic's ``https`` message, an AWS
  Chatbot (Amazon Q Developer in chat applications) custom notification: Chatbot delivers
  that schema, not plain text (see ``notify.SnsMessage``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.alerting.news import FLEET_PREFIX, Decision, Item
from orchestrator.jsonable import iso_utc
from orchestrator.model import BlockRule

SCHEMA = "orch.alert/1"
SLACK_HEADER_MAX = 150  # Block Kit: a header's plain_text is at most 150 characters
SLACK_SECTION_MAX = 3000  # a section's text is at most 3000 characters
SLACK_BLOCKS_MAX = 50  # a message has at most 50 blocks
SLACK_TEXT_MAX = 4000  # the fallback text: Slack truncates past 40,000; notifications show far less
PAGERDUTY_SUMMARY_MAX = 1024  # Events API v2: payload.summary is at most 1024 characters
PAGERDUTY_DEDUP_MAX = 255  # and dedup_key at most 255
NOT_PAGED_PREFIXES = ("action:", "would:")  # events and dry-run plans


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class AlertDocument:
    """Everything a target may say about one sweep's news."""

    subject: str
    body: str
    sweep_id: str
    at: datetime
    scope: str  # account/region/vpc: the lease scope, which tells fleets apart
    dry_run: bool
    new: tuple[Item, ...] = ()
    reminders: tuple[Item, ...] = ()
    ended: tuple[Condition, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


def document(
    subject: str, body: str, decision: Decision, sweep_id: str, at: datetime, scope: str, dry_run: bool, counts: dict[str, int]
) -> AlertDocument:
    ended = tuple(Condition(t.key, t.text) for t in decision.ended)
    return AlertDocument(subject, body, sweep_id, at, scope, dry_run, decision.new, decision.reminders, ended, dict(counts))


# -- json -----------------------------------------------------------------------------


def _item(item: Item) -> dict[str, Any]:
    return {"key": item.key, "text": item.text, "kind": "condition" if item.lasting else "event"}


def json_message(doc: AlertDocument) -> dict[str, Any]:
    """orch's own document: the README's "Alerts" section lists every field."""
    return {
        "schema": SCHEMA,
        "subject": doc.subject,
        "text": doc.body,
        "sweep_id": doc.sweep_id,
        "at": iso_utc(doc.at),
        "scope": doc.scope,
        "dry_run": doc.dry_run,
        "new": [_item(i) for i in doc.new],
        "reminders": [_item(i) for i in doc.reminders],
        "ended": [{"key": c.key, "text": c.text} for c in doc.ended],
        "counts": dict(doc.counts),
    }


# -- slack ----------------------------------------------------------------------------


ZWSP = "\u200b"  # zero-width space: invisible, and no chat markup reads across it
_FORMATTING = re.compile(r"([*_~`\[])")


def slack_escape(text: str) -> str:
    """Text for a chat's markup (Slack mrkdwn, the Chatbot description): shown as written, never as markup.

    Slack reads &, < and > as control characters (``<https://x|login>`` is a link,
    ``<!channel>`` pages everyone): they are escaped as Slack documents. Slack has no
    escape for its formatting marks, and the Chatbot description is markdown, where
    ``[login](https://...)`` is a live link whose target nobody sees: an instance's Name
    tag is anybody's text. So a zero-width space follows every ``*``, ``_``, ``~``, backtick
    and ``[``, and parts ``](``: no link can form, no mark pairs with another in Slack,
    and what a reader sees (and copies, less the invisible spaces) is the text itself.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _FORMATTING.sub(lambda m: m.group(1) + ZWSP, text).replace("](", "]" + ZWSP + "(")


def _chunks(lines: list[str], limit: int) -> list[str]:
    """Lines joined into texts of at most ``limit`` characters; a longer line is cut."""
    out: list[str] = []
    current = ""
    for line in lines:
        line = line if len(line) <= limit else line[: limit - 1] + "…"
        if current and len(current) + 1 + len(line) > limit:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out


def slack_message(doc: AlertDocument) -> dict[str, Any]:
    header = doc.subject if len(doc.subject) <= SLACK_HEADER_MAX else doc.subject[: SLACK_HEADER_MAX - 1] + "…"
    lines = [slack_escape(line) for line in doc.body.split("\n")]
    sections = _chunks(lines, SLACK_SECTION_MAX)
    room = SLACK_BLOCKS_MAX - 3  # the header, the context and a "left out" section
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in sections[:room]]
    if len(sections) > room:
        left = len(sections) - room
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"… {left} more part(s) left out: see `orch status`"}})
    context = f"sweep `{doc.sweep_id}` · {slack_escape(doc.scope)}" + (" · dry run" if doc.dry_run else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    fallback = slack_escape(f"{doc.subject}\n{doc.body}")
    return {"text": fallback if len(fallback) <= SLACK_TEXT_MAX else fallback[: SLACK_TEXT_MAX - 1] + "…", "blocks": blocks}


# -- pagerduty -------------------------------------------------------------------------

CRITICAL_FLEET = frozenset({f"{FLEET_PREFIX}{r.value}" for r in (BlockRule.BREAKER, BlockRule.PROBER, BlockRule.MEMORY_BREAKER)})


def dedup_key(scope: str, key: str) -> str:
    """Stable per condition and fleet: a reminder or change updates the alert, an end resolves it."""
    full = f"orch/{scope}/{key}"
    return full if len(full) <= PAGERDUTY_DEDUP_MAX else full[:PAGERDUTY_DEDUP_MAX]


def severity(key: str) -> str:
    if key in CRITICAL_FLEET:
        return "critical"
    if key.startswith(FLEET_PREFIX):
        return "error"
    return "warning"  # a quarantine, a chronic pattern, a block that needs a human


def paged(item: Item) -> bool:
    return item.lasting and not item.key.startswith(NOT_PAGED_PREFIXES)


def pagerduty_events(doc: AlertDocument, routing_key: str) -> list[dict[str, Any]]:
    """Trigger what began or changed, resolve what ended; reminders are not re-sent (PagerDuty keeps the alert open)."""
    events: list[dict[str, Any]] = []
    for item in doc.new:
        if not paged(item):
            continue
        summary = f"orch: {item.text}"
        events.append(
            {
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": dedup_key(doc.scope, item.key),
                "payload": {
                    "summary": summary if len(summary) <= PAGERDUTY_SUMMARY_MAX else summary[: PAGERDUTY_SUMMARY_MAX - 1] + "…",
                    "source": doc.scope,
                    "severity": severity(item.key),
                    "timestamp": iso_utc(doc.at),
                    "component": item.key.split(":", 2)[1] if item.key.count(":") >= 1 else item.key,
                    "group": doc.scope,
                    "class": item.key.split(":", 1)[0],
                    "custom_details": {"condition": item.key, "sweep_id": doc.sweep_id, "dry_run": doc.dry_run},
                },
            }
        )
    for condition in doc.ended:
        events.append({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(doc.scope, condition.key)})
    return events


# -- AWS Chatbot custom notification ---------------------------------------------------
#
# The event schema of "Custom notifications using Amazon Q Developer in chat applications"
# (docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html): ``version`` must be
# "1.0" and ``source`` "custom" (both required); ``id``, ``content`` (``textType``: only
# "client-markdown" is supported; ``title``, ``description``, ``nextSteps``, ``keywords``)
# and ``metadata`` (``threadId``, ``summary``, ``eventType``, ``relatedResources``,
# ``additionalContext``: string to string) are optional. The page documents no length
# limits; Chatbot posts to Slack, whose section text is at most 3000 characters, so the
# description is kept within that and the lists short: the chat message is a pointer,
# the e-mail and ``orch status`` have everything.

CHATBOT_DESCRIPTION_MAX = 3000
CHATBOT_TITLE_MAX = SLACK_HEADER_MAX
CHATBOT_LIST_MAX = 5  # nextSteps and keywords
CHATBOT_RESOURCES_MAX = 20
INSTANCE_KEY = re.compile(r"^(?:action|would|block|quarantine):(i-[0-9a-f]+)")


def _cut_lines(lines: list[str], limit: int, marker: str) -> str:
    """Whole lines up to ``limit`` characters, then one line saying how many were left out."""
    if len("\n".join(lines)) <= limit:
        return "\n".join(lines)
    kept: list[str] = []
    used = 0
    room = limit - len(marker.format(n=len(lines))) - 1
    for line in lines:
        if used + len(line) + 1 > room:
            break
        kept.append(line)
        used += len(line) + 1
    if not kept:  # one line longer than the whole room: cut it
        kept = [lines[0][: room - 1] + "…"]
    return "\n".join(kept + [marker.format(n=len(lines) - len(kept))])


def _news_keys(doc: AlertDocument) -> list[str]:
    return [i.key for i in doc.new] + [i.key for i in doc.reminders] + [c.key for c in doc.ended]


def chatbot_event_type(doc: AlertDocument) -> str:
    """What the message is mainly about, the most important news first: a fleet-wide stop
    opening, a chronic leak, a quarantine, a block needing a human, an action, a dry run;
    else reminders only, else conditions that ended."""
    new = [i.key for i in doc.new]
    for key in new:
        if key.startswith(FLEET_PREFIX):
            return f"orch-{key.removeprefix(FLEET_PREFIX)}-open"
    for prefix, name in (("chronic:", "chronic"), ("quarantine:", "quarantine"), ("block:", "block"), ("action:", "action"), ("would:", "dry-run")):
        if any(k.startswith(prefix) for k in new):
            return f"orch-{name}"
    if doc.reminders:
        return "orch-reminder"
    if len(doc.ended) == 1:
        return f"orch-{doc.ended[0].key.removeprefix(FLEET_PREFIX)}-closed"
    return "orch-back-to-normal"


def _next_steps(doc: AlertDocument) -> list[str]:
    steps: list[str] = []
    for item in doc.new:
        found = INSTANCE_KEY.match(item.key)
        instance = found.group(1) if found else ""
        if item.key.startswith("quarantine:"):
            steps.append(f"`orch explain {instance}`, then `orch release {instance}` to restart its ladder")
        elif item.key.startswith("block:"):
            steps.append(f"`orch explain {instance}`: why it is held back")
        elif item.key.startswith("action:"):
            steps.append(f"`orch history {instance}`: the action and its evidence")
        elif item.key.startswith("chronic:"):
            steps.append("`orch report`: what the leaking instances share")
    steps.append("`orch status`: the fleet now")
    unique = list(dict.fromkeys(steps))
    return unique[: CHATBOT_LIST_MAX - 1] + [unique[-1]] if len(unique) > CHATBOT_LIST_MAX else unique


def chatbot_notification(doc: AlertDocument) -> dict[str, Any]:
    """The news as an AWS Chatbot custom notification (the schema above).

    A message about exactly one condition is threaded by it (``threadId`` stable per
    fleet and condition), so the breaker's closing is a reply to its opening; a message
    with several pieces of news is not threaded, so none of them hides in an old thread.
    """
    title = doc.subject if len(doc.subject) <= CHATBOT_TITLE_MAX else doc.subject[: CHATBOT_TITLE_MAX - 1] + "…"
    lines = [slack_escape(line) for line in doc.body.split("\n")]
    description = _cut_lines(lines, CHATBOT_DESCRIPTION_MAX, "… {n} more line(s) left out: see `orch status`")
    resources = sorted({m.group(1) for k in _news_keys(doc) if (m := INSTANCE_KEY.match(k))})
    keywords = list(dict.fromkeys(["orch", *(k.split(":", 1)[0] for k in _news_keys(doc))]))
    if doc.dry_run:
        keywords.insert(1, "dry-run")
    metadata: dict[str, Any] = {
        "summary": title,
        "eventType": chatbot_event_type(doc),
        "additionalContext": {
            "sweepId": doc.sweep_id,
            "scope": doc.scope,
            "dryRun": "true" if doc.dry_run else "false",
            **{k: str(v) for k, v in sorted(doc.counts.items())},
        },
    }
    keys = set(_news_keys(doc))
    if len(keys) == 1:
        metadata["threadId"] = dedup_key(doc.scope, keys.pop())
    if resources:
        metadata["relatedResources"] = resources[:CHATBOT_RESOURCES_MAX]
    return {
        "version": "1.0",
        "source": "custom",
        "id": doc.sweep_id,
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "nextSteps": _next_steps(doc),
            "keywords": keywords[:CHATBOT_LIST_MAX],
        },
        "metadata": metadata,
    }
