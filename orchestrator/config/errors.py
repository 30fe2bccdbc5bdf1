"""How a wrong setting is told: one line that names the field, what is allowed and where it came from.

No message echoes more than ~200 characters of any input, and a webhook's URL and key
(secrets) never appear at all.
"""

from __future__ import annotations

import difflib

from pydantic import ValidationError

from orchestrator.config.sections import WebhookTarget
from orchestrator.config.settings import SECTIONS, Settings
from orchestrator.echo import clip


class ConfigError(Exception):
    """A setting is wrong; the message names the field, what is allowed, and where it came from."""


def describe_validation_error(exc: ValidationError, source: str = "") -> str:
    lines = []
    for err in exc.errors():
        where = clip(".".join(str(p) for p in err["loc"]), quote=False) or "settings"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1])[:100], _FIELD_NAMES, n=1)
            lines.append(f"{where}: unknown setting" + (f"; did you mean {close[0]}?" if close else ""))
        elif "webhooks" in err["loc"]:
            lines.append(f"{where}: {message} (the value is not shown: a webhook's URL and key are secrets)")
        else:
            lines.append(f"{where}: {message} (got {clip(err.get('input'))})")
    suffix = f" [from {source}]" if source else ""
    return clip("invalid configuration" + suffix + ": " + "; ".join(lines), 600, quote=False)


_FIELD_NAMES = sorted({*Settings.model_fields, *WebhookTarget.model_fields, *(f for m in SECTIONS.values() for f in m.model_fields)})
