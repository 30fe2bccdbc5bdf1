"""The one model of a crawler box; only the sandbox and the simulator use it."""
