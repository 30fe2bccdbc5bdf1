"""The output side of the CLI, pure: the AWS CLI's text format, one timestamp format, option plumbing."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.cli.common import Runtime, check_endpoint_url, resolve_output
from orchestrator.cli.output import render_text
from orchestrator.jsonable import iso_utc, to_jsonable

TEXT_ROWS = [
    ("a scalar", 3, "3"),
    ("None as the AWS CLI prints it", None, "None"),
    ("a list of scalars, one line", ["a", "b", 3], "a\tb\t3"),
    ("an object: scalars by key", {"b": 2, "a": 1}, "1\t2"),
    ("objects: one line each, shared columns", [{"id": "i-1", "v": "ok"}, {"id": "i-2"}], "i-1\tok\ni-2\tNone"),
    ("a nested list under its key in capitals", {"n": 1, "ids": ["i-1", "i-2"]}, "1\nIDS\ti-1\nIDS\ti-2"),
    ("nested objects under their key", {"lease": {"owner": "me"}}, "LEASE\tme"),
    ("a list of lists", [["i-1", "unreachable"], ["i-2", "healthy"]], "i-1\tunreachable\ni-2\thealthy"),
    ("an empty list prints nothing", [], ""),
]


@pytest.mark.parametrize("why, value, text", TEXT_ROWS, ids=[r[0] for r in TEXT_ROWS])
def test_text_output_is_the_aws_clis(why, value, text):
    assert render_text(value) == text


class Color(str, enum.Enum):
    RED = "red"


@dataclass
class Record:
    at: datetime
    color: Color
    tags: tuple[str, ...]


UTC = timezone.utc
JSON_ROWS = [
    ("an aware datetime", datetime(2026, 11, 26, 9, 30, 0, 123456, tzinfo=UTC), "2026-11-26T09:30:00Z"),
    ("another zone, made UTC", datetime(2026, 11, 26, 10, 30, tzinfo=timezone(timedelta(hours=1))), "2026-11-26T09:30:00Z"),
    ("a naive datetime is UTC", datetime(2026, 11, 26, 9, 30), "2026-11-26T09:30:00Z"),
    ("an isoformat string from a summary", "2026-11-26T09:30:00.5+00:00", "2026-11-26T09:30:00Z"),
    ("str(datetime), as older records hold", "2026-11-26 09:30:00+00:00", "2026-11-26T09:30:00Z"),
    ("text that only starts like a date", "2026-11-26T09:30:00Z and more", "2026-11-26T09:30:00Z and more"),
    ("a dataclass with an enum and a tuple", Record(datetime(2026, 1, 1, tzinfo=UTC), Color.RED, ("a",)),
     {"at": "2026-01-01T00:00:00Z", "color": "red", "tags": ["a"]}),
    ("nested in a mapping", {"when": [datetime(2026, 1, 1, tzinfo=UTC)]}, {"when": ["2026-01-01T00:00:00Z"]}),
]


@pytest.mark.parametrize("why, value, expected", JSON_ROWS, ids=[r[0] for r in JSON_ROWS])
def test_one_timestamp_format_in_every_json(why, value, expected):
    assert to_jsonable(value) == expected


def test_iso_utc_is_to_the_second_with_z():
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2026-01-02T03:04:05Z"


OUTPUT_ROWS = [
    # given --output, AWS_DEFAULT_OUTPUT, --query given, chosen
    (None, "", False, "table"),
    (None, "json", False, "json"),
    (None, "TEXT", False, "text"),
    (None, "yaml", False, "table"),  # one orch does not print: a warning, then the default
    ("table", "json", False, "table"),  # the flag wins
    (None, "", True, "json"),  # --query alone means JSON
    ("text", "", True, "text"),
]


@pytest.mark.parametrize("given, env, query, chosen", OUTPUT_ROWS)
def test_output_format_follows_the_flag_then_aws_default_output(given, env, query, chosen, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_OUTPUT", env)
    assert resolve_output(given, object() if query else None) == chosen


@pytest.mark.parametrize("url, ok", [("http://127.0.0.1:5000", True), ("https://ec2.example", True), ("not-a-url", False),
                                     ("ftp://127.0.0.1", False), ("http://", False), ("http://127.0.0.1:99999", False)])
def test_endpoint_urls_are_checked_as_the_aws_cli_does(url, ok):
    if ok:
        assert check_endpoint_url(url, "--endpoint-url") == url
    else:
        with pytest.raises(ValueError, match="--endpoint-url"):
            check_endpoint_url(url, "--endpoint-url")


def test_endpoint_url_goes_to_every_client_orch_makes():
    runtime = Runtime(overrides={"region": "us-east-1"}, endpoint_url="http://127.0.0.1:4566")
    for service in ("ec2", "cloudwatch", "dynamodb", "sns"):
        assert runtime.clients.client(service).meta.endpoint_url == "http://127.0.0.1:4566"
    assert runtime.clients.mutating_client("ec2").meta.endpoint_url == "http://127.0.0.1:4566"
