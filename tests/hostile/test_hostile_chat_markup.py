"""A Name tag written to be markup (issue 20, case 8): chats show it as text, never as a link or formatting."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from orchestrator.alerting import formats
from orchestrator.alerting.news import AlertState, Decision, Item

LINK = re.compile(r"\[[^\]\n]*\]\(")  # markdown's [text]( : the start of a live link
SLACK_LINK = re.compile(r"<[^>\n]*>")  # Slack's <url|text>, <!channel>

HOSTILE = [
    pytest.param("[login](https://evil.example/reset)", id="markdown-link"),
    pytest.param("![x](https://evil.example/pixel.png)", id="markdown-image"),
    pytest.param("<https://evil.example|login>", id="slack-link"),
    pytest.param("<!channel> wake up", id="slack-channel-ping"),
    pytest.param("*URGENT* _rotate_ ~keys~ `now`", id="formatting"),
    pytest.param("[login]\n(https://evil.example)", id="link-across-a-line"),
]


def document(name: str) -> formats.AlertDocument:
    text = f"i-0123456789abcdef0 ({name}) rebooted: ssh banner timeout"
    item = Item(key="action:i-0123456789abcdef0:reboot", text=text, lasting=False)
    return formats.document(
        "orch: 1 healed, 0 blocked of 4 instances", text, Decision(new=(item,), reminders=(), ended=(), state=AlertState()), "abc123", datetime(2026, 1, 1, tzinfo=timezone.utc),
        "-/us-east-1/*", False, {"instances": 4},
    )


def chat_texts(doc: formats.AlertDocument) -> list[str]:
    slack = formats.slack_message(doc)
    texts = [slack["text"]] + [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    texts.append(formats.chatbot_notification(doc)["content"]["description"])
    return texts


@pytest.mark.parametrize("name", HOSTILE)
def test_case_8_a_name_tag_reaches_chat_as_text_not_markup(name):
    for text in chat_texts(document(name)):
        assert not LINK.search(text), text
        assert not SLACK_LINK.search(text), text
        assert "*URGENT*" not in text and "_rotate_" not in text and "`now`" not in text
        # what a person reads is the name itself, once the invisible spaces are gone
        shown = text.replace(formats.ZWSP, "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        assert name.split("\n")[0] in shown


def test_case_8_plain_names_are_left_as_they_are():
    (slack_text, *_, description) = chat_texts(document("web-1 prod"))
    assert "(web-1 prod)" in slack_text and "(web-1 prod)" in description
