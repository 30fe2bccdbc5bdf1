"""Console output: the one view of a box whose sshd can no longer fork."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error
from orchestrator.model import ConsoleEvidence
from orchestrator.observe.kernel_log import ConsoleCause, current_boot, parse_console

PERMISSIONS = frozenset({"ec2:GetConsoleOutput"})

# Which buffer the text came from (EC2 API reference, GetConsoleOutput): by default EC2
# returns what it posted shortly after the instance's last state change (start, stop,
# reboot): on a box hung for hours that is boot text, not the hang. ``Latest=true``
# returns the serial console as of now, on Nitro instance types only.
LATEST = "latest"
LAST_STATE_CHANGE = "last-state-change"


@dataclass(frozen=True, slots=True)
class ConsoleRead:
    text: str
    error: str | None
    buffer: str | None  # LATEST, LAST_STATE_CHANGE, or None when nothing was read
    updated_at: datetime | None = None  # EC2's Timestamp: when the text was last updated


def evidence_of(read: ConsoleRead, now: datetime) -> ConsoleEvidence:
    """What the console says about the boot it ends with: an OOM kill, hung tasks, or nothing."""
    if read.error is not None:
        return ConsoleEvidence(now, None, False, False, error=read.error)
    found = parse_console(current_boot(read.text))
    kill = found.oom_kills[-1] if found.oom_kills else None
    oom = found.cause in (ConsoleCause.OOM, ConsoleCause.PANIC) and (kill is not None or bool(found.invoked_oom_killer))
    line = kill.line if kill is not None else (found.hung_task_lines[0] if found.hung_task_lines else "")
    return ConsoleEvidence(
        read_at=now,
        updated_at=read.updated_at,
        oom_kill=oom,
        hung_task=bool(found.hung_task_lines),
        process=kill.process if kill is not None else "",
        line=line[:300],
    )


def read_console_output(ec2: Any, instance_id: str) -> ConsoleRead:
    """The latest console output where the instance supports it, else the posted buffer.

    Best effort: evidence must never stop a heal, so errors are returned, not raised.
    """
    buffer = LATEST
    try:
        try:
            reply = ec2.get_console_output(InstanceId=instance_id, Latest=True)
        except ClientError as exc:
            # Latest=True works only on Nitro instances; Xen ones take the plain call.
            if "Latest" not in str(exc) and "UnsupportedOperation" not in str(exc):
                raise
            buffer = LAST_STATE_CHANGE
            reply = ec2.get_console_output(InstanceId=instance_id)
    except AWS_CALL_ERRORS as exc:
        return ConsoleRead("", describe_aws_error(exc, "ec2:GetConsoleOutput"), None)
    raw = reply.get("Output") or ""
    stamp = reply.get("Timestamp")
    updated = stamp if isinstance(stamp, datetime) else None
    try:
        # validate=True: plain text (some emulators answer it) must not decode to garbage.
        text = base64.b64decode("".join(raw.split()), validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        text = raw
    return ConsoleRead(text, None, buffer, updated)


def read_console(ec2: Any, instance_id: str) -> tuple[str, str | None]:
    """(text, error) of ``read_console_output``, for callers that do not report the buffer."""
    read = read_console_output(ec2, instance_id)
    return read.text, read.error
