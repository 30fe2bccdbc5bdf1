"""`orch simulate` with real alert targets configured (issue 20, case 1): nothing simulated reaches them.

A PagerDuty webhook in the config file and a Slack one in ORCH_NOTIFY_WEBHOOKS point at
HTTP servers on 127.0.0.1; a simulated breaker opens; neither server hears a thing, and
the simulator still counts the message it would have sent (to its own recorder).
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import Settings
from orchestrator.simulate.run import SIM_TOPIC, simulation_settings
from tests.webhook_server import webhook_server


def test_case_1_simulate_sends_nothing_to_configured_webhooks_or_topic(tmp_path):
    with webhook_server([(202, {})]) as pager, webhook_server([(200, {})]) as slack:
        config = tmp_path / "pd.toml"
        config.write_text(
            "[notify]\n"
            'topic_arn = "arn:aws:sns:us-east-1:123456789012:real-pager"\n'
            f'webhooks = [{{ url = "{pager.url}", format = "pagerduty", routing_key = "R0UTING" }}]\n'
        )
        env = {"ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": slack.url, "format": "slack"}])}
        result = CliRunner().invoke(
            cli, ["simulate", "--config", str(config), "--scenario", "network-fault", "--hours", "2", "-o", "json"], env=env
        )
        assert result.exit_code == 0, result.output
        assert pager.bodies == [] and slack.bodies == []
    (row,) = json.loads(result.output)
    assert row["messages"] >= 1 and row["message_subjects"][0].startswith("orch: circuit breaker open")  # composed, recorded


def test_case_1_simulation_settings_keep_no_real_target():
    real = Settings.model_validate(
        {
            "notify": {
                "topic_arn": "arn:aws:sns:us-east-1:123456789012:real",
                "webhooks": [{"url": "https://events.pagerduty.com/v2/enqueue", "format": "pagerduty", "routing_key": "K"}],
            }
        }
    )
    simulated = simulation_settings(real)
    assert simulated.notify.webhooks == () and simulated.notify.topic_arn == SIM_TOPIC
    assert real.notify.webhooks  # the user's settings themselves are untouched


def test_case_1_a_shell_pointed_at_the_sandbox_drops_the_config_files_webhooks(tmp_path):
    from types import SimpleNamespace

    from orchestrator.config import load_settings
    from orchestrator.sandbox.demo import Stage, exports

    sb = SimpleNamespace(env=lambda: {"AWS_ENDPOINT_URL": "http://127.0.0.1:5999"}, port=2222)
    env = exports(sb, Stage("bucket", "arn:aws:sns:us-east-1:123456789012:sandbox", tmp_path / "s.db"))
    config = tmp_path / "pd.toml"
    config.write_text('[notify]\nwebhooks = [{ url = "https://events.pagerduty.com/v2/enqueue", format = "pagerduty", routing_key = "K" }]\n')
    settings = load_settings(config_path=config, environ=env)
    assert settings.notify.webhooks == () and settings.notify.topic_arn == "arn:aws:sns:us-east-1:123456789012:sandbox"
