"""Settings from every source, in order: defaults < TOML file < ``ORCH_*`` environment < command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from orchestrator.config.errors import ConfigError, describe_validation_error
from orchestrator.config.settings import Settings
from orchestrator.config.sources import _check_env_names, _Environment, _TomlFile
from orchestrator.echo import clip


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and key != "selector":
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged



def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    default_path: Path | None = None,
) -> Settings:
    """Build Settings from every source, raising ConfigError with a one-line message.

    ``default_path`` is the per-user file (the CLI passes the platform config directory's
    ``config.toml``, which ``orch init`` writes): read only when neither ``config_path`` nor
    ``ORCH_CONFIG`` names a file, and only if it exists, so a machine without one behaves
    as before. The Lambda passes none: its settings come from its environment alone.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources = []
    path = config_path or env.get("ORCH_CONFIG") or (default_path if default_path is not None and default_path.is_file() else None)
    if path:
        data = _merge(data, _TomlFile(Path(path))())
        sources.append(clip(str(path), quote=False))
    _check_env_names(env)
    try:
        env_data = _Environment(env)()
    except ValueError as exc:  # pydantic-settings' SettingsError: a value it could not decode
        raise ConfigError(f"ORCH_* environment: {clip(str(exc), quote=False)}") from None
    if env_data:
        data = _merge(data, env_data)
        sources.append("ORCH_* environment")
    if overrides:
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
        sources.append("command line")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, " / ".join(sources))) from None
