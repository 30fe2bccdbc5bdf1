"""Records to JSON and back, shared by every adapter so they store the same shape.

The codec is driven by the dataclasses' own type hints, so a field added to
``InstanceHistory`` (or any record) is stored without touching an adapter, and a
stored blob written by an older version (missing fields) or a newer one (extra
fields) still loads.
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, TypeVar

from orchestrator.state.store import StateError

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

R = TypeVar("R")


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(value: datetime) -> str:
    """Fixed-width UTC text, so stored timestamps sort as strings in time order."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the state store only takes timezone-aware datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:  # written by hand or by a tool that dropped the offset: it was UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_us(value: datetime) -> int:
    """Exact integer microseconds since the epoch: lease expiry is compared as a number."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the state store only takes timezone-aware datetimes")
    return (value - EPOCH) // _ONE_US


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return record_to_dict(value)
    raise StateError(f"cannot store a {type(value).__name__} in the state store: {value!r}")


def record_to_dict(record: Any) -> dict[str, Any]:
    return {f.name: to_jsonable(getattr(record, f.name)) for f in fields(record)}


@functools.cache
def _field_hints(cls: type) -> tuple[tuple[str, Any], ...]:
    """Each field's resolved type, once per class: resolving hints compiles strings every call."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in fields(cls))


def record_from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
    """Missing keys take the dataclass default; unknown keys are ignored."""
    kwargs = {name: _decode(hint, data[name]) for name, hint in _field_hints(cls) if name in data}
    return cls(**kwargs)


def dumps(record: Any) -> str:
    return json.dumps(record_to_dict(record), separators=(",", ":"), sort_keys=True)


def loads(cls: type[R], text: str) -> R:
    return record_from_dict(cls, json.loads(text))


def dumps_value(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"), sort_keys=True)


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        concrete = [a for a in args if a is not type(None)]
        return _decode(concrete[0], value) if len(concrete) == 1 else value
    if origin is tuple:
        item_hint = args[0] if args else Any
        return tuple(_decode(item_hint, v) for v in value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return dict(value)
    if hint is datetime:
        return from_iso(value)
    if isinstance(hint, type) and is_dataclass(hint) and isinstance(value, Mapping):
        return record_from_dict(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is int:
        return int(value)
    if hint is float:
        return float(value)
    return value
