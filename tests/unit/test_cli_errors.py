"""Mistakes a user can make end in one line and a documented exit code, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli


@pytest.mark.parametrize(
    "args, env, code, fragment",
    [
        (["scan"], {"ORCH_PROBE_PORT": "0"}, 2, "probe.port"),
        (["heal", "--dry-run"], {"ORCH_SAFETY_MAX_UNHEALTHY": "lots"}, 2, "safety.max_unhealthy"),
        (["scan"], {"ORCH_PROBEPORT": "22"}, 2, "unknown setting"),
        (["scan", "--selector", "nokey"], {}, 2, "is not KEY=VALUE"),
        (["scan", "--config", "/nonexistent/orch.toml"], {}, 2, "does not exist"),
        (["scan"], {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, 3, "no AWS region"),
        (["status", "--state", "s3://bucket/x"], {}, 5, "state store"),
        (["sandbox", "--instances", "3", "--hung", "5"], {}, 2, "exceeds instances"),
        (["sandbox", "--schedule-minutes", "0"], {}, 2, "--schedule-minutes goes with --serve"),
        (["sandbox", "--serve", "--schedule-minutes", "-1"], {}, 2, "--schedule-minutes"),
        (["probe", "not a host:99999"], {}, 2, ""),
    ],
)
def test_user_errors(args, env, code, fragment):
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "Traceback" not in (result.stderr or "")
    assert fragment in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


@pytest.mark.parametrize("args", [["--help"], ["heal", "--help"], ["scan", "--help"]])
def test_help_lists_exit_codes_and_what_is_not_a_failure(args):
    result = CliRunner().invoke(cli, args)
    text = " ".join(result.output.split())
    assert "4 another sweep holds the lease" in text
    assert "opted-out (orch:skip) instances alone" in text and "in flight awaiting verification" in text
    assert "circuit breaker, a budget, quarantine" in text


def test_aws_region_alone_is_enough(monkeypatch):
    from orchestrator.aws import Clients

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert Clients().region == "eu-west-3"
    assert Clients(region="us-west-2").region == "us-west-2"
