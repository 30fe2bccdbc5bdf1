"""Hostile input to the configuration, the CLI and the Lambda handler (issue 10, items 6-7).

Each row is an input someone could give, and what it must get: an exit code and one
line naming the problem, never a traceback, never an echo of megabytes. The rows that
need a real process (an endpoint that does not answer, a URL that is not one, a home
directory that does not exist) run `orch` as a subprocess in
``tests/e2e/test_hostile_processes.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lambdas import heal
from orchestrator.cli import cli
from orchestrator.config import ConfigError, load_settings

HUGE = "x" * 5_000_000  # a 5 MB value
ECHO_LIMIT = 600  # no error line may be longer than this, whatever it quotes

# (why, environment, TOML file bytes or None, exit code, fragment of the one error line)
CONFIG_ROWS: list[tuple[str, dict[str, str], bytes | None, int, str]] = [
    ("a float count", {"ORCH_SAFETY_MAX_UNHEALTHY": "5.0"}, None, 2, "a count has no decimals"),
    ("an exponent", {"ORCH_SAFETY_MAX_UNHEALTHY": "1e3"}, None, 2, "a count like 5 or a percent like 20%"),
    ("nan percent", {"ORCH_SAFETY_MAX_UNHEALTHY": "nan%"}, None, 2, "a count like 5 or a percent like 20%"),
    ("infinity", {"ORCH_SAFETY_MAX_UNHEALTHY": "inf"}, None, 2, "a count like 5 or a percent like 20%"),
    ("an overflowing exponent", {"ORCH_SAFETY_MAX_UNHEALTHY": "1e400"}, None, 2, "a count like 5 or a percent like 20%"),
    ("nan seconds", {"ORCH_PROBE_CONNECT_TIMEOUT": "nan"}, None, 2, "probe.connect_timeout: Input should be a finite number"),
    ("1e400 seconds", {"ORCH_PROBE_BANNER_TIMEOUT": "1e400"}, None, 2, "probe.banner_timeout: Input should be a finite number"),
    ("a bool for a count", {}, b"[safety]\nmax_actions_per_sweep = true\n", 2, "safety.max_actions_per_sweep: must be a number, not true/false"),
    ("a bool for seconds", {}, b"[probe]\nretry_window = false\n", 2, "probe.retry_window: must be a number, not true/false"),
    ("a section that is a number", {}, b"safety = 3\n", 2, "safety must be a table"),
    ("a section that is a number, env set", {"ORCH_SAFETY_MAX_UNHEALTHY": "5"}, b"safety = 3\n", 2, "safety must be a table"),
    ("not UTF-8", {}, b'region = "\xff\xfeeu"\n', 2, "is not UTF-8 text (byte 0xff on line 1)"),
    ("not TOML", {}, b"[probe\n", 2, "is not valid TOML"),
    ("a duplicate selector key", {"ORCH_SELECTOR": "a=1,a=2"}, None, 2, "tag 'a' is given twice"),
    ("a 5 MB region", {"ORCH_REGION": HUGE}, None, 2, "region: is not an AWS region name"),
    ("a region that is not one", {"ORCH_REGION": "moon-1"}, None, 2, "region: is not an AWS region name"),
    ("a 5 MB selector value", {"ORCH_SELECTOR": "novalue" + HUGE}, None, 2, "is not KEY=VALUE"),
    ("a 5 MB unknown variable name", {"ORCH_" + "Y" * 100_000: "1"}, None, 2, "unknown setting"),
    ("a long tag and a 5 MB port in TOML", {}, f'opt_out_tag = "{"t" * 100_000}"\n[probe]\nport = "{HUGE}"\n'.encode(), 2, "probe.port"),
]


def _load(env: dict[str, str], toml: bytes | None, tmp_path: Path) -> Any:
    path = None
    if toml is not None:
        path = tmp_path / "orch.toml"
        path.write_bytes(toml)
    return load_settings(path, environ=env)


@pytest.mark.parametrize("why, env, toml, code, fragment", CONFIG_ROWS, ids=[r[0] for r in CONFIG_ROWS])
def test_config_refuses_at_load_with_one_short_line(why, env, toml, code, fragment, tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(env, toml, tmp_path)
    message = str(err.value)
    assert fragment in message and "\n" not in message and len(message) <= ECHO_LIMIT, message[:1000]


@pytest.mark.parametrize("why, env, toml, code, fragment", CONFIG_ROWS, ids=[r[0] for r in CONFIG_ROWS])
def test_the_cli_exits_with_the_documented_code_and_one_line(why, env, toml, code, fragment, tmp_path):
    args = ["scan"]
    if toml is not None:
        (tmp_path / "orch.toml").write_bytes(toml)
        args += ["--config", str(tmp_path / "orch.toml")]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == code, result.output[:1000]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0] and len(errors[0]) <= ECHO_LIMIT + 10
    assert "Traceback" not in result.output


# (why, TOML or environment that is accepted, and what it means)
ACCEPTED: list[tuple[str, dict[str, str], bytes | None, str]] = [
    ("a TOML integer count", {}, b"[safety]\nmax_unhealthy = 5\n", "5"),
    ("a count as text", {"ORCH_SAFETY_MAX_UNHEALTHY": " 7 "}, None, "7"),
    ("a decimal percent", {"ORCH_SAFETY_MAX_UNHEALTHY": "12.5%"}, None, "12.5%"),
    ("zero percent", {"ORCH_SAFETY_MAX_UNHEALTHY": "0%"}, None, "0%"),
]


@pytest.mark.parametrize("why, env, toml, expected", ACCEPTED, ids=[r[0] for r in ACCEPTED])
def test_well_defined_values_are_accepted_and_mean_one_thing(why, env, toml, expected, tmp_path):
    safety = _load(env, toml, tmp_path).safety
    assert safety.max_unhealthy == expected
    assert isinstance(safety.unhealthy_limit(40), int)  # never a crash at plan time


# (why, CLI arguments, exit code, fragment)
CLI_ROWS: list[tuple[str, list[str], int, str]] = [
    ("a duplicate --selector key", ["scan", "--selector", "a=1,a=2"], 2, "given twice"),
    ("a duplicate --selector key before the command", ["--selector", "a=1,a=2", "scan"], 2, "given twice"),
    ("--endpoint-url that is not a URL", ["status", "--endpoint-url", "not-a-url"], 2, "is not a URL"),
    ("--query that is not JMESPath", ["status", "--query", "[["], 2, "not a JMESPath expression"),
    ("--query with table output", ["status", "-o", "table", "--query", "lease"], 2, "use it with --output json or text"),
    ("a 100 kB --region", ["status", "--region", "r" * 100_000], 2, "is not an AWS region name"),
    ("a 100 kB --selector", ["status", "--selector", "k" * 100_000], 2, "is not KEY=VALUE"),
]


@pytest.mark.parametrize("why, args, code, fragment", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_flags(why, args, code, fragment):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == code, result.output[:1000]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0] and len(errors[0]) <= ECHO_LIMIT
    assert "Traceback" not in result.output


# -- the Lambda handler: everything stays inside the one-JSON-line error contract --------


class _Context:
    def __init__(self, remaining: Any) -> None:
        self.get_remaining_time_in_millis = remaining


SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event"}
GOOD_ENV = {"ORCH_STATE": "dynamodb://orch-state"}

# (why, event, environment, context, error event, fragment)
LAMBDA_ROWS: list[tuple[str, Any, dict[str, str], Any, str, str]] = [
    *[
        (f"ORCH_SAFETY_MAX_UNHEALTHY={value}", SCHEDULED, {**GOOD_ENV, "ORCH_SAFETY_MAX_UNHEALTHY": value}, None, "invalid-settings", "safety.max_unhealthy")
        for value in ("5.0", "1e3", "nan%", "inf", "1e400")
    ],
    ("a 5 MB region setting", SCHEDULED, {**GOOD_ENV, "ORCH_REGION": HUGE}, None, "invalid-settings", "region"),
    ("a duplicate selector key", SCHEDULED, {**GOOD_ENV, "ORCH_SELECTOR": "a=1,a=2"}, None, "invalid-settings", "given twice"),
    ("a bool for a count", SCHEDULED, {**GOOD_ENV, "ORCH_SAFETY_MAX_ACTIONS_PER_SWEEP": "true"}, None, "invalid-settings", "max_actions_per_sweep"),
    ("a 1 MB unknown event key", {"k" * 1_000_000: 1}, GOOD_ENV, None, "invalid-event", "unrecognised event"),
    ("a 1 MB key inside a manual invoke", {"orch": {"k" * 1_000_000: 1}}, GOOD_ENV, None, "invalid-event", "unknown key"),
    ("a 1 MB detail-type", {"source": "aws.events", "detail-type": "d" * 1_000_000}, GOOD_ENV, None, "invalid-event", "detail-type"),
    ("many unknown keys", {f"key{i}": i for i in range(10_000)}, GOOD_ENV, None, "invalid-event", "and 9990 more"),
    ("a context method that is not callable", SCHEDULED, GOOD_ENV, _Context(300_000), "invalid-context", "not a method"),
    ("a context method returning text", SCHEDULED, GOOD_ENV, _Context(lambda: "soon"), "invalid-context", "not a number of milliseconds"),
    ("a context method returning nan", SCHEDULED, GOOD_ENV, _Context(lambda: float("nan")), "invalid-context", "not a number"),
    ("a context method returning a negative", SCHEDULED, GOOD_ENV, _Context(lambda: -5), "invalid-context", "not a number"),
    ("a context method that raises", SCHEDULED, GOOD_ENV, _Context(lambda: 1 / 0), "invalid-context", "ZeroDivisionError"),
]


def _never(settings: Any) -> Any:
    raise AssertionError("no AWS client may be made for an invocation that must fail first")


@pytest.mark.parametrize("why, event, env, context, kind, fragment", LAMBDA_ROWS, ids=[r[0] for r in LAMBDA_ROWS])
def test_the_lambda_fails_with_one_short_json_line_and_acts_on_nothing(why, event, env, context, kind, fragment, capsys):
    with pytest.raises(heal.HandlerError):
        heal.handler(event, context, heal.Hooks(clients=_never, environ=env))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and len(lines[0]) <= heal.MAX_ERROR_CHARS + 100
    record = json.loads(lines[0])
    assert record["level"] == "error" and record["event"] == kind and fragment in record["error"], record


def test_a_later_garbage_reading_of_the_deadline_means_no_time_left():
    readings = iter([300_000, "garbage"])
    left = heal._time_left(_Context(lambda: next(readings)))
    assert left is not None and left() == 0.0  # the first reading was the up-front check
