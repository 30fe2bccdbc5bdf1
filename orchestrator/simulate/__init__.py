"""``orch simulate``: the same decisions over simulated days, to judge a policy before it meets a fleet."""

from orchestrator.simulate.run import Figures, Policy, simulate
from orchestrator.simulate.scenarios import BY_NAME, SCENARIOS, Scenario

__all__ = ["BY_NAME", "SCENARIOS", "Figures", "Policy", "Scenario", "simulate"]
