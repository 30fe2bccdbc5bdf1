"""What the guard is derived from, read from AWS and the store: box memory, chronic conditions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from orchestrator.config import Settings
from orchestrator.decide.chronic import Chronic, chronic
from orchestrator.model import InstanceHistory

PERMISSIONS = frozenset({"ec2:DescribeInstanceTypes"})
TYPES_PER_CALL = 100  # DescribeInstanceTypes' InstanceTypes limit


def memory_mib(ec2: Any, instance_types: Iterable[str]) -> dict[str, int]:
    """Instance type -> its memory (``MemoryInfo.SizeInMiB``); a type AWS does not describe is absent."""
    types = sorted({t for t in instance_types if t})
    found: dict[str, int] = {}
    paginator = ec2.get_paginator("describe_instance_types")
    for start in range(0, len(types), TYPES_PER_CALL):
        for page in paginator.paginate(InstanceTypes=types[start : start + TYPES_PER_CALL]):
            for info in page.get("InstanceTypes", []):
                size = (info.get("MemoryInfo") or {}).get("SizeInMiB")
                if size:
                    found[str(info["InstanceType"])] = int(size)
    return found


def chronic_conditions(histories: Mapping[str, InstanceHistory], now: datetime, settings: Settings) -> dict[str, Chronic]:
    """Instance -> its chronic condition, for those that have one now."""
    return {i: c for i, h in histories.items() if (c := chronic(h, now, settings)) is not None}
