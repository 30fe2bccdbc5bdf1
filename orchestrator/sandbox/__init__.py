"""Embedded AWS (moto server on 127.0.0.1) and a simulated fleet with fake sshd endpoints.

Public API::

    from orchestrator.sandbox import Sandbox, FleetSpec, Mode
    with Sandbox(FleetSpec(instances=24, hung=3, seed=1, port=0)) as sb:
        sb.env(); sb.instances; sb.events; sb.advance(5); sb.now()
"""

from orchestrator.sandbox.moto_version import UnsupportedMoto, require_supported_moto

require_supported_moto()  # before any module below imports (and patches) moto's internals

from orchestrator.sandbox.endpoints import (
    BANNER,
    EndpointFleet,
    FdLimitError,
    Mode,
    ensure_fd_limit,
)
from orchestrator.sandbox.events import ACTIONS, EventKind, SandboxEvent, SimInstance
from orchestrator.sandbox.fleet import Sandbox
from orchestrator.sandbox.server import MotoServer, sandbox_env
from orchestrator.sandbox.spec import FleetSpec, assign_roles

__all__ = [
    "ACTIONS",
    "BANNER",
    "EndpointFleet",
    "EventKind",
    "FdLimitError",
    "FleetSpec",
    "Mode",
    "MotoServer",
    "Sandbox",
    "SandboxEvent",
    "SimInstance",
    "UnsupportedMoto",
    "assign_roles",
    "ensure_fd_limit",
    "sandbox_env",
]
