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
import tomllib
from pathlib import Path
from typing import Any, Mapping

from orchestrator import files
from orchestrator.echo import clip

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
    from orchestrator.config.sources import _TomlFile  # the loader's one-line errors for unusable files

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

    Strings are TOML basic strings (``_string``): UTF-8 as is, control characters escaped.
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
    return key if bare else _string(key)


def _string(text: str) -> str:
    """A TOML basic string. Not ``json.dumps``: it writes 🔥 as the surrogate pair
    ``\\ud83d\\udd25``, which TOML refuses (an escape must be a Unicode scalar value), and
    leaves DEL (U+007F) bare, which TOML refuses too. Characters outside the control
    ranges are written as themselves (the file is UTF-8)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate (undecodable bytes kept by surrogateescape): not text
            raise ValueError(f"the value {text[:40]!r} holds a character that is not Unicode text (U+{code:04X})")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


class ConfigFileError(ValueError):
    """The config cannot be written as asked (a value TOML cannot hold, a path that is not a file); one line."""


def render(data: Mapping[str, Any]) -> str:
    """The file's text, checked: it parses as TOML and reads back as ``data``; ConfigFileError otherwise."""
    try:
        text = dumps(data)
        back = tomllib.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        raise ConfigFileError(f"the settings cannot be written as TOML: {clip(str(exc), quote=False)}") from None
    if back != json.loads(json.dumps(dict(data))):  # what is read back is what was meant
        raise ConfigFileError("the settings do not survive a round trip through TOML")
    return text


def prepare(path: Path, data: Mapping[str, Any]) -> files.Pending:
    """Everything that can fail before anything is changed: the text rendered and checked,
    the path checked (a regular file or absent, not a symlink) and the new file written
    beside it. ``commit()`` puts it in place; ``discard()`` leaves the old one."""
    text = render(data)
    try:
        return files.prepare(path, text, make_parent=True)
    except files.FileRefused as exc:
        raise ConfigFileError(f"config file {exc}") from None


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically: a reader never sees half a file, and a failed write leaves the old one."""
    pending = prepare(path, data)
    try:
        pending.commit()
    except files.FileRefused as exc:
        raise ConfigFileError(f"config file {exc}") from None
