"""Webhook URLs a hostile or careless operator gives (issue 20, case 7).

Validation refuses what urllib would refuse at send time, and a secret never reaches a
terminal, a traceback or a log line: the one place errors are rendered masks it.
"""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from lambdas import heal
from orchestrator.cli import cli
from orchestrator.cli.common import Exit, OrchError
from orchestrator.config import ConfigError, load_settings
from orchestrator.echo import REDACTED, RedactingFilter, redact

SECRET = "T0AAA/B0BBB/XoXoSeCrEt"
BAD_URLS = [
    pytest.param(f"https://hooks.slack.com/services/{SECRET} x", id="space"),
    pytest.param(f"https://hooks.slack.com/services/{SECRET}\r\nX-Injected: 1", id="crlf"),
    pytest.param(f"https://hooks.slack.com/services/{SECRET}\x07", id="control-char"),
    pytest.param(f"https://hooks.slack.com/services/{SECRET}\x7f", id="del"),
    pytest.param(f"https://hooks.slack.com/services/{SECRET}é", id="non-ascii-path"),
    pytest.param(f"https://hööks.example/services/{SECRET}", id="non-ascii-host"),
]


def webhooks_env(url: str) -> dict[str, str]:
    return {"ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": url, "format": "slack"}])}


@pytest.mark.parametrize("url", BAD_URLS)
def test_case_7_a_url_urllib_would_refuse_is_refused_at_load_without_its_secret(url):
    with pytest.raises(ConfigError) as raised:
        load_settings(environ=webhooks_env(url))
    assert "webhooks" in str(raised.value) and SECRET not in str(raised.value)


@pytest.mark.parametrize("url", BAD_URLS[:3])
def test_case_7_orch_heal_with_such_a_url_exits_2_and_prints_no_secret(url):
    result = CliRunner().invoke(cli, ["heal", "--yes"], env={**webhooks_env(url), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.exit_code == Exit.USAGE, result.output
    assert SECRET not in result.output and "Traceback" not in result.output


def test_case_7_the_lambda_refuses_such_a_url_and_logs_no_secret(capsys):
    with pytest.raises(heal.HandlerError) as raised:
        heal.handler({"orch": {"dry_run": True}}, None, heal.Hooks(environ=webhooks_env(f"https://hooks.slack.com/services/{SECRET} x")))
    logged = capsys.readouterr().out
    assert "invalid-settings" in logged and SECRET not in logged and SECRET not in str(raised.value)


def test_case_7_a_remembered_url_is_masked_where_errors_and_logs_are_rendered(capsys):
    url = f"https://hooks.slack.com/services/{SECRET}"
    load_settings(environ=webhooks_env(url))  # read once: remembered as a secret
    # an error that quotes the URL, its path, or its percent-encoded path
    for quoted in (url, f"/services/{SECRET}", f"'/services/{SECRET}'"):
        OrchError(f"cannot POST {quoted}: refused", Exit.AWS).show()
        shown = capsys.readouterr().err
        assert SECRET not in shown and REDACTED in shown
    # a log record with a traceback that quotes it
    record = logging.LogRecord("orchestrator", logging.WARNING, __file__, 1, "posting to %s", (url,), None)
    try:
        raise ValueError(f"bad {url}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    assert SECRET not in logging.Formatter().format(record)
    # the Lambda's JSON lines
    heal.emit({"event": "x", "error": f"urlopen {url}"})
    assert SECRET not in capsys.readouterr().out
    assert redact("see https://docs.aws.amazon.com/sns/latest/dg/welcome.html") == "see https://docs.aws.amazon.com/sns/latest/dg/welcome.html"


@pytest.mark.parametrize("url", [f"http://127.0.0.1:9/{SECRET} x", f"http://127.0.0.1:9/{SECRET}\r\nX: y", f"http://127.0.0.1:9/{SECRET}é"])
def test_case_7_delivery_to_such_a_url_never_quotes_it_even_past_validation(url):
    from orchestrator.alerting.webhook import Policy, deliver

    result = deliver("ops", url, [{"x": 1}], Policy(1.0, 1.0, 1), sleep=lambda s: None)
    assert not result.delivered and SECRET not in result.error and "cannot be sent" in result.error
