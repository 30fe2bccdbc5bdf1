"""Timestamps from AWS responses: the same instants botocore gives, in one shared UTC zone."""

from __future__ import annotations

from datetime import timezone

import botocore.utils
import pytest

from orchestrator.aws import parse_timestamp


@pytest.mark.parametrize(
    "value",
    [
        0,
        1_700_000_000,
        1_700_000_000.5,
        "2026-01-01T00:00:00Z",
        "2026-01-01T12:34:56.789Z",
        "2026-01-01T12:34:56+02:00",
        "Mon, 02 Feb 2026 10:00:00 GMT",
        "1700000000",
    ],
)
def test_same_instant_as_botocore(value: object) -> None:
    assert parse_timestamp(value) == botocore.utils.parse_timestamp(value)


@pytest.mark.parametrize("value", [1_700_000_000, 1_700_000_000.25, "2026-01-01T00:00:00.000Z"])
def test_epoch_and_utc_iso_share_one_zone_object(value: object) -> None:
    assert parse_timestamp(value).tzinfo is timezone.utc


def test_garbage_is_botocores_error() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("not a time Z")
