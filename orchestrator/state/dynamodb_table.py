"""The DynamoDB state table itself: its key schema, its two indexes, TTL, and creating it.

The store (``orchestrator.state.dynamodb``) reads and writes items; this module is what
``cfn/orchestrator.yaml`` declares for a deployed stack, for tables made by hand or by tests.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.aws import describe_aws_error, error_code
from orchestrator.state.store import StateError

SETUP_PERMISSIONS = frozenset(
    {"dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive", "dynamodb:DescribeTimeToLive"}
)

TTL_ATTRIBUTE = "expires_at_epoch"
INDEX_BY_INSTANCE = "by-instance"
INDEX_BY_TIME = "by-time"


def create_table(client: Any, table_name: str, *, wait_delay_s: int = 2, wait_attempts: int = 60) -> None:
    """Create the state table (on-demand, TTL on) if missing; safe to run again."""
    index_key = [
        {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
    ]
    try:
        client.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=index_key,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": name,
                    "KeySchema": [
                        {"AttributeName": hash_key, "KeyType": "HASH"},
                        {"AttributeName": range_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for name, hash_key, range_key in (
                    (INDEX_BY_INSTANCE, "gsi1pk", "gsi1sk"),
                    (INDEX_BY_TIME, "gsi2pk", "gsi2sk"),
                )
            ],
        )
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise StateError(
                f"cannot create the DynamoDB table {table_name}: {describe_aws_error(exc, 'dynamodb:CreateTable')}"
            ) from exc
    try:
        client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": wait_delay_s, "MaxAttempts": wait_attempts}
        )
        ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
            )
    except (ClientError, BotoCoreError) as exc:
        raise StateError(
            f"cannot finish setting up the DynamoDB table {table_name}: {describe_aws_error(exc)}"
        ) from exc
