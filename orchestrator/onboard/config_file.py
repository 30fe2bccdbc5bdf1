"""The per-user config file `orch init` writes and every later command reads by default.

Where: the platform's config directory (``platformdirs.user_config_path("orch")``: on
Linux ``$XDG_CONFIG_HOME/orch/config.toml``, ``~/.config/orch/config.toml`` when unset),
or the ``--config`` path. What: only the settings init decides (region, selector, VPC);
any other setting already in the file is kept. Written only when it changes, so running
init again is a no-op that says so. Comments in an existing file are not kept (the file is
re-emitted from its parsed values), which is said when it is rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Mapping

FILE_NAME = "config.toml"
HEADER = "# orch settings, written by `orch init`; see the README's Configuration section.\n"


def user_config_path() -> Path | None:
    """The platform's per-user config file, or None where platformdirs is absent (the Lambda).

    platformdirs is a CLI dependency, imported here only (as for the default state path).
    """
    try:
        import platformdirs
    except ImportError:
        return None
    return platformdirs.user_config_path("orch") / FILE_NAME


def read(path: Path) -> dict[str, Any]:
    """The file's settings, or {} when it does not exist; a broken file is the loader's ConfigError."""
    if not path.is_file():
        return {}
    from orchestrator.config import _TomlFile  # the loader's one-line errors for unusable files

    return dict(_TomlFile(path)._read_file(path))


def merged(existing: Mapping[str, Any], decided: Mapping[str, Any]) -> dict[str, Any]:
    """``existing`` with init's decisions over it; a decision of None removes that key.

    The selector is replaced whole (it is one choice), never merged key by key.
    """
    result = dict(existing)
    for key, value in decided.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = dict(value) if isinstance(value, Mapping) else value
    return result


def dumps(data: Mapping[str, Any]) -> str:
    """TOML for orch's settings shape: scalars and lists at the top, then one table per section.

    Strings are written as JSON strings, which are valid TOML basic strings.
    """
    lines = [HEADER.rstrip("\n")]
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    for key, value in data.items():
        if key not in tables:
            lines.append(f"{_key(key)} = {_value(value)}")
    for name, table in tables.items():
        lines.append("")
        lines.append(f"[{_key(name)}]")
        for key, value in table.items():
            lines.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically: a reader never sees half a file, and a failed write leaves the old one."""
    text = dumps(data)
    if tomllib.loads(text) != json.loads(json.dumps(dict(data))):  # what is read back is what was meant
        raise ValueError("the settings do not survive a round trip through TOML")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
