"""The calls on the state table, each under one rule: DynamoDB's errors become one line.

A failed call is a ``StateError`` that names the table and the operation (a missing
table says how to make it); a conditional write that lost is ``ConditionFailed``, whose
meaning is the caller's. Every call goes through botocore's retry policy
(aws.RETRY_CONFIG). The one thing it does not cover, items a batch call leaves
unprocessed, is resent here under a bounded tenacity policy.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from orchestrator.aws import describe_aws_error, error_code
from orchestrator.state.dynamodb_items import NO_SORT, item_key
from orchestrator.state.store import StateError

BATCH_ATTEMPTS = 6


class ConditionFailed(Exception):
    """A conditional write lost: what that means is the caller's business."""


class _Unprocessed(Exception):
    pass


class TableCalls:
    """One table's client, with DynamoDB's errors translated and its batches and queries finished."""

    def __init__(self, client: Any, table_name: str, sleep: Callable[[float], None]) -> None:
        self._client = client
        self.table_name = table_name
        self._sleep = sleep

    def _describe(self, exc: BaseException, operation: str) -> str:
        if error_code(exc) == "ResourceNotFoundException":
            region = getattr(getattr(self._client, "meta", None), "region_name", None) or "this region"
            return (
                f"the DynamoDB table {self.table_name} does not exist in {region}: create it by deploying the "
                f"stack in cfn/ or with orchestrator.state.dynamodb.create_table(client, {self.table_name!r}), "
                "or point --state at an existing table"
            )
        return f"state store dynamodb://{self.table_name}: " + describe_aws_error(exc, f"dynamodb:{operation}")

    @contextmanager
    def aws(self, operation: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConditionFailed() from exc
            raise StateError(self._describe(exc, operation)) from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise StateError(self._describe(exc, operation)) from exc

    def get(self, pk: str, sk: str = NO_SORT) -> dict[str, Any] | None:
        with self.aws("GetItem"):
            response = self._client.get_item(TableName=self.table_name, Key=item_key(pk, sk), ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def batch(self, operation: str, request: dict[str, Any], collect: Callable[[dict[str, Any]], None]) -> None:
        """Send one batch call and resend whatever DynamoDB leaves unprocessed, a bounded number of times."""
        pending = request
        retrying = Retrying(
            stop=stop_after_attempt(BATCH_ATTEMPTS),
            wait=wait_exponential(multiplier=0.1, max=3),
            retry=retry_if_exception_type(_Unprocessed),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    with self.aws(operation):
                        if operation == "BatchGetItem":
                            response = self._client.batch_get_item(RequestItems=pending)
                            unprocessed = response.get("UnprocessedKeys")
                        else:
                            response = self._client.batch_write_item(RequestItems=pending)
                            unprocessed = response.get("UnprocessedItems")
                    collect(response)
                    if unprocessed:
                        pending = unprocessed
                        raise _Unprocessed()
        except _Unprocessed:
            raise StateError(
                f"state store dynamodb://{self.table_name}: {operation} still left items unprocessed after "
                f"{BATCH_ATTEMPTS} attempts: the table is being throttled; retry the sweep later"
            ) from None

    def query(self, limit: int, **kwargs: Any) -> list[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        items: list[dict[str, Any]] = []
        with self.aws("Query"):
            for page in paginator.paginate(
                TableName=self.table_name,
                ScanIndexForward=False,
                PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 100)},
                **kwargs,
            ):
                items.extend(page.get("Items", []))
        return items[:limit]
