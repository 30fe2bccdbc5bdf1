"""What a deploy raises: a refusal before anything changed, or a failure on the way; the message says what to do."""


class DeployError(Exception):
    """AWS refused or the stack failed; the message says what happened and what to do."""


class DeployUsageError(DeployError):
    """The request itself is wrong (parameters, zip, template); nothing was changed."""
