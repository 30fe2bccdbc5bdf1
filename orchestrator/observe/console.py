"""Console output: the one view of a box whose sshd can no longer fork."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error

PERMISSIONS = frozenset({"ec2:GetConsoleOutput"})


def read_console(ec2: Any, instance_id: str) -> tuple[str, str | None]:
    """(text, error). Best effort: evidence must never stop a heal, so errors are returned."""
    try:
        try:
            reply = ec2.get_console_output(InstanceId=instance_id, Latest=True)
        except ClientError as exc:
            # Latest=True works only on Nitro instances; Xen ones take the plain call.
            if "Latest" not in str(exc) and "UnsupportedOperation" not in str(exc):
                raise
            reply = ec2.get_console_output(InstanceId=instance_id)
    except AWS_CALL_ERRORS as exc:
        return "", describe_aws_error(exc, "ec2:GetConsoleOutput")
    raw = reply.get("Output") or ""
    try:
        # validate=True: plain text (some emulators answer it) must not decode to garbage.
        return base64.b64decode("".join(raw.split()), validate=True).decode("utf-8", errors="replace"), None
    except (binascii.Error, ValueError):
        return raw, None
