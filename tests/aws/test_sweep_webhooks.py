"""A sweep whose webhook fails: SNS is still told, the actions still recorded, the failure said."""

from __future__ import annotations

from orchestrator.alerting.webhook import send_all
from orchestrator.cli.common import Exit
from orchestrator.cli.sweep_cmds import heal_exit
from orchestrator.config import Settings
from orchestrator.model import ProbeOutcome
from orchestrator.sweep.pipeline import SweepDeps, sweep
from tests.aws.conftest import launch
from tests.builders import ScriptedProber
from tests.webhook_server import webhook_server


def settings(topic: str | None, url: str, fmt: str = "slack") -> Settings:
    hook = {"url": url, "format": fmt, "name": "ops-slack"}
    if fmt == "pagerduty":
        hook["routing_key"] = "R0UTING"
    return Settings.model_validate(
        {
            "safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"},
            "notify": {"topic_arn": topic, "webhooks": [hook], "webhook_attempts": 3},
        }
    )


def no_sleep_sender(targets, doc, policy):
    return send_all(targets, doc, policy, sleep=lambda s: None)


def run(aws, store, prober, config):
    return sweep(config, SweepDeps(clients=aws, store=store, prober=prober, webhooks=no_sleep_sender))


def test_a_failing_webhook_loses_neither_the_sns_message_nor_the_action_records(aws, subnet, store, plan):
    topic = aws.client("sns").create_topic(Name="orch")["TopicArn"]
    ids = launch(aws, subnet, 4)
    with webhook_server([(500, {})]) as server:
        report = run(aws, store, ScriptedProber({ids[0]}), settings(topic, server.url))
        assert len(server.bodies) == 3  # every attempt reached it
        assert "blocks" in server.bodies[0]
    # SNS was told, once
    assert len(plan.reached_server("Publish")) == 1 and report.message is not None
    # the action ran and is recorded
    (record,) = store.list_actions(ids[0])
    assert record.status.value == "done" and record.action.value == "reboot"
    # the failure is in the report, the sweep record in the store, and the exit code
    (delivery,) = report.deliveries
    assert (delivery.target, delivery.delivered, delivery.attempts) == ("ops-slack", False, 3)
    assert "HTTP 500" in delivery.error and "SECRET-PATH" not in delivery.error
    assert any(n.startswith("webhook ops-slack not delivered: HTTP 500") for n in report.notes)
    (stored,) = store.list_sweeps(1)
    assert stored.summary["notified"]["webhooks"] == [delivery.as_dict()]
    assert heal_exit(report) is Exit.UNHEALTHY
    # SNS took the news: the next sweep does not repeat it (no crying wolf while a webhook is broken)
    with webhook_server([(200, {})]) as server:
        second = run(aws, store, ScriptedProber({ids[0]}), settings(topic, server.url))
        assert server.bodies == []
    assert second.message is None and len(plan.reached_server("Publish")) == 1


def test_a_webhook_that_takes_the_news_is_recorded_and_exit_stays_zero(aws, subnet, store, plan):
    ids = launch(aws, subnet, 4)
    with webhook_server([(500, {}), (200, {})]) as server:
        report = run(aws, store, ScriptedProber({ids[1]}), settings(None, server.url, "json"))
        (body,) = server.bodies[1:]
    assert body["schema"] == "orch.alert/1" and body["sweep_id"] == report.sweep_id
    assert [i["key"] for i in body["new"]] == [f"action:{ids[1]}:reboot"]
    assert report.deliveries[0].delivered and report.deliveries[0].attempts == 2
    assert heal_exit(report) is Exit.OK
    assert plan.reached_server("Publish") == []


def test_webhook_only_and_it_fails_tells_the_condition_again_next_sweep(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    down = ScriptedProber(set(ids[:3]), ProbeOutcome.CONNECT_TIMEOUT)  # the breaker opens and stays open
    with webhook_server([(503, {})]) as server:
        first = run(aws, store, down, settings(None, server.url, "json"))
    assert not first.deliveries[0].delivered
    assert "no webhook took the news: told again next sweep" in first.notes
    with webhook_server([(200, {})]) as server:
        run(aws, store, down, settings(None, server.url, "json"))
        (body,) = server.bodies
    assert [i["key"] for i in body["new"]] == ["fleet:breaker"]  # not lost: told as new once it could be


def test_pagerduty_pages_the_breaker_and_resolves_it_when_it_closes(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    with webhook_server([(202, {})]) as server:
        config = settings(None, server.url, "pagerduty")
        run(aws, store, ScriptedProber(set(ids[:3]), ProbeOutcome.CONNECT_TIMEOUT), config)  # 3 of 4 down: breaker open (limit 50%)
        run(aws, store, ScriptedProber(set()), config)  # all answer: the breaker closed
        actions = [(b["event_action"], b["dedup_key"].rsplit("/", 1)[1]) for b in server.bodies]
    assert actions == [("trigger", "fleet:breaker"), ("resolve", "fleet:breaker")]
    assert server.bodies[0]["dedup_key"] == server.bodies[1]["dedup_key"]
    assert server.bodies[0]["payload"]["severity"] == "critical"
