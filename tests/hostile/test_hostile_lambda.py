"""The Lambda handler meeting hostile webhooks (issue 20, cases 5, 6 and 7).

Whatever the webhook does, the handler returns its summary and writes its decision,
sweep and metric lines; the webhook's URL is in none of them.
"""

from __future__ import annotations

import json

import pytest

from tests.aws.conftest import launch
from tests.aws.test_lambda_heal import SCHEDULED_EVENT, environ, invoke, log_lines, table  # noqa: F401 - the fixture
from tests.builders import ScriptedProber
from tests.hostile import servers


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(servers.sends(servers.SSHD_BANNER, read_first=False), id="sshd"),
        pytest.param(servers.sends(servers.MANY_HEADERS), id="101-headers"),
        pytest.param(servers.drips(servers.DRIP_HEADERS, every=0.02), id="drip"),
    ],
)
def test_case_5_6_the_lambda_reports_what_it_did_whatever_the_webhook_does(aws, subnet, table, capsys, script):  # noqa: F811
    ids = launch(aws, subnet, 4)
    with servers.tcp_server(script) as url:
        env = environ(
            ORCH_NOTIFY_WEBHOOKS=json.dumps([{"url": url, "format": "json"}]),
            ORCH_NOTIFY_WEBHOOK_TIMEOUT_SECONDS="0.5",
            ORCH_NOTIFY_WEBHOOK_TOTAL_SECONDS="0.5",
            ORCH_NOTIFY_WEBHOOK_ATTEMPTS="1",
        )
        summary = invoke(aws, SCHEDULED_EVENT, ScriptedProber({ids[0]}), env)
    assert [(a["instance_id"], a["outcome"]) for a in summary["actions"]] == [(ids[0], "done")]
    assert summary["notified"]["webhooks"][0]["delivered"] is False
    raw = capsys.readouterr().out
    assert "SECRET-PATH" not in raw and "SECRET-PATH" not in json.dumps(summary)
    lines = [json.loads(line) for line in raw.splitlines()]
    events = {line.get("event") for line in lines}
    assert {"action", "sweep", "webhook-failed"} <= events
    assert any("_aws" in line for line in lines)  # the metric line
