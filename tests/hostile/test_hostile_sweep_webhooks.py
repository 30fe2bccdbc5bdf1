"""A sweep that acted, then met a hostile webhook (issue 20, cases 5 and 6).

The record of what was done and the lease release come before anything talks to the
outside world; what SNS took is remembered; the sweep returns a report, never a traceback.
"""

from __future__ import annotations

import pytest

from orchestrator.alerting.webhook import send_all
from orchestrator.cli.common import Exit
from orchestrator.cli.sweep_cmds import heal_exit
from orchestrator.config import Settings
from orchestrator.state import lease_scope
from orchestrator.sweep.pipeline import SweepDeps, sweep
from tests.aws.conftest import launch
from tests.builders import ScriptedProber
from tests.hostile import servers


def settings(topic: str | None, url: str, **notify: object) -> Settings:
    return Settings.model_validate(
        {
            "safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"},
            "notify": {"topic_arn": topic, "webhooks": [{"url": url, "format": "slack", "name": "ops"}], "webhook_attempts": 1, **notify},
        }
    )


def no_sleep(targets, doc, policy):
    return send_all(targets, doc, policy, sleep=lambda s: None)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(servers.sends(servers.SSHD_BANNER, read_first=False), id="sshd"),
        pytest.param(servers.sends(servers.GARBAGE_STATUS), id="garbage-status"),
        pytest.param(servers.sends(servers.MANY_HEADERS), id="101-headers"),
        pytest.param(servers.sends(servers.LONG_HEADER), id="64k-header"),
        pytest.param(servers.sends(servers.BAD_CHUNKED), id="bad-chunked"),
    ],
)
def test_case_5_a_webhook_that_does_not_speak_http_loses_nothing_the_sweep_did(aws, subnet, store, script):
    topic = aws.client("sns").create_topic(Name="orch")["TopicArn"]
    ids = launch(aws, subnet, 4)
    with servers.tcp_server(script) as url:
        first = sweep(settings(topic, url), SweepDeps(clients=aws, store=store, prober=ScriptedProber({ids[0]}), webhooks=no_sleep))
        # then 3 of 4 down: the breaker opens, a condition SNS is told once
        report = sweep(settings(topic, url), SweepDeps(clients=aws, store=store, prober=ScriptedProber(set(ids[1:])), webhooks=no_sleep))
    (record,) = store.list_actions(ids[0])
    assert record.status.value == "done" and first.deliveries and not first.deliveries[0].delivered
    (stored,) = store.list_sweeps(1)  # the sweep record, with what the webhook made of the news
    assert stored.sweep_id == report.sweep_id and stored.summary["notified"]["webhooks"][0]["delivered"] is False
    lease = store.get_lease(lease_scope("-", "us-east-1", None))
    assert lease is None or not lease.owner  # released
    assert store.get_alerts(lease_scope("-", "us-east-1", None)).records  # SNS took it: remembered, not repeated
    assert heal_exit(report) is Exit.UNHEALTHY
    assert "SECRET-PATH" not in str(report.summary())


def test_case_6_a_dripping_webhook_ends_and_is_reported(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    with servers.tcp_server(servers.drips(servers.DRIP_HEADERS, every=0.02)) as url:
        config = settings(None, url, webhook_timeout_seconds=0.5, webhook_total_seconds=0.5)
        report = sweep(config, SweepDeps(clients=aws, store=store, prober=ScriptedProber({ids[1]}), webhooks=no_sleep))
    (delivery,) = report.deliveries
    assert not delivery.delivered and "timeout" in delivery.error
    assert store.list_sweeps(1)[0].sweep_id == report.sweep_id


def test_case_5_the_record_is_written_and_the_lease_released_before_any_webhook_is_called(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    scope = lease_scope("-", "us-east-1", None)
    seen: dict[str, object] = {}

    def inspecting(targets, doc, policy):
        seen["sweeps"] = [s.sweep_id for s in store.list_sweeps(5)]
        seen["lease"] = store.get_lease(scope)
        seen["actions"] = [a.status.value for a in store.list_actions(ids[2])]
        raise RuntimeError("a sender that blows up")

    report = sweep(settings(None, "https://hooks.example/SECRET-PATH"), SweepDeps(clients=aws, store=store, prober=ScriptedProber({ids[2]}), webhooks=inspecting))
    assert seen["sweeps"] == [report.sweep_id]
    assert seen["lease"] is None or not seen["lease"].owner
    assert seen["actions"] == ["done"]
    assert any("could not be told (RuntimeError)" in n for n in report.notes)
