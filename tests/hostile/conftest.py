"""The moto fixtures of tests/aws, for the hostile drivers that sweep."""

from tests.aws.conftest import aws, backoffs, plan, store, subnet  # noqa: F401
