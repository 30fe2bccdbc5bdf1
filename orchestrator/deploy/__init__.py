"""Deployment: the Lambda package, the stack, the stack set and the template."""
