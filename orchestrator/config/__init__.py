"""Every setting of orch, validated once, with one clear line per mistake.

Precedence: defaults < TOML file (``--config``, else ``ORCH_CONFIG``, else the per-user
file ``orch init`` writes, when it exists) < ``ORCH_*`` environment variables <
command-line flags. The TOML and ``ORCH_*`` layers are read by
pydantic-settings (its TOML source and its environment source, nested on the first
``_`` after the section name: ``ORCH_PROBE_CONNECT_TIMEOUT`` is ``probe.connect_timeout``),
so a new field is configurable everywhere the moment it exists. What pydantic-settings
does not do, or says less clearly, stays here: a misspelt variable is an error with the
closest known name, a section that is not a table is refused, a file that is not UTF-8
or not TOML is one line, and no message echoes more than ~200 characters of any input.

One job a module, each name importable from here (``from orchestrator.config import
Settings`` is the spelling the code uses): ``sections`` (one model per section),
``settings`` (the whole), ``sources`` (the file and the environment), ``selector``
(its text form), ``errors`` (one line per mistake), ``loading`` (every source in order).
"""

from orchestrator.config.errors import ConfigError, describe_validation_error
from orchestrator.config.loading import load_settings
from orchestrator.config.sections import (
    ChronicSettings,
    EvidenceSettings,
    MemorySettings,
    NotifySettings,
    ProbeSettings,
    SafetySettings,
    WebhookTarget,
)
from orchestrator.config.selector import parse_selector
from orchestrator.config.settings import ENV_PREFIX, REGION_NAME, SECTIONS, Settings
from orchestrator.config.sources import env_variables

__all__ = [
    "ENV_PREFIX",
    "REGION_NAME",
    "SECTIONS",
    "ChronicSettings",
    "ConfigError",
    "EvidenceSettings",
    "MemorySettings",
    "NotifySettings",
    "ProbeSettings",
    "SafetySettings",
    "Settings",
    "WebhookTarget",
    "describe_validation_error",
    "env_variables",
    "load_settings",
    "parse_selector",
]
