"""Errors that name the missing extra.

The plain sandbox (``.[sandbox]``) embeds no CloudFormation; `orch deploy` against it
reached a moto server that cannot answer CloudFormation and botocore could not parse the
reply, which read as "a proxy may be answering". When the endpoint is this machine's and
the extra's packages are not installed here, say what to install instead.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from typing import Callable
from urllib.parse import urlsplit

# A package only the sandbox-deploy extra brings (moto[cloudformation] needs cfn-lint).
DEPLOY_EXTRA_MARKER = "cfnlint"
DEPLOY_EXTRA = "pip install -e '.[sandbox-deploy]'"


def local_endpoint(url: str | None) -> bool:
    host = urlsplit(url or "").hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sandbox_deploy_hint(endpoint_url: str | None, find: Callable[[str], object] = importlib.util.find_spec) -> str | None:
    """The fix when `orch deploy` talks to a local sandbox from a venv without CloudFormation's extra."""
    url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not local_endpoint(url) or find(DEPLOY_EXTRA_MARKER) is not None:
        return None
    return (f"the sandbox at {url} embeds no CloudFormation: it needs the sandbox-deploy extra ({DEPLOY_EXTRA}), "
            "then restart the sandbox (scripts/sandbox)")
