"""Hostile environments (issue 20, case 2): a setting has one spelling; two are an error, not a coin toss."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import ConfigError, load_settings


@pytest.mark.parametrize(
    "environ",
    [
        {"ORCH_DRY_RUN": "true", "orch_dry_run": "false"},
        {"orch_dry_run": "false", "ORCH_DRY_RUN": "true"},  # the other order: still refused, not the other winner
        {"ORCH_DRY_RUN": "true", "Orch_Dry_Run": "true"},  # the same value spelt twice is still two spellings
        {"ORCH_NOTIFY_TOPIC_ARN": "arn:a", "orch_notify_topic_arn": "arn:b"},
    ],
)
def test_case_2_one_setting_spelt_two_ways_is_an_error_naming_both(environ):
    with pytest.raises(ConfigError) as raised:
        load_settings(environ=environ)
    message = str(raised.value)
    for name in environ:
        assert name in message
    assert "unset all but one" in message


def test_case_2_one_spelling_whatever_its_case_is_read():
    assert load_settings(environ={"orch_dry_run": "true"}).dry_run is True


def test_case_2_orch_heal_with_two_spellings_exits_2_before_touching_aws():
    result = CliRunner().invoke(
        cli, ["heal", "--yes"], env={"ORCH_DRY_RUN": "true", "orch_dry_run": "false", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert result.exit_code == 2, result.output
    assert "ORCH_DRY_RUN and orch_dry_run" in result.output and "Traceback" not in result.output


HOOK = "https://hooks.slack.com/services/T0/B0/XoXoSeCrEt"
# (why, environment, exit code, fragment of the one error line); every one before any AWS call
ROWS = [
    ("one setting spelt two ways", {"ORCH_DRY_RUN": "true", "orch_dry_run": "false"}, 2, "one setting spelt 2 ways"),
    ("a section setting spelt two ways", {"ORCH_SAFETY_MAX_UNHEALTHY": "1", "orch_safety_max_unhealthy": "9"}, 2, "unset all but one"),
    ("webhooks that are not JSON", {"ORCH_NOTIFY_WEBHOOKS": "hooks.slack.com"}, 2, "ORCH_NOTIFY_WEBHOOKS is not JSON"),
    ("a webhook that is not http(s)", {"ORCH_NOTIFY_WEBHOOKS": '[{"url": "ftp://x.example/XoXoSeCrEt", "format": "json"}]'}, 2, "http(s) URL"),
    ("a webhook URL with CRLF", {"ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": HOOK + "\r\nX: 1", "format": "slack"}])}, 2, "line break"),
    ("a webhook URL with a space", {"ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": HOOK + " x", "format": "slack"}])}, 2, "space"),
    ("a non-ASCII webhook URL", {"ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": HOOK + "é", "format": "slack"}])}, 2, "non-ASCII"),
    ("pagerduty without a key", {"ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": HOOK, "format": "pagerduty"}])}, 2, "routing_key"),
    ("eleven webhooks", {"ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": HOOK, "format": "json"}] * 11)}, 2, "webhooks"),
]


@pytest.mark.parametrize(("why", "environ", "code", "fragment"), ROWS, ids=[r[0] for r in ROWS])
def test_hostile_environments_get_one_line_and_their_exit_code(why, environ, code, fragment):
    result = CliRunner().invoke(cli, ["heal", "--yes"], env={**environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.exit_code == code, result.output
    assert fragment in result.output and "Traceback" not in result.output
    assert "XoXoSeCrEt" not in result.output
