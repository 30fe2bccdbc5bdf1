"""The selector's text form, ``key=value,key2=value2``: the command line's, ORCH_SELECTOR's and ``orch init``'s."""

from __future__ import annotations

from orchestrator.config.errors import ConfigError
from orchestrator.echo import clip


def parse_selector(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` as used on the command line and in ORCH_SELECTOR.

    A key given twice is refused: ``a=1,a=2`` has no meaning a person would agree on.
    """
    result: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"selector: {clip(part)} is not KEY=VALUE (example: orch:managed=true)")
        if key.strip() in result:
            raise ConfigError(f"selector: tag {clip(key.strip())} is given twice; give each tag once (KEY=VALUE,OTHER=VALUE)")
        result[key.strip()] = value.strip()
    return result
