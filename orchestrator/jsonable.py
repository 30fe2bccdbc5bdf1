"""One JSON shape for everything orch prints: plain values, and one timestamp format.

Every timestamp in orch's JSON is ISO 8601 in UTC to the second with a ``Z``
(``2026-11-26T09:30:00Z``), whether it was a ``datetime`` in a record, an isoformat string
in a sweep summary, or a record an older version stored with ``+00:00``. Scripts parse
one format; ``jq`` compares them as strings.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from datetime import date, datetime, timezone
from pathlib import PurePath
from typing import Any

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def iso_utc(value: datetime) -> str:
    """``2026-11-26T09:30:00Z``; a naive datetime is taken as UTC (orch stores only UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _normalise_text(text: str) -> str:
    if len(text) <= 32 and _ISO.fullmatch(text):
        try:
            return iso_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return text
    return text


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, tuples, paths and datetimes as JSON values; timestamps in the one format."""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, str):
        return _normalise_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, PurePath):
        return str(value)
    return str(value)
