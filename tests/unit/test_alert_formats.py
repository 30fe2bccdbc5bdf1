"""Each webhook format as the receiver documents it, table-driven over the news of a sweep."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from orchestrator.alerting import formats as alert_formats
from orchestrator.alerting.formats import AlertDocument, Condition
from orchestrator.alerting.news import Item
from orchestrator.alerting.webhook import payloads_for
from orchestrator.config import ConfigError, load_settings

AT = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
SCOPE = "123456789012/us-east-1/vpc-1"
BREAKER = Item("fleet:breaker", "too many unhealthy: 5 of 8 unreachable; circuit breaker open", lasting=True)
NETWORK = Item("fleet:network-fault", "3 of 4 instances unreachable in availability zone us-east-1a", lasting=True)
QUARANTINE = Item("quarantine:i-0abc", "i-0abc quarantined: 4 actions in 6 h", lasting=True, digest="d1")
ACTION = Item("action:i-0def:reboot", "i-0def (crawler-3) rebooted: SSH banner timeout <5 s> & more", lasting=False)
WOULD = Item("would:i-0def:reboot", "i-0def would be rebooted (dry run)", lasting=True)


def doc(new=(), reminders=(), ended=(), subject="orch: 1 healed, 0 blocked of 8 instances", body="line", dry_run=False):
    return AlertDocument(subject, body, "sweep123", AT, SCOPE, dry_run, tuple(new), tuple(reminders), tuple(ended), {"instances": 8})


# -- PagerDuty Events API v2 ----------------------------------------------------------

@pytest.mark.parametrize(
    ("news", "expected"),
    [
        # (new, ended) -> [(event_action, condition key, severity)]
        (([BREAKER], []), [("trigger", "fleet:breaker", "critical")]),
        (([NETWORK], []), [("trigger", "fleet:network-fault", "error")]),
        (([QUARANTINE], []), [("trigger", "quarantine:i-0abc", "warning")]),
        (([ACTION], []), []),  # an action taken is an event: Slack, SNS and JSON say it, nobody is paged
        (([WOULD], []), []),  # a dry run's plan pages nobody
        (([], [Condition("fleet:breaker", "breaker open")]), [("resolve", "fleet:breaker", None)]),
        (([ACTION, BREAKER], [Condition("fleet:prober", "x")]), [("trigger", "fleet:breaker", "critical"), ("resolve", "fleet:prober", None)]),
    ],
)
def test_pagerduty_triggers_conditions_and_resolves_what_ended(news, expected):
    new, ended = news
    events = alert_formats.pagerduty_events(doc(new=new, ended=ended), "R" * 32)
    got = [(e["event_action"], e["dedup_key"].rsplit("/", 1)[1], e.get("payload", {}).get("severity")) for e in events]
    assert got == expected
    for event in events:
        assert event["routing_key"] == "R" * 32
        assert event["dedup_key"] == f"orch/{SCOPE}/" + event["dedup_key"].rsplit("/", 1)[1]
        if event["event_action"] == "trigger":
            payload = event["payload"]
            assert set(payload) >= {"summary", "source", "severity"}  # the three the API requires
            assert payload["source"] == SCOPE and payload["timestamp"] == "2026-12-02T10:00:00Z"
            assert payload["severity"] in ("critical", "error", "warning", "info")
        else:
            assert "payload" not in event  # a resolve needs only routing_key, event_action, dedup_key


def test_pagerduty_dedup_key_is_the_same_for_the_trigger_a_change_and_the_resolve():
    changed = Item("fleet:breaker", "too many unhealthy: 7 of 8", lasting=True)
    keys = [
        alert_formats.pagerduty_events(doc(new=[BREAKER]), "k")[0]["dedup_key"],
        alert_formats.pagerduty_events(doc(new=[changed]), "k")[0]["dedup_key"],
        alert_formats.pagerduty_events(doc(ended=[Condition("fleet:breaker", "")]), "k")[0]["dedup_key"],
    ]
    assert len(set(keys)) == 1
    other_fleet = AlertDocument("s", "b", "x", AT, "123456789012/eu-west-1/vpc-2", False, (BREAKER,))
    assert alert_formats.pagerduty_events(other_fleet, "k")[0]["dedup_key"] != keys[0]


def test_pagerduty_limits_summary_and_dedup_key():
    long = Item("block:i-0abc:ladder", "x" * 5000, lasting=True)
    event = alert_formats.pagerduty_events(AlertDocument("s", "b", "x", AT, "s" * 400, False, (long,)), "k")[0]
    assert len(event["payload"]["summary"]) == alert_formats.PAGERDUTY_SUMMARY_MAX
    assert len(event["dedup_key"]) <= alert_formats.PAGERDUTY_DEDUP_MAX


# -- Slack incoming webhook -----------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "sections"),
    [
        ("one line", 1),
        ("\n".join(["x" * 100] * 29), 1),  # 2,929 characters: one section
        ("\n".join(["x" * 100] * 31), 2),  # past 3,000: two
        ("\n".join(["y" * 2999] * 60), 47),  # 60 sections would pass 50 blocks: cut, with a note
    ],
)
def test_slack_message_is_text_plus_blocks_within_slacks_limits(body, sections):
    message = alert_formats.slack_message(doc(body=body))
    assert set(message) == {"text", "blocks"}
    blocks = message["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "orch: 1 healed, 0 blocked of 8 instances"}}
    assert blocks[-1]["type"] == "context" and "sweep123" in blocks[-1]["elements"][0]["text"]
    body_blocks = [b for b in blocks if b["type"] == "section" and not b["text"]["text"].startswith("… ")]
    assert len(body_blocks) == sections
    assert len(blocks) <= alert_formats.SLACK_BLOCKS_MAX
    assert all(len(b["text"]["text"]) <= alert_formats.SLACK_SECTION_MAX for b in blocks if b["type"] == "section")
    assert len(message["text"]) <= alert_formats.SLACK_TEXT_MAX
    if len(body_blocks) < len(body.split("\n")) and sections == 47:
        assert blocks[-2]["text"]["text"].startswith("… 13 more part(s) left out")


def test_slack_escapes_its_control_characters():
    message = alert_formats.slack_message(doc(body=ACTION.text))
    text = message["blocks"][1]["text"]["text"]
    assert "&lt;5 s&gt; &amp; more" in text and "<5" not in text and "&lt;5" in message["text"]


def test_slack_header_is_cut_to_150_characters():
    message = alert_formats.slack_message(doc(subject="s" * 200))
    assert len(message["blocks"][0]["text"]["text"]) == 150


# -- orch's JSON document ---------------------------------------------------------------

def test_json_document_has_every_documented_field():
    message = alert_formats.json_message(doc(new=[ACTION, BREAKER], reminders=[QUARANTINE], ended=[Condition("fleet:prober", "p")]))
    assert json.loads(json.dumps(message)) == message
    assert message["schema"] == "orch.alert/1"
    assert message["at"] == "2026-12-02T10:00:00Z"
    assert [(i["key"], i["kind"]) for i in message["new"]] == [("action:i-0def:reboot", "event"), ("fleet:breaker", "condition")]
    assert message["reminders"][0]["key"] == "quarantine:i-0abc"
    assert message["ended"] == [{"key": "fleet:prober", "text": "p"}]
    assert set(message) == {"schema", "subject", "text", "sweep_id", "at", "scope", "dry_run", "new", "reminders", "ended", "counts"}


# -- configuration and format choice ----------------------------------------------------

def targets(raw: str):
    return load_settings(environ={"ORCH_NOTIFY_WEBHOOKS": raw}).notify.webhooks


def test_each_target_gets_its_own_format():
    (slack, pd, own) = targets(
        '[{"url": "https://hooks.example/services/T/B/x", "format": "slack"},'
        ' {"url": "https://events.example/v2/enqueue", "format": "pagerduty", "routing_key": "KEY"},'
        ' {"url": "http://127.0.0.1:8080/orch", "format": "json", "name": "ops bus"}]'
    )
    news = doc(new=[BREAKER])
    assert "blocks" in payloads_for(slack, news)[0]
    assert payloads_for(pd, news)[0]["routing_key"] == "KEY"
    assert payloads_for(own, news)[0]["schema"] == "orch.alert/1"
    assert (slack.label, pd.label, own.label) == ("slack https://hooks.example", "pagerduty https://events.example", "ops bus")
    assert "KEY" not in repr(pd) and "services" not in repr(slack)  # secrets stay out of reprs and logs


@pytest.mark.parametrize(
    ("raw", "message_has"),
    [
        ('[{"url": "ftp://x/y", "format": "slack"}]', "notify.webhooks.0.url: must be an http(s) URL"),
        ('[{"url": "https://x/y", "format": "teams"}]', "notify.webhooks.0.format"),
        ('[{"url": "https://x/y", "formt": "slack"}]', "formt: unknown setting; did you mean format?"),
        ('[{"url": "https://x/y", "format": "pagerduty"}]', "needs routing_key"),
        ('[{"url": "https://x/y", "format": "slack", "routing_key": "k"}]', "routing_key is for format = pagerduty"),
        ("not json", "ORCH_NOTIFY_WEBHOOKS is not JSON"),
    ],
)
def test_a_bad_target_is_one_line_that_never_shows_the_secret(raw, message_has):
    with pytest.raises(ConfigError) as caught:
        targets(raw)
    text = str(caught.value)
    assert message_has in text and "\n" not in text
    assert "x/y" not in text  # the URL's path is the secret of a Slack webhook


def test_a_misspelt_webhook_variable_gets_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean ORCH_NOTIFY_WEBHOOKS"):
        load_settings(environ={"ORCH_NOTIFY_WEBHOOK": "[]"})


def test_webhooks_from_a_toml_file(tmp_path):
    path = tmp_path / "orch.toml"
    path.write_text('[[notify.webhooks]]\nurl = "https://hooks.example/x"\nformat = "slack"\n')
    assert load_settings(path, environ={}).notify.webhooks[0].format == "slack"
    assert load_settings(environ={"ORCH_NOTIFY_WEBHOOKS": ""}).notify.webhooks == ()
