"""The Lambda handler in-process against a moto fleet, a DynamoDB store and a scripted prober."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import pytest
from botocore.exceptions import ClientError

from lambdas import heal
from orchestrator.aws import Clients
from orchestrator.config import ProbeSettings
from orchestrator.model import ProbeOutcome
from orchestrator.state import lease_scope
from orchestrator.state.dynamodb import DynamoStore, create_table
from tests.aws.conftest import REGION, launch
from tests.builders import ScriptedProber

MUTATIONS = {"ec2.RebootInstances", "ec2.StopInstances", "ec2.StartInstances", "autoscaling.SetInstanceHealth", "ec2.TerminateInstances"}
TABLE = "orch-state"

# What EventBridge delivers for a schedule rule (the documented example payload).
SCHEDULED_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2015-10-08T16:53:06Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/orch-ScheduleRule"],
    "detail": {},
}


class Context:
    """The part of the Lambda context the handler reads."""

    function_name = "orch-heal"
    aws_request_id = "req-1"

    def __init__(self, millis_left: int = 600_000) -> None:
        self.millis_left = millis_left

    def get_remaining_time_in_millis(self) -> int:
        return self.millis_left


@pytest.fixture
def table(aws: Clients) -> str:
    create_table(aws.client("dynamodb"), TABLE, wait_delay_s=0, wait_attempts=1)
    return TABLE


def environ(**extra: str) -> dict[str, str]:
    """What the template sets, with the sweep's launch grace off so fresh moto instances count."""
    env = {
        "ORCH_STATE": f"dynamodb://{TABLE}",
        "ORCH_SELECTOR": "orch:managed=true",
        "ORCH_DRY_RUN": "false",
        "ORCH_SAFETY_LAUNCH_GRACE_MINUTES": "0",
        "ORCH_SAFETY_MAX_UNHEALTHY": "50%",
    }
    env.update(extra)
    return env


def invoke(aws: Clients, event: Any, prober: ScriptedProber, env: dict[str, str] | None = None, millis_left: int = 600_000) -> Any:
    hooks = heal.Hooks(clients=lambda settings: aws, prober=prober, environ=env if env is not None else environ())
    return heal.handler(event, Context(millis_left), hooks)


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object (CloudWatch Logs reads them one per line)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_scheduled_event_reboots_the_hung_instance_and_logs_each_decision(aws, subnet, table, capsys):
    ids = launch(aws, subnet, 4)
    before = aws.counter.snapshot()
    summary = invoke(aws, SCHEDULED_EVENT, ScriptedProber({ids[0]}))

    assert summary["instances"] == 4 and summary["dry_run"] is False and summary["partial"] is False
    assert [(a["instance_id"], a["action"], a["outcome"]) for a in summary["actions"]] == [(ids[0], "reboot", "done")]
    assert aws.counter.snapshot().get("ec2.RebootInstances", 0) - before.get("ec2.RebootInstances", 0) == 1
    json.dumps(summary)  # Lambda serialises the return value
    (record,) = DynamoStore(aws.client("dynamodb"), TABLE).list_actions(ids[0])
    assert record.status.value == "done"

    lines = log_lines(capsys)
    actions = [line for line in lines if line.get("event") == "action"]
    assert [(line["instance_id"], line["action"], line["outcome"]) for line in actions] == [(ids[0], "reboot", "done")]
    assert actions[0]["reason"]
    (sweep_line,) = [line for line in lines if line.get("event") == "sweep"]
    assert sweep_line["trigger"] == "schedule" and sweep_line["actions"] == 1 and sweep_line["instances"] == 4
    (emf,) = [line for line in lines if "_aws" in line]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "orch" and directive["Dimensions"] == [["Selector"]]
    assert {m["Name"] for m in directive["Metrics"]} == {
        "Instances", "Unreachable", "Actions", "Blocked", "BreakerTripped", "Chronic", "Quarantined", "DurationSeconds", "ApiCalls"
    }
    assert (emf["Chronic"], emf["Quarantined"]) == (0, 0)
    assert emf["Selector"] == "orch:managed=true"
    assert (emf["Instances"], emf["Unreachable"], emf["Actions"], emf["Blocked"], emf["BreakerTripped"]) == (4, 1, 1, 0, 0)
    assert emf["ApiCalls"] == summary["api_calls_total"] > 0


def test_deployed_dry_run_plans_and_mutates_nothing(aws, subnet, table, capsys):
    ids = launch(aws, subnet, 4)
    before = aws.counter.snapshot()
    summary = invoke(aws, SCHEDULED_EVENT, ScriptedProber({ids[1]}), environ(ORCH_DRY_RUN="true"))
    assert summary["dry_run"] is True
    assert [(a["instance_id"], a["outcome"]) for a in summary["actions"]] == [(ids[1], "dry-run")]
    assert not MUTATIONS & set(_diff(aws, before))
    emf = [line for line in log_lines(capsys) if "_aws" in line][0]
    assert emf["Actions"] == 0 and emf["dry_run"] is True


def test_a_manual_invoke_can_ask_for_a_dry_run(aws, subnet, table):
    ids = launch(aws, subnet, 4)
    before = aws.counter.snapshot()
    summary = invoke(aws, {"orch": {"dry_run": True}}, ScriptedProber({ids[0]}))
    assert summary["dry_run"] is True and summary["actions"][0]["outcome"] == "dry-run"
    assert not MUTATIONS & set(_diff(aws, before))


def test_a_manual_invoke_can_scan(aws, subnet, table):
    ids = launch(aws, subnet, 3)
    before = aws.counter.snapshot()
    summary = invoke(aws, {"orch": {"mode": "scan"}}, ScriptedProber({ids[0]}))
    assert summary["mode"] == "scan" and summary["actions"] == [] and summary["verdicts"]["unreachable"] == 1
    assert not MUTATIONS & set(_diff(aws, before))


def test_a_manual_invoke_cannot_turn_healing_on(aws, subnet, table, capsys):
    ids = launch(aws, subnet, 4)
    prober = ScriptedProber({ids[0]})
    before = aws.counter.snapshot()
    with pytest.raises(heal.HandlerError, match="cannot override the deployed dry-run mode"):
        invoke(aws, {"orch": {"dry_run": False}}, prober, environ(ORCH_DRY_RUN="true"))
    assert aws.counter.snapshot() == before and prober.calls == []
    (line,) = log_lines(capsys)
    assert line["level"] == "error" and line["event"] == "invalid-event"


MALFORMED_EVENTS: list[tuple[Any, str]] = [
    ({}, "unrecognised event (keys: none)"),
    ("run please", "event is str, not a JSON object"),
    ({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}, "source: Input should be 'aws.events'"),
    ({"source": "aws.events", "detail-type": "Object Created"}, "detail-type: Input should be 'Scheduled Event'"),
    ({"orch": {"dry_run": True, "force": True}}, "orch.force: unknown key"),
    ({"orch": {"dry_run": "yes please"}}, "orch.dry_run: Input should be a valid boolean"),
    ({"orch": {"mode": "reboot-everything"}}, "orch.mode: Input should be 'heal' or 'scan'"),
    ({"orch": {}, "extra": 1}, "extra: unknown key"),
]

BAD_SETTINGS: list[tuple[dict[str, str], str]] = [
    ({"ORCH_PROBE_PORTT": "22"}, "ORCH_PROBE_PORTT: unknown setting; did you mean ORCH_PROBE_PORT?"),
    ({"ORCH_SAFETY_MAX_UNHEALTHY": "lots"}, "safety.max_unhealthy: must be a count like 5 or a percent like 20%"),
    ({"ORCH_DRY_RUN": "perhaps"}, "dry_run: Input should be a valid boolean"),
    ({"ORCH_STATE": "postgres://db"}, "unsupported state store 'postgres://db'"),
]


def test_a_malformed_event_fails_clearly_and_acts_on_nothing(aws, subnet, table, capsys):
    """One fleet with a hung instance that a valid event would reboot; each bad event must not."""
    ids = launch(aws, subnet, 2)
    prober = ScriptedProber({ids[0]})
    before = aws.counter.snapshot()
    for event, expected in MALFORMED_EVENTS:
        with pytest.raises(heal.HandlerError) as caught:
            invoke(aws, event, prober)
        message = str(caught.value)
        assert expected in message and "\n" not in message, (event, message)
        (line,) = log_lines(capsys)
        assert line == {"level": "error", "event": "invalid-event", "error": message}
    assert aws.counter.snapshot() == before and prober.calls == []


def test_a_bad_setting_fails_clearly_and_acts_on_nothing(aws, subnet, table, capsys):
    ids = launch(aws, subnet, 2)
    prober = ScriptedProber({ids[0]})
    before = aws.counter.snapshot()
    for env, expected in BAD_SETTINGS:
        with pytest.raises(heal.HandlerError) as caught:
            invoke(aws, SCHEDULED_EVENT, prober, environ(**env))
        assert expected in str(caught.value), (env, str(caught.value))
        (line,) = log_lines(capsys)
        assert line["level"] == "error" and line["event"] in ("invalid-settings", "state") and expected in line["error"]
    assert aws.counter.snapshot() == before and prober.calls == []


def test_little_time_left_makes_a_partial_sweep_with_no_new_action(aws, subnet, table, capsys):
    ids = launch(aws, subnet, 4)
    prober = ScriptedProber({ids[0]})
    before = aws.counter.snapshot()
    summary = invoke(aws, SCHEDULED_EVENT, prober, millis_left=10_000)
    assert summary["partial"] is True
    assert summary["actions"][0]["outcome"] == "skipped" and "deadline" in summary["actions"][0]["detail"]
    assert not MUTATIONS & set(_diff(aws, before))
    assert prober.calls[0].retry_window == 0  # the probe was fitted to the time left
    lines = log_lines(capsys)
    assert any(line.get("event") == "deadline" and "probe retry window cut" in line["note"] for line in lines)
    assert [line["level"] for line in lines if line.get("event") == "sweep"] == ["warning"]


def test_plenty_of_time_leaves_the_probe_settings_alone(aws, subnet, table):
    launch(aws, subnet, 2)
    prober = ScriptedProber(set())
    invoke(aws, SCHEDULED_EVENT, prober, millis_left=900_000)
    assert prober.calls[0].retry_window == ProbeSettings().retry_window


def test_a_held_lease_skips_the_sweep_without_failing(aws, subnet, table, capsys):
    launch(aws, subnet, 2)
    store = DynamoStore(aws.client("dynamodb"), TABLE)
    store.acquire_lease(lease_scope("-", REGION, None), "operator@laptop", timedelta(minutes=5), datetime.now(timezone.utc))
    prober = ScriptedProber(set())
    before = aws.counter.snapshot()
    result = invoke(aws, SCHEDULED_EVENT, prober)
    assert result["skipped"].startswith("lease held by operator@laptop until ")
    assert result["actions"] == [] and prober.calls == []
    assert not MUTATIONS & set(_diff(aws, before))
    assert [line["event"] for line in log_lines(capsys)] == ["lease-held"]


def test_an_unreadable_fact_aborts_the_sweep_and_fails_the_invocation(aws, subnet, table, capsys):
    ids = launch(aws, subnet, 3)

    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}}, "DescribeInstanceStatus")

    aws.ec2.meta.events.register("before-call.ec2.DescribeInstanceStatus", deny)
    before = aws.counter.snapshot()
    with pytest.raises(heal.HandlerError, match="sweep aborted before acting: access denied calling DescribeInstanceStatus"):
        invoke(aws, SCHEDULED_EVENT, ScriptedProber({ids[0]}))
    assert not MUTATIONS & set(_diff(aws, before))
    errors = [line for line in log_lines(capsys) if line["level"] == "error"]
    assert [line["event"] for line in errors] == ["sweep-aborted"]


def test_a_missing_state_table_fails_the_invocation_before_acting(aws, subnet, capsys):
    ids = launch(aws, subnet, 3)
    prober = ScriptedProber({ids[0]})
    before = aws.counter.snapshot()
    with pytest.raises(heal.HandlerError, match="state store: .*does not exist"):
        invoke(aws, SCHEDULED_EVENT, prober)
    assert not MUTATIONS & set(_diff(aws, before)) and prober.calls == []
    assert [line["event"] for line in log_lines(capsys)] == ["state"]


def test_every_probe_failing_trips_the_breaker_metric(aws, subnet, table, capsys):
    ids = launch(aws, subnet, 3)
    before = aws.counter.snapshot()
    summary = invoke(aws, SCHEDULED_EVENT, ScriptedProber(set(ids), ProbeOutcome.CONNECT_TIMEOUT))
    assert summary["actions"] == [] and len(summary["blocked"]) == 3
    assert not MUTATIONS & set(_diff(aws, before))
    lines = log_lines(capsys)
    assert len([line for line in lines if line.get("event") == "blocked"]) == 3
    emf = [line for line in lines if "_aws" in line][0]
    assert emf["BreakerTripped"] == 1 and emf["Blocked"] == 3 and emf["Actions"] == 0


def _diff(aws: Clients, before: Mapping[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in aws.counter.snapshot().items() if v - before.get(k, 0)}


def test_the_embedded_metrics_count_chronic_and_quarantined_instances():
    from orchestrator.sweep.pipeline import Mode, SweepReport

    report = SweepReport("s1", Mode.HEAL, False, datetime(2026, 1, 1, tzinfo=timezone.utc))
    summary = json.loads(json.dumps(report.summary(), default=str))
    summary["chronic"] = [{"instances": ["i-1", "i-2", "i-3"]}, {"instances": ["i-9"]}]
    summary["quarantined"] = {"i-7": "remediation failed"}
    record = heal.metrics_record(report, summary, {"orch:managed": "true"})
    assert (record["Chronic"], record["Quarantined"]) == (4, 1)
