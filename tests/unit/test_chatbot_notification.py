"""The SNS topic's Chatbot message: AWS's documented custom-notification schema, the
e-mail text unchanged beside it, and the whole within one Publish.

The schema is that of "Custom notifications using Amazon Q Developer in chat applications"
(docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html); the Publish rules
(``MessageStructure=json``: a JSON object with a top-level ``default`` string, other keys
naming protocols; 256 KB) are the SNS API reference's.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from orchestrator.alerting import formats as alert_formats
from orchestrator.alerting import notify
from orchestrator.alerting.formats import AlertDocument, Condition
from orchestrator.alerting.news import Item
from orchestrator.config import Settings
from tests.chatbot_schema import documented_shape_problems

AT = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
SCOPE = "123456789012/us-east-1/vpc-1"
ACTION = Item("action:i-0def:reboot", "i-0def (crawler-3) rebooted: SSH banner timeout <5 s> & more", lasting=False)
BLOCK = Item("block:i-0aaa:ladder", "i-0aaa not acted on: no rung left: a human must look", lasting=True)
BREAKER = Item("fleet:breaker", "too many unhealthy: 5 of 8 unreachable; circuit breaker open", lasting=True)
QUARANTINE = Item("quarantine:i-0abc", "i-0abc quarantined: 4 actions in 6 h", lasting=True, digest="d1")
CHRONIC = Item("chronic:ami=ami-1,asg=crawlers", "chronic memory leak on 7 of 8 instances alike", lasting=True, digest="d2")
WOULD = Item("would:i-0def:reboot", "i-0def would be rebooted (dry run)", lasting=True)

def doc(new=(), reminders=(), ended=(), subject="orch: 1 healed, 0 blocked of 8 instances", body=None, dry_run=False) -> AlertDocument:
    lines = [i.text for i in new] + [f"- {i.text}" for i in reminders] + [f"- no longer: {c.text}" for c in ended]
    text = body if body is not None else "\n".join(lines) + "\n\nsweep sweep123"
    counts = {"instances": 8, "healed": 1, "blocked": 0}
    return AlertDocument(subject, text, "sweep123", AT, SCOPE, dry_run, tuple(new), tuple(reminders), tuple(ended), counts)


ENDED_BREAKER = Condition("fleet:breaker", BREAKER.text)


@pytest.mark.parametrize(
    ("news", "event_type", "resources", "threaded", "step"),
    [
        # (new, reminders, ended) -> eventType, relatedResources, threadId set, a next step that must be there
        (([ACTION], [], []), "orch-action", ["i-0def"], True, "`orch history i-0def`"),
        (([BLOCK], [], []), "orch-block", ["i-0aaa"], True, "`orch explain i-0aaa`"),
        (([BREAKER], [], []), "orch-breaker-open", [], True, "`orch status`"),
        (([], [], [ENDED_BREAKER]), "orch-breaker-closed", [], True, "`orch status`"),
        (([QUARANTINE], [], []), "orch-quarantine", ["i-0abc"], True, "`orch release i-0abc`"),
        (([CHRONIC], [], []), "orch-chronic", [], True, "`orch report`"),
        (([WOULD], [], []), "orch-dry-run", ["i-0def"], True, "`orch status`"),
        (([], [QUARANTINE], []), "orch-reminder", ["i-0abc"], True, "`orch status`"),
        # the breaker outranks the action in the same message; two pieces of news are not threaded
        (([ACTION, BREAKER], [], []), "orch-breaker-open", ["i-0def"], False, "`orch history i-0def`"),
        (([], [], [ENDED_BREAKER, Condition("fleet:prober", "every probe failed")]), "orch-back-to-normal", [], False, "`orch status`"),
    ],
)
def test_each_kind_of_news_is_a_documented_custom_notification(news, event_type, resources, threaded, step):
    new, reminders, ended = news
    alert = doc(new, reminders, ended)
    got = alert_formats.chatbot_notification(alert)
    assert documented_shape_problems(got) == []
    assert json.loads(json.dumps(got)) == got  # plain JSON all the way down
    content, metadata = got["content"], got["metadata"]
    assert content["textType"] == "client-markdown" and content["title"] == alert.subject
    for item in [*new, *reminders]:  # every piece of news is in the chat message, escaped for Slack
        assert alert_formats.slack_escape(item.text) in content["description"]
    assert content["description"].endswith("sweep sweep123")
    assert metadata["eventType"] == event_type and re.fullmatch(r"[a-z0-9-]+", event_type)
    assert metadata.get("relatedResources", []) == resources
    assert ("threadId" in metadata) is threaded
    assert step in " ".join(content["nextSteps"]) and content["nextSteps"][-1] == "`orch status`: the fleet now"
    assert metadata["additionalContext"] == {
        "sweepId": "sweep123",
        "scope": SCOPE,
        "dryRun": "false",
        "instances": "8",
        "healed": "1",
        "blocked": "0",
    }


def test_a_conditions_opening_and_closing_share_one_thread_per_fleet():
    opened = alert_formats.chatbot_notification(doc([BREAKER]))["metadata"]["threadId"]
    reminded = alert_formats.chatbot_notification(doc([], [BREAKER]))["metadata"]["threadId"]
    closed = alert_formats.chatbot_notification(doc([], [], [ENDED_BREAKER]))["metadata"]["threadId"]
    assert opened == reminded == closed
    other = AlertDocument("s", "b", "x", AT, "123456789012/eu-west-1/vpc-2", False, (BREAKER,))
    assert alert_formats.chatbot_notification(other)["metadata"]["threadId"] != opened
    quarantine = alert_formats.chatbot_notification(doc([QUARANTINE]))["metadata"]["threadId"]
    assert quarantine != opened


def test_a_dry_run_says_so_in_keywords_and_context():
    got = alert_formats.chatbot_notification(doc([WOULD], dry_run=True))
    assert got["content"]["keywords"][:2] == ["orch", "dry-run"]
    assert got["metadata"]["additionalContext"]["dryRun"] == "true"


def test_thousands_of_blocks_keep_the_chat_message_short_and_say_what_was_left_out():
    blocks = [Item(f"block:i-{n:017x}:ladder", f"i-{n:017x} not acted on: no rung left", lasting=True) for n in range(3000)]
    alert = doc(blocks, subject="s" * 300)
    got = alert_formats.chatbot_notification(alert)
    assert documented_shape_problems(got) == []
    content = got["content"]
    assert len(content["description"]) <= alert_formats.CHATBOT_DESCRIPTION_MAX
    assert re.search(r"… \d+ more line\(s\) left out: see `orch status`$", content["description"])
    assert content["description"].startswith(blocks[0].text)
    assert len(content["title"]) == alert_formats.CHATBOT_TITLE_MAX and content["title"].endswith("…")
    assert len(content["nextSteps"]) <= alert_formats.CHATBOT_LIST_MAX and content["nextSteps"][-1].startswith("`orch status`")
    assert len(content["keywords"]) <= alert_formats.CHATBOT_LIST_MAX
    assert len(got["metadata"]["relatedResources"]) == alert_formats.CHATBOT_RESOURCES_MAX
    assert len(json.dumps(got).encode()) < 16_000  # a pointer to the e-mail, not a second copy of it


def test_one_line_longer_than_slack_takes_is_cut():
    got = alert_formats.chatbot_notification(doc([ACTION], body="x" * 10_000))
    assert len(got["content"]["description"]) <= alert_formats.CHATBOT_DESCRIPTION_MAX


# -- the SNS Publish -------------------------------------------------------------------


def test_with_chatbot_the_publish_is_json_with_the_plain_text_as_default():
    alert = doc([BREAKER])
    chat = alert_formats.chatbot_notification(alert)
    args = notify.sns_message(alert.subject, alert.body, chat).publish_args()
    assert args["MessageStructure"] == "json" and args["Subject"] == alert.subject
    message = json.loads(args["Message"])
    assert set(message) == {"default", "https"}  # e-mail, SMS, SQS, Lambda: default; Chatbot subscribes over https
    assert message["default"] == alert.body  # what e-mail showed before, unchanged
    assert json.loads(message["https"]) == chat


def test_without_chatbot_the_publish_is_the_plain_text_as_before():
    args = notify.sns_message("subject", "body\nline").publish_args()
    assert args == {"Subject": "subject", "Message": "body\nline"}


def test_chatbot_is_on_unless_switched_off():
    assert Settings().notify.chatbot is True
    assert Settings.model_validate({"notify": {"chatbot": False}}).notify.chatbot is False


@pytest.mark.parametrize("line", ["plain ascii line", 'quotes " and \\ backslashes\tand tabs', "ünïcödé ✓ 漢字", "\x01\x02 control"])
def test_a_huge_message_fits_one_publish_with_the_notification_and_the_escaping(line):
    body = "\n".join(f"{n} {line}" for n in range(20_000)) + "\n\nsweep sweep123"
    assert len(body.encode()) > notify.PUBLISH_MAX_BYTES
    alert = doc([BLOCK], body=body)
    message = notify.sns_message(alert.subject, alert.body, alert_formats.chatbot_notification(alert))
    args = message.publish_args()
    assert len(args["Message"].encode()) <= notify.BODY_MAX_BYTES < notify.PUBLISH_MAX_BYTES
    decoded = json.loads(args["Message"])
    assert decoded["default"] == message.text and message.text.endswith("sweep sweep123")
    assert "left out to fit SNS's 256 KB limit" in message.text
    assert len(args["Message"].encode()) > notify.BODY_MAX_BYTES - 4_000  # the room is used, not thrown away
    assert documented_shape_problems(json.loads(decoded["https"])) == []


def test_a_message_that_fits_is_left_alone_with_chatbot_too():
    alert = doc([ACTION, BREAKER])
    message = notify.sns_message(alert.subject, alert.body, alert_formats.chatbot_notification(alert))
    assert message.text == alert.body and message.subject == alert.subject
