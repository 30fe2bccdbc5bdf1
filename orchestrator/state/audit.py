"""Where the record of what a sweep did goes when the state store cannot take it.

Every mutation is written to the store before and after it happens; when the store
fails in the middle of a sweep, the actions already taken exist only in the sweep's
report. That report must survive the process: it is written as JSON to a file (a
manual run: the state directory, else the temporary directory) or to the evidence
bucket (the Lambda, whose log lines carry it too), and the error message says where.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error


def _candidates(preferred: Path | None) -> list[Path]:
    found = [preferred] if preferred is not None else []
    return [*found, Path(tempfile.gettempdir()) / "orch-audit"]


def write_file(summary: Mapping[str, Any], preferred: Path | None) -> str:
    """The first directory that takes the file; says so when none does."""
    problems = []
    for directory in _candidates(preferred):
        path = directory / f"sweep-{summary.get('sweep_id', 'unknown')}.json"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(summary, indent=2, default=str))
        except OSError as exc:
            problems.append(f"{directory}: {exc.strerror or exc}")
            continue
        return str(path)
    return "nowhere (" + "; ".join(problems) + "): only this output has it"


def write_bucket(put_object: Callable[..., Any], bucket: str, prefix: str, summary: Mapping[str, Any]) -> str:
    key = f"{prefix.rstrip('/')}/audit/sweep-{summary.get('sweep_id', 'unknown')}.json"
    try:
        put_object(Bucket=bucket, Key=key, Body=json.dumps(summary, indent=2, default=str).encode(), ContentType="application/json")
    except AWS_CALL_ERRORS as exc:
        return f"not in s3://{bucket} ({describe_aws_error(exc, 's3:PutObject')}): the log lines above have it"
    return f"s3://{bucket}/{key}"


def done_before(summary: Mapping[str, Any]) -> str:
    """What was done before the store failed, in words, for the error line."""
    taken = [a for a in summary.get("actions", []) if a.get("outcome") in ("done", "uncertain")]
    if not taken:
        return "nothing was acted on"
    listed = ", ".join(f"{a['instance_id']} {a['action']} {a['outcome']}" for a in taken[:10])
    more = f" and {len(taken) - 10} more" if len(taken) > 10 else ""
    return f"{len(taken)} action(s) were taken before it failed: {listed}{more}"
