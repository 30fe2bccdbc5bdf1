"""Echoing what a user gave back to them, without echoing five megabytes of it.

Every error message and log line that quotes an input goes through ``clip``: a 5 MB
region or a 1 MB event key becomes a short, readable line (CloudWatch Logs takes 256 KB
an event; a terminal takes less).
"""

from __future__ import annotations

ECHO_LIMIT = 200  # characters of any one input a message quotes


def clip(value: object, limit: int = ECHO_LIMIT, *, quote: bool = True) -> str:
    """``repr(value)`` (or ``str`` with ``quote=False``) cut to ``limit`` characters, saying how long it was."""
    text = repr(value) if quote else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


# -- secrets --------------------------------------------------------------------------
#
# A webhook URL is its own credential (Slack's path is the key) and a PagerDuty routing
# key is one outright. config/sections.py remembers each as it is read; every place that renders
# an error or a log line for a person or a log group (the CLI's error line, its --debug
# log handler, the Lambda's JSON lines) passes the text through ``redact``. Remembering,
# not pattern-matching: a documentation link in a message stays whole, a secret never does.

_SECRETS: set[str] = set()
_MIN_SECRET = 6  # shorter fragments would blank ordinary words
REDACTED = "<redacted>"


def remember_secret(value: str) -> None:
    """Mask ``value`` wherever it appears from now on; for a URL, also its path and query."""
    value = value.strip()
    if len(value) < _MIN_SECRET:
        return
    _SECRETS.add(value)
    scheme, sep, rest = value.partition("://")
    if sep:
        host, slash, path = rest.partition("/")
        if "@" in host:
            _SECRETS.add(host.rpartition("@")[0])
        if slash and len(path) + 1 >= _MIN_SECRET:
            _SECRETS.add("/" + path)


def redact(text: str) -> str:
    """``text`` with every remembered secret (and its percent-encoded or repr form) masked."""
    if not _SECRETS or not text:
        return text
    from urllib.parse import quote

    for secret in sorted(_SECRETS, key=len, reverse=True):
        for form in {secret, quote(secret, safe="/:"), repr(secret)[1:-1]}:
            if form and form in text:
                text = text.replace(form, REDACTED)
    return text


class RedactingFilter:
    """A logging filter: the message rendered once, secrets masked, before any handler writes it."""

    def filter(self, record: object) -> bool:
        import logging

        if isinstance(record, logging.LogRecord):
            message = record.getMessage()
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact("".join(logging.Formatter().formatException(record.exc_info)))
                record.exc_info = None
        return True
