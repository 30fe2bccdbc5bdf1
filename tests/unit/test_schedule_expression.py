"""Case 21 (issue 20): ScheduleMinutes=60 with a stack set must give an expression EventBridge accepts.

EventBridge's cron minutes field takes 0-59 with ``/`` increments (AWS: "Using cron and rate
expressions to schedule rules"); an increment of 60 is outside the field, so
``cron(17/60 * * * ? *)`` is refused. The template is resolved here for every interval
orch staggers and every offset it can choose.
"""

from __future__ import annotations

import re

import pytest

from orchestrator.deploy import stackset
from tests.unit.test_cfn_template import _resolve, one, parameters_with, template  # noqa: F401  (fixture)

STAGGERED = [m for m in range(2, 61) if 60 % m == 0]


def valid_eventbridge(expression: str) -> bool:
    """The schedule forms orch uses, checked against the documented field ranges."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes)\)", expression)
    if rate:
        return int(rate.group(1)) >= 1 and (rate.group(2) == "minute") == (rate.group(1) == "1")
    cron = re.fullmatch(r"cron\((\S+) \* \* \* \? \*\)", expression)
    if not cron:
        return False
    start, _, step = cron.group(1).partition("/")
    return start.isdigit() and 0 <= int(start) <= 59 and (not step or (step.isdigit() and 1 <= int(step) <= 59))


def test_case_21_hourly_with_a_stack_set_offset_is_a_valid_cron(template) -> None:  # noqa: F811
    rule = one(template, "AWS::Events::Rule")["Properties"]
    parameters = parameters_with(template, ScheduleMinutes="60", ScheduleOffsetMinutes="17")
    assert _resolve(template, rule["ScheduleExpression"], parameters) == "cron(17 * * * ? *)"


@pytest.mark.parametrize("minutes", STAGGERED)
def test_case_21_every_offset_orch_picks_gives_an_expression_eventbridge_accepts(template, minutes) -> None:  # noqa: F811
    rule = one(template, "AWS::Events::Rule")["Properties"]
    offsets = {stackset.schedule_offset("111111111111", "us-east-1", f"vpc-{n}", minutes) for n in range(300)}
    assert max(offsets) < minutes
    for offset in offsets:
        parameters = parameters_with(template, ScheduleMinutes=str(minutes), ScheduleOffsetMinutes=str(offset))
        expression = _resolve(template, rule["ScheduleExpression"], parameters)
        assert valid_eventbridge(expression), expression
        assert expression == stackset.schedule_expression(minutes, offset)  # the plan shows what the template builds


def test_the_checker_refuses_what_eventbridge_refuses() -> None:
    assert not valid_eventbridge("cron(17/60 * * * ? *)")
    assert not valid_eventbridge("rate(1 minutes)") and not valid_eventbridge("rate(5 minute)")
    assert valid_eventbridge("cron(3/5 * * * ? *)") and valid_eventbridge("rate(60 minutes)")
