"""A sweep's SNS Publish as AWS Chatbot and e-mail both need it (moto, the call recorder).

Chatbot subscribes to the topic over https and drops anything but its custom-notification
schema; every other protocol (e-mail, SMS, SQS, Lambda) gets ``default``: the SNS API
reference for ``MessageStructure=json``. Moto delivers per protocol the same way, so an
SQS subscriber here stands in for e-mail: it must see exactly the plain text.
"""

from __future__ import annotations

import json

from orchestrator.config import Settings
from orchestrator.sweep.pipeline import SweepDeps, sweep
from tests.aws.conftest import launch
from tests.builders import ScriptedProber
from tests.chatbot_schema import documented_shape_problems


def subscribed_queue(aws, topic: str) -> str:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="mailbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def received(aws, url: str) -> list[dict]:
    messages = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def run(aws, store, prober, notify: dict):
    config = Settings.model_validate({"safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}, "notify": notify})
    return sweep(config, SweepDeps(clients=aws, store=store, prober=prober))


def test_the_publish_carries_the_chatbot_notification_and_the_plain_text_for_everyone_else(aws, subnet, store, plan):
    topic = aws.client("sns").create_topic(Name="orch")["TopicArn"]
    url = subscribed_queue(aws, topic)
    ids = launch(aws, subnet, 4)
    report = run(aws, store, ScriptedProber({ids[0]}), {"topic_arn": topic})
    (publish,) = plan.reached_server("Publish")
    assert publish.params["MessageStructure"] == ["json"]
    (raw,) = publish.params["Message"]
    message = json.loads(raw)
    assert set(message) == {"default", "https"}
    subject, body = report.message
    assert publish.params["Subject"] == [subject] and message["default"] == body
    chat = json.loads(message["https"])
    assert documented_shape_problems(chat) == []
    assert chat["metadata"]["eventType"] == "orch-action" and chat["metadata"]["relatedResources"] == [ids[0]]
    assert chat["id"] == report.sweep_id
    # the e-mail's stand-in gets the text as it always did, not JSON
    (envelope,) = received(aws, url)
    assert envelope["Message"] == body and envelope["Subject"] == subject


def test_chatbot_off_publishes_the_plain_text_alone(aws, subnet, store, plan):
    topic = aws.client("sns").create_topic(Name="orch")["TopicArn"]
    url = subscribed_queue(aws, topic)
    ids = launch(aws, subnet, 4)
    report = run(aws, store, ScriptedProber({ids[1]}), {"topic_arn": topic, "chatbot": False})
    (publish,) = plan.reached_server("Publish")
    assert "MessageStructure" not in publish.params
    assert publish.params["Message"] == [report.message[1]]
    (envelope,) = received(aws, url)
    assert envelope["Message"] == report.message[1]
