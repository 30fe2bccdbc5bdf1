"""Keep a sweep record inside DynamoDB's item limit, whatever the fleet's size.

DynamoDB refuses any item over 400 KB (attribute names and values together; DynamoDB
developer guide, "Constraints"). A sweep record holds one line per blocked instance:
measured 445 KB at 2,500 blocked, exactly the sweep (the circuit breaker open on a big
fleet) whose record matters most. So past ``SWEEP_SUMMARY_MAX_BYTES`` the per-instance
lists that can be counted are summarised; every action taken is kept.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

DYNAMODB_ITEM_MAX_BYTES = 400 * 1024
SWEEP_SUMMARY_MAX_BYTES = 350_000  # leaves room for the item's keys and the record's other fields
KEPT_BLOCKED = 100
KEPT_NOTES = 100
KEPT_REASONS = 20
TEXT_CAP = 500


def size_of(value: Any) -> int:
    return len(json.dumps(value, default=str).encode())


def fit_sweep_summary(summary: dict[str, Any], limit: int = SWEEP_SUMMARY_MAX_BYTES) -> dict[str, Any]:
    """The same summary if it fits; else one whose blocked list and notes are summarised.

    In order, until it fits: blocked instances beyond the first KEPT_BLOCKED become counts
    per reason; notes beyond the first KEPT_NOTES a count; actions' evidence summaries
    (also kept in each action's own record) are dropped; long action texts are cut.
    Actions themselves are never dropped.
    """
    if size_of(summary) <= limit:
        return summary
    fitted = dict(summary, summarised=True)
    blocked = list(summary.get("blocked") or [])
    if len(blocked) > KEPT_BLOCKED:
        reasons = Counter(str(b.get("why", ""))[:TEXT_CAP] for b in blocked)
        fitted["blocked"] = blocked[:KEPT_BLOCKED]
        fitted["blocked_total"] = len(blocked)
        fitted["blocked_by_reason"] = dict(reasons.most_common(KEPT_REASONS))
    notes = list(summary.get("notes") or [])
    if size_of(fitted) > limit and len(notes) > KEPT_NOTES:
        fitted["notes"] = notes[:KEPT_NOTES] + [f"... and {len(notes) - KEPT_NOTES} more notes not kept (record size limit)"]
    if size_of(fitted) > limit:
        fitted["actions"] = [{k: v for k, v in a.items() if k != "evidence"} for a in fitted.get("actions") or []]
    if size_of(fitted) > limit:
        fitted["actions"] = [
            {k: (v[:TEXT_CAP] if isinstance(v, str) else v) for k, v in a.items()} for a in fitted.get("actions") or []
        ]
    return fitted
