"""The served sandbox's schedule, piece by piece: the stack's numbers, the slots, the event, the line, the failures.

The whole of it (a leaking fleet healed on the schedule) is tests/e2e/test_sandbox_schedule.py.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from lambdas.event import parse_event
from orchestrator.cli import sandbox_cmd
from orchestrator.config import load_settings
from orchestrator.sandbox import schedule
from orchestrator.sandbox.living import Driver, Every
from tests.unit.test_cfn_template import TEMPLATE, _resolve, one, parameters_with

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
EXPORTED = {  # what orchestrator.sandbox.demo.exports gives for a sandbox (values as a served one has them)
    "AWS_ENDPOINT_URL": "http://127.0.0.1:5123", "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    "ORCH_PROBE_PORT": "2222", "ORCH_PROBE_RETRY_WINDOW": "3.0", "ORCH_PROBE_BANNER_TIMEOUT": "2.0", "ORCH_PROBE_CONNECT_TIMEOUT": "1.0",
    "ORCH_SAFETY_LAUNCH_GRACE_MINUTES": "0", "ORCH_SAFETY_DEBOUNCE_SECONDS": "3", "ORCH_STATE": "/tmp/orch-sandbox-x/state.db",
    "ORCH_EVIDENCE_BUCKET": "orch-sandbox-evidence", "ORCH_NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:orch-sandbox",
    "ORCH_NOTIFY_WEBHOOKS": "[]",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def test_the_schedule_and_the_deadline_are_the_stacks_defaults(template):
    parameters = template["Parameters"]
    assert schedule.DEFAULT_SCHEDULE_MINUTES == sandbox_cmd.DEFAULT_SCHEDULE_MINUTES == parameters["ScheduleMinutes"]["Default"]
    assert schedule.TIMEOUT_SECONDS == parameters["TimeoutSeconds"]["Default"]
    assert schedule.SELECTOR == (parameters["SelectorKey"]["Default"], parameters["SelectorValue"]["Default"])


def test_the_functions_environment_is_the_stacks_for_a_heal_stack_over_the_sandbox(template):
    """Every variable the stack sets, with the stack's value for these parameters; the sandbox differs only in
    its resources (a SQLite store where a stack has its table, its own topic and bucket) and adds the timings
    it shortens for every orch in it."""
    mine = schedule.function_environment(EXPORTED, "vpc-0sandbox", 5)
    parameters = parameters_with(template, Mode="heal", VpcId="vpc-0sandbox", ProbePort="2222", LaunchGraceMinutes="0",
                                 NotifyWebhooks="[]", StateTable="orch-sandbox-StateTable", Topic="arn:aws:sns:...:orch-sandbox-Topic",
                                 EvidenceBucket="orch-sandbox-evidencebucket", **{"AWS::StackName": schedule.STACK})
    variables = one(template, "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"]
    stack = {name: _resolve(template, value, parameters) for name, value in variables.items()}
    assert set(stack) <= set(mine)
    differ = {name for name in stack if mine[name] != stack[name]}
    assert differ == {"ORCH_STATE", "ORCH_NOTIFY_TOPIC_ARN", "ORCH_EVIDENCE_BUCKET"}, {n: (mine[n], stack[n]) for n in differ}
    assert {n for n in set(mine) - set(stack) if n.startswith("ORCH_")} == {
        "ORCH_PROBE_RETRY_WINDOW", "ORCH_PROBE_BANNER_TIMEOUT", "ORCH_PROBE_CONNECT_TIMEOUT", "ORCH_SAFETY_DEBOUNCE_SECONDS"}
    settings = load_settings(environ=mine)
    assert settings.dry_run is False and settings.vpc_id == "vpc-0sandbox" and settings.stack == schedule.STACK
    # The function is told its cadence in its own clock: at --time-scale 10 five simulated minutes are 30 s (the floor is 1).
    assert schedule.function_environment(EXPORTED, "vpc-0", 30, time_scale=10)["ORCH_SWEEP_INTERVAL_MINUTES"] == "3"
    assert schedule.function_environment(EXPORTED, "vpc-0", 5, time_scale=10)["ORCH_SWEEP_INTERVAL_MINUTES"] == "1"


def test_the_event_is_the_one_eventbridge_sends_and_the_handler_takes_it_as_the_schedule():
    event = schedule.scheduled_event(T0, "us-east-1", "123456789012")
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event" and event["time"] == "2026-01-01T12:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/orch-sandbox-ScheduleRule"]
    assert parse_event(event).trigger == "schedule"


def test_the_first_slot_is_one_interval_after_start_and_missed_slots_are_skipped_not_made_up():
    every = Every(5, job=lambda: None, due=T0 + timedelta(minutes=5))
    assert not every.take(T0 + timedelta(minutes=4, seconds=59))
    assert every.take(T0 + timedelta(minutes=5)) and every.due == T0 + timedelta(minutes=10)
    assert not every.take(T0 + timedelta(minutes=9))
    assert every.take(T0 + timedelta(minutes=23)) and every.due == T0 + timedelta(minutes=25)  # 10, 15, 20 missed: one run
    with pytest.raises(ValueError):
        Every(0, job=lambda: None)


@dataclass
class Fleet:
    """What the driver needs of a sandbox, on a clock the test moves."""

    at: datetime = T0
    published: int = 0
    scale: float = 1.0
    order: list[str] = field(default_factory=list)

    def publish_due(self) -> list[object]:
        self.published += 1
        self.order.append("publish")
        return []

    def set_time_scale(self, scale: float) -> None:
        self.scale = scale

    def now(self) -> datetime:
        return self.at


def test_the_driver_runs_the_schedule_after_the_minutes_and_a_failing_job_does_not_stop_it():
    fleet = Fleet()
    errors: list[BaseException] = []
    runs: list[datetime] = []

    def job() -> None:
        fleet.order.append("sweep")
        runs.append(fleet.at)
        if len(runs) == 1:
            raise RuntimeError("moto went away")

    driver = Driver(fleet, on_error=errors.append, schedule=[Every(5, job)])
    for _ in range(12):
        fleet.at += timedelta(minutes=1)
        driver.tick()
    assert runs == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    assert [str(e) for e in errors] == ["moto went away"] and fleet.published == 12
    assert fleet.order[:6] == ["publish"] * 5 + ["sweep"]  # the sweep sees the minute just published


def test_at_time_scale_10_the_schedule_runs_ten_times_as_often_in_wall_time():
    """The slots are simulated minutes: the sandbox's clock runs K times faster, so do the sweeps."""
    from orchestrator.sandbox.clock import SandboxClock

    wall = [T0]
    clock = SandboxClock(wall=lambda: wall[0])
    runs: list[datetime] = []

    class Scaled(Fleet):
        def set_time_scale(self, scale: float) -> None:
            clock.set_scale(scale)

        def now(self) -> datetime:
            return clock.now()

    driver = Driver(Scaled(), scale=10, schedule=[Every(5, lambda: runs.append(wall[0]))])
    for _ in range(60):  # one wall minute, a tick a second
        wall[0] += timedelta(seconds=1)
        driver.tick()
    assert runs == [T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)]


def results(**given: Any) -> dict[str, Any]:
    return {"instances": 24, "verdicts": {"healthy": 22, "unreachable": 2}, "actions": [], "blocked": [], **given}


def test_the_line_says_what_the_sweep_did_by_name():
    names = {"i-1": "crawler-3", "i-2": "crawler-7"}
    acted = results(actions=[
        {"instance_id": "i-1", "action": "reboot", "reason": "SSH banner timeout after 2.0 s; corroborated by ...", "outcome": "done",
         "evidence": {"console_cause": "oom"}},
        {"instance_id": "i-2", "action": "stop-start", "reason": "SSH refused (rung 2)", "outcome": "failed", "evidence": None,
         "detail": "StopInstances: UnauthorizedOperation"},
    ], blocked=[{"instance_id": "i-9", "action": "reboot", "why": "...", "rule": "debounce"}])
    assert schedule.told(acted, names) == ("scheduled sweep, 24 instances (22 healthy, 2 unreachable): rebooted crawler-3 (out of memory); "
                                           "stop-start crawler-7 (SSH refused): failed, StopInstances: UnauthorizedOperation; "
                                           "1 held back (debounce)")
    assert schedule.told(results(verdicts={"healthy": 24}), names) == "scheduled sweep, 24 instances (24 healthy): nothing to do"
    skipped = {"skipped": "lease held by me until 2026-01-01T12:05:00Z", "actions": [], "blocked": [], "instances": 0}
    assert schedule.told(skipped, names) == ("scheduled sweep skipped: lease held by me until 2026-01-01T12:05:00Z; "
                                             "the next one tries again")


def test_a_failed_invocation_is_told_in_one_line_and_logged_as_the_function_logs_it():
    """The handler refuses before acting (here: no ORCH_STATE); the schedule says so and goes on."""
    said: list[str] = []
    log = io.StringIO()
    heal = schedule.ScheduledHeal({k: v for k, v in EXPORTED.items() if k != "ORCH_STATE"}, "us-east-1", "123456789012",
                                  "http://127.0.0.1:1", wall=lambda: T0, names=dict, say=said.append, log=log)
    assert heal() is None and heal.results == []
    assert said == ["12:00:00 scheduled sweep failed: ORCH_STATE is not set: the function needs its DynamoDB table "
                    "(ORCH_STATE=dynamodb://TABLE, which cfn/orchestrator.yaml sets); nothing was acted on"]
    assert json.loads(log.getvalue())["event"] == "state"


def test_the_context_counts_down_the_stacks_timeout_on_the_given_clock():
    now = [T0]
    context = schedule.LambdaContext("arn:aws:lambda:us-east-1:123456789012:function:f", T0 + timedelta(seconds=600), lambda: now[0])
    assert context.get_remaining_time_in_millis() == 600_000
    now[0] += timedelta(seconds=599, milliseconds=500)
    assert context.get_remaining_time_in_millis() == 500
    now[0] += timedelta(seconds=5)
    assert context.get_remaining_time_in_millis() == 0


def test_every_action_kind_has_its_words_in_the_line():
    from orchestrator.model import ActionKind
    from orchestrator.sandbox.schedule import DONE

    assert set(DONE) == set(ActionKind)
