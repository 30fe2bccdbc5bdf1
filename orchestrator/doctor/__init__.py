"""`orch doctor`: pure checks (checks.py, network.py) over facts gathered by gather.py."""
