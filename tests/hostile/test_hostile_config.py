"""Hostile environments (issue 20, case 2): a setting has one spelling; two are an error, not a coin toss."""

from __future__ import annotations

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
