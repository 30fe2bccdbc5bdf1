"""The TOML file and the ``ORCH_*`` environment, read by pydantic-settings' own sources with orch's checks.

pydantic-settings reads both (nested on the first ``_`` after the section name:
``ORCH_PROBE_CONNECT_TIMEOUT`` is ``probe.connect_timeout``), so a new field is
configurable everywhere the moment it exists. What it does not do, or says less
clearly, is here: a misspelt variable is an error with the closest known name, a
section that is not a table is refused, a file that is not UTF-8 or not TOML is one line.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from orchestrator.config.errors import ConfigError
from orchestrator.config.selector import parse_selector
from orchestrator.config.settings import ENV_PREFIX, SECTIONS, Settings
from orchestrator.echo import clip


def env_variables() -> dict[str, tuple[str, ...]]:
    """Every ORCH_* variable orch reads, with the setting it sets."""
    known: dict[str, tuple[str, ...]] = {}
    for name in Settings.model_fields:
        if name in SECTIONS:
            for sub in SECTIONS[name].model_fields:
                known[f"{ENV_PREFIX}{name}_{sub}".upper()] = (name, sub)
        else:
            known[f"{ENV_PREFIX}{name}".upper()] = (name,)
    return known


def _check_env_names(environ: Mapping[str, str]) -> None:
    """pydantic-settings ignores variables it does not know; a misspelt one must not be a no-op.

    Names are read without regard to case, so ``ORCH_DRY_RUN`` and ``orch_dry_run`` are one
    setting spelt twice; which one wins would depend on the environment's order. Two
    spellings of one setting are refused, naming both.
    """
    known = env_variables()
    spellings: dict[str, list[str]] = {}
    for var in environ:
        if var.upper().startswith(ENV_PREFIX):
            spellings.setdefault(var.upper(), []).append(var)
    for upper, names in spellings.items():
        if len(names) > 1:
            listed = " and ".join(clip(n, 60, quote=False) for n in sorted(names))
            raise ConfigError(
                f"{listed} are one setting spelt {len(names)} ways (orch reads these names whatever their case): "
                f"unset all but one, e.g. keep {upper[:60]}"
            )
    for var in environ:
        upper = var.upper()
        if not upper.startswith(ENV_PREFIX) or upper == "ORCH_CONFIG" or upper in known:
            continue
        close = difflib.get_close_matches(upper[:100], known, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see the README's configuration section"
        raise ConfigError(f"{clip(var, quote=False)}: unknown setting{hint}")


def _list_variables() -> frozenset[str]:
    found = set()
    for var, path in env_variables().items():
        model: Any = Settings if len(path) == 1 else SECTIONS[path[0]]
        if getattr(model.model_fields[path[-1]].annotation, "__origin__", None) in (tuple, list):
            found.add(var)
    return frozenset(found)


def _webhooks_json(value: Any) -> Any:
    """ORCH_NOTIFY_WEBHOOKS: a JSON list of targets (their URLs and keys are secrets, kept out of files)."""
    text = str(value).strip()
    if text in ("", ","):
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"ORCH_NOTIFY_WEBHOOKS is not JSON ({exc.msg} at character {exc.pos}): "
            'give a list like [{"url": "https://...", "format": "slack"}]'
        ) from None


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (the Lambda passes its own).

    Lists and the selector keep orch's documented forms (``reboot,stop-start``,
    ``key=value,key2=value2``) instead of pydantic-settings' JSON.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # An empty list variable (a template sets ORCH_MEMORY_SSM_COMMANDS="" when no
        # command is configured) means an empty list; pydantic-settings would pass ''.
        environ = {k: ("," if v == "" and k.upper() in _LIST_VARIABLES else v) for k, v in self._environ.items()}
        return parse_env_vars(environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        if field_name == "selector":
            return parse_selector(value)
        if field_name == "webhooks":
            return _webhooks_json(value)
        return [part.strip() for part in str(value).split(",") if part.strip()]


class _TomlFile(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, with one line for each way a file can be unusable."""

    def __init__(self, path: Path) -> None:
        try:
            path.exists()
        except OSError as exc:  # a name too long for the file system, a path through a file...
            raise ConfigError(f"config file {clip(str(path), quote=False)} cannot be read: {exc.strerror or exc}") from None
        if not path.exists():
            raise ConfigError(f"config file {clip(str(path), quote=False)} does not exist (set --config or ORCH_CONFIG to a TOML file)")
        if not path.is_file():
            raise ConfigError(f"config file {clip(str(path), quote=False)} is not a file (set --config or ORCH_CONFIG to a TOML file)")
        self._shown = clip(str(path), quote=False)
        super().__init__(Settings, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            raw = Path(file_path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"config file {self._shown} cannot be read: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConfigError(f"config file {self._shown} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as UTF-8") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {self._shown} is not valid TOML: {clip(str(exc), quote=False)}") from None
        except RecursionError:  # tomllib parses nested arrays and inline tables recursively: 50,000 `[` exhaust the stack
            raise ConfigError(f"config file {self._shown} is not valid TOML: arrays or tables nested too deeply") from None
        for name in SECTIONS:
            if name in data and not isinstance(data[name], dict):
                raise ConfigError(
                    f"config file {self._shown}: {name} must be a table ([{name}] with settings under it), got {clip(data[name])}"
                )
        return data


_LIST_VARIABLES = _list_variables()
