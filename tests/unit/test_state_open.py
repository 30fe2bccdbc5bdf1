"""Choosing a store from a spec string, the lease scope, and the shared codec."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from orchestrator.aws import AwsError
from orchestrator.model import ActionKind, InstanceHistory
from orchestrator.state import (
    StateError,
    codec,
    default_state_path,
    lease_scope,
    open_store,
)
from orchestrator.state.dynamodb import DynamoStore
from orchestrator.state.sqlite import SqliteStore


class FakeClients:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def client(self, service: str) -> Any:
        self.asked.append(service)
        return object()


def test_no_spec_opens_sqlite_under_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))

    store = open_store(None)

    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "xdg" / "orch" / "state.db"
    assert store.path.exists()
    store.close()


def test_default_path_falls_back_to_local_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert default_state_path() == tmp_path / ".local" / "state" / "orch" / "state.db"


def test_a_path_opens_sqlite(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s" / "state.db"))
    assert isinstance(store, SqliteStore)
    store.close()


def test_dynamodb_spec_uses_the_given_clients() -> None:
    clients = FakeClients()

    store = open_store("dynamodb://orch-state", clients_factory=lambda: clients)  # type: ignore[arg-type,return-value]

    assert isinstance(store, DynamoStore)
    assert store.table_name == "orch-state"
    assert clients.asked == ["dynamodb"]


def test_dynamodb_without_a_region_is_a_state_error() -> None:
    def no_region() -> Any:
        raise AwsError("no AWS region: pass --region")

    with pytest.raises(StateError, match="no AWS region"):
        open_store("dynamodb://orch-state", clients_factory=no_region)


@pytest.mark.parametrize("spec", ["s3://bucket/state", "file:///tmp/x.db", "redis://localhost"])
def test_unknown_schemes_name_the_allowed_forms(spec: str) -> None:
    with pytest.raises(StateError) as caught:
        open_store(spec)
    assert spec in str(caught.value)
    assert "dynamodb://TABLE" in str(caught.value) and "file path" in str(caught.value)


@pytest.mark.parametrize("spec", ["dynamodb://", "dynamodb://ab", "dynamodb://has space", "dynamodb://a/b"])
def test_bad_table_names_are_refused(spec: str) -> None:
    with pytest.raises(StateError, match="does not name a DynamoDB table"):
        open_store(spec, clients_factory=FakeClients)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "account, region, vpc, scope",
    [
        ("123456789012", "eu-west-1", "vpc-0abc", "123456789012/eu-west-1/vpc-0abc"),
        ("-", "us-east-1", None, "-/us-east-1/*"),
        ("", "", None, "-/-/*"),
        ("a/b", "r", "v/1", "a%2Fb/r/v%2F1"),  # separators cannot be confused
    ],
)
def test_the_lease_scope_names_account_region_and_vpc(account, region, vpc, scope) -> None:
    assert lease_scope(account, region, vpc) == scope


def test_overlapping_selectors_share_a_lease() -> None:
    """Two sweeps over one store whose selectors overlap must exclude each other."""
    assert lease_scope("a", "r", "vpc-1") == lease_scope("a", "r", "vpc-1")


def test_codec_refuses_naive_datetimes_and_reads_offsetless_text_as_utc() -> None:
    with pytest.raises(ValueError, match="naive"):
        codec.to_iso(datetime(2026, 1, 1))
    assert codec.from_iso("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_codec_microseconds_are_exact() -> None:
    moment = datetime(2026, 5, 6, 7, 8, 9, 123457, tzinfo=timezone(timedelta(hours=-5)))
    assert codec.from_us(codec.to_us(moment)) == moment
    assert codec.from_iso(codec.to_iso(moment)) == moment


def test_codec_tolerates_older_and_newer_blobs() -> None:
    """Missing fields take defaults (older writer); unknown fields are ignored (newer writer)."""
    history = codec.record_from_dict(
        InstanceHistory, {"instance_id": "i-1", "last_action": "reboot", "from_the_future": 1}
    )
    assert history == InstanceHistory("i-1", last_action=ActionKind.REBOOT)


def test_codec_refuses_values_it_cannot_store() -> None:
    with pytest.raises(StateError, match="cannot store a object"):
        codec.dumps_value({"x": object()})
