"""Lambda entry points: thin shells over ``orchestrator.sweep.pipeline`` (see heal.py)."""
