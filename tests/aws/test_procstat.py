"""procstat: the process holding the memory, read from the agent's per-process metrics (moto)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from orchestrator.aws import Clients
from orchestrator.observe.procstat import TopProcess, top_process

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def put(cloudwatch, instance_id: str, process: str, rss_bytes: float, exe: str) -> None:
    cloudwatch.put_metric_data(
        Namespace="CWAgent",
        MetricData=[
            {
                "MetricName": "procstat_memory_rss",
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}, {"Name": "exe", "Value": exe}, {"Name": "process_name", "Value": process}],
                "Timestamp": NOW - timedelta(minutes=2),
                "Value": rss_bytes,
                "Unit": "Bytes",
            }
        ],
    )


@mock_aws
def test_the_largest_process_of_the_instance_is_named():
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    put(cloudwatch, "i-1", "ruby", 15_310_180 * 1024, "ruby")
    put(cloudwatch, "i-1", "sshd", 8 * 1024 * 1024, "sshd")
    put(cloudwatch, "i-2", "java", 30 * 1024**3, "java")  # another instance's process never wins
    found, error = top_process(cloudwatch, "CWAgent", "i-1", NOW)
    assert error is None and found == TopProcess("ruby", 15_310_180)


@mock_aws
def test_no_procstat_metrics_is_no_answer_and_no_error():
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    assert top_process(cloudwatch, "CWAgent", "i-1", NOW) == (None, None)


def test_an_aws_error_is_returned_not_raised():
    # Made as orch makes every client (orchestrator.aws.Clients): its hook names the denied action.
    cloudwatch = Clients(boto3.Session(region_name="us-east-1")).client("cloudwatch")
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("list_metrics", "AccessDenied", "not allowed")
        found, error = top_process(cloudwatch, "CWAgent", "i-1", NOW)
    assert found is None and error is not None and "cloudwatch:ListMetrics" in error


def test_evidence_names_procstats_largest_process_when_the_console_has_no_oom(aws, subnet):
    from orchestrator.act.evidence import EvidenceCollector
    from orchestrator.config import EvidenceSettings
    from orchestrator.model import Action, ActionKind, Verdict, VerdictKind
    from tests.aws.conftest import launch
    from tests.builders import facts, instance

    (instance_id,) = launch(aws, subnet, 1)
    put(aws.cloudwatch, instance_id, "ruby", 12 * 1024**3, "ruby")
    target = facts(instance(1))
    verdict = Verdict(instance_id, VerdictKind.MEMORY_FORECAST, ("memory 90% rising",))
    collector = EvidenceCollector(aws, EvidenceSettings(), {instance_id: target}, {instance_id: verdict}, "sweep-1",
                                  lambda: NOW, memory_namespace="CWAgent")
    found = collector(Action(instance_id, ActionKind.REBOOT, "ahead of exhaustion"))
    assert (found["process"], found["process_rss_kb"], found["process_source"]) == ("ruby", 12 * 1024**2, "procstat")
