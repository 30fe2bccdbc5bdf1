"""Pure decisions: diagnose, memory, history, rungs, plan, patterns. No boto3, no clock."""
