"""The AWS actions each command needs, gathered from the adapters' declarations."""
