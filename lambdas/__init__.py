"""Lambda entry points: thin shells over ``orchestrator.sweep`` (see heal.py)."""
