"""Probe settings for end-to-end tests about what a person sees, not about probing.

The sandbox's own settings (orchestrator/sandbox/demo.py, SANDBOX_OVERRIDES) make one sweep
over a fleet with hung boxes take about 7 s: a 2 s banner wait, a 3 s debounce, a second
2 s wait. A test of tables, terminals or `orch top` runs dozens of sweeps and judges only
how the verdicts are shown; on loopback a healthy fake sshd's banner arrives in
milliseconds, so a 1 s banner wait and half-second retries give the same verdicts in about
half the time. Tests of probing, debounce and healing keep the sandbox's settings.
"""

from __future__ import annotations

from orchestrator.sandbox.spec import FleetSpec

QUICK_PROBES = {
    "ORCH_PROBE_BANNER_TIMEOUT": "1.0",
    "ORCH_PROBE_RETRY_WINDOW": "0.5",
    "ORCH_SAFETY_DEBOUNCE_SECONDS": "0.5",
}


def quick_probes(env: dict[str, str]) -> dict[str, str]:
    """``env`` (a served sandbox's exports) with the quick probe settings over it."""
    return {**env, **QUICK_PROBES}


# The end-to-end modules run in two groups at once (tests/conftest.py, work_unit): the
# first builds its fleets in the sandbox's own 127.20.0.0/16, the second here, so two fleets
# never share an address (their fake sshds bind each instance's address).
SECOND_VPC = "127.21.0.0/16"


def in_second_vpc(spec: FleetSpec) -> FleetSpec:
    return spec.model_copy(update={"vpc_cidr": SECOND_VPC})
