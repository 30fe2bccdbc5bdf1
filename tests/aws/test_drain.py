"""Case 26 (issue 20): a load-balanced instance is drained before its reboot and put back once it answers.

The policy of when (``plan_drain``) is pure and table-tested; the executor's steps run
against moto (ELBv2 target groups, Auto Scaling Standby), the call order is recorded by
the before-send hook (tests/faults.py), and AWS's refusal of EnterStandby is injected.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.act import drain
from orchestrator.act.drain import DrainPolicy, Membership, Registration
from orchestrator.act.executor import AwsExecutor
from orchestrator.iam import permissions
from orchestrator.model import Action, ActionKind, OutcomeStatus, Plan
from tests.aws.conftest import REGION, launch
from tests.aws.test_executor import MemoryJournal
from tests.faults import FaultPlan, error

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1"
OTHER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/admin/2"
ON = DrainPolicy(max_drain_seconds=60, poll_seconds=1)


@pytest.mark.parametrize(
    ("member", "standby", "deregister"),
    [
        (Membership("i-1"), None, ()),  # nothing in front of it: rebooted as before
        (Membership("i-1", registrations=(Registration(TG, 80, 30),)), None, (TG,)),
        (Membership("i-1", "asg", "ELB"), "asg", ()),  # judged by ELB health checks: Standby
        (Membership("i-1", "asg", "EC2"), None, ()),  # EC2 health checks, no load balancer: a reboot is not a failure
        (Membership("i-1", "asg", "EC2", asg_target_groups=(TG,), registrations=(Registration(TG, 80),)), "asg", ()),  # Standby deregisters it
        (Membership("i-1", "asg", "ELB", asg_target_groups=(TG,), registrations=(Registration(TG, 80), Registration(OTHER, 8080))), "asg", (OTHER,)),
    ],
)
def test_case_26_when_to_drain_is_data(member, standby, deregister) -> None:
    step = drain.plan_drain(member, ON)
    if standby is None and not deregister:
        assert step is None
        return
    assert step is not None and step.standby_group == standby and tuple(r.target_group_arn for r in step.deregister) == deregister
    assert drain.plan_drain(member, DrainPolicy(enabled=False)) is None


def test_case_26_the_drain_wait_is_the_deregistration_delay_bounded() -> None:
    member = Membership("i-1", registrations=(Registration(TG, 80, 30), Registration(OTHER, 80, 900)))
    assert drain.plan_drain(member, ON).wait_seconds == 60  # type: ignore[union-attr]
    assert drain.plan_drain(Membership("i-1", registrations=(Registration(TG, 80, 20),)), ON).wait_seconds == 20  # type: ignore[union-attr]


@pytest.fixture
def web(aws, subnet) -> dict[str, Any]:
    """Two instances in an instance target group (port 80), one standalone instance outside it."""
    vpc = aws.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    elb = aws.client("elbv2")
    tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])
    behind, alone = launch(aws, subnet, 2)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": behind, "Port": 80}])
    return {"tg": tg, "behind": behind, "alone": alone, "elb": elb}


def registered(elb: Any, tg: str) -> set[str]:
    return {d["Target"]["Id"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] != "unused"}


def reboot(*ids: str, asg: str | None = None) -> Plan:
    return Plan(actions=tuple(Action(i, ActionKind.REBOOT, "test", asg_name=asg) for i in ids))


def test_case_26_a_target_is_deregistered_rebooted_and_registered_again_once_it_answers(aws, web, monkeypatch) -> None:
    calls = FaultPlan().install(monkeypatch)
    asked: list[str] = []

    def answers(instance_id: str) -> bool:
        asked.append(instance_id)
        assert web["behind"] not in registered(web["elb"], web["tg"])  # still out while it boots
        return len(asked) >= 2  # answers on the second probe

    slept: list[float] = []
    executor = AwsExecutor(aws, MemoryJournal(), drain_policy=ON, verify=answers, sleep=slept.append)
    outcomes = {o.action.instance_id: o for o in executor.execute(reboot(web["behind"], web["alone"]))}
    assert all(o.status is OutcomeStatus.DONE for o in outcomes.values())
    assert "drained first (deregistered from 1 target group(s)), put back after it answered" in outcomes[web["behind"]].detail
    assert "drained" not in outcomes[web["alone"]].detail
    assert registered(web["elb"], web["tg"]) == {web["behind"]}
    order = [r.operation for r in calls.log if r.operation in ("DeregisterTargets", "RebootInstances", "RegisterTargets")]
    assert order == ["DeregisterTargets", "RebootInstances", "RegisterTargets"]
    (dereg,) = [r.params for r in calls.log if r.operation == "DeregisterTargets"]
    assert (dereg["Targets.member.1.Id"], dereg["Targets.member.1.Port"]) == ([web["behind"]], ["80"])  # the port it had
    assert asked == [web["behind"], web["behind"]] and slept == [1.0]  # polled, injected sleep: no wall-clock wait


def test_case_26_an_instance_that_never_answers_is_left_drained_with_the_command_to_put_it_back(aws, web) -> None:
    executor = AwsExecutor(aws, MemoryJournal(), drain_policy=DrainPolicy(verify_seconds=10, poll_seconds=5), verify=lambda i: False,
                           sleep=lambda s: None)
    (outcome,) = executor.execute(reboot(web["behind"]))
    assert outcome.status is OutcomeStatus.DONE
    assert "left so" in outcome.detail and f"aws elbv2 register-targets --target-group-arn {web['tg']} --targets Id={web['behind']},Port=80" in outcome.detail
    assert registered(web["elb"], web["tg"]) == set()


def test_case_26_the_wait_is_cut_to_the_deadline(aws, web) -> None:
    polls: list[str] = []
    executor = AwsExecutor(aws, MemoryJournal(), drain_policy=DrainPolicy(verify_seconds=300, poll_seconds=5),
                           verify=lambda i: polls.append(i) or False, sleep=lambda s: None, time_left=lambda: 70.0)
    executor.execute(reboot(web["behind"]))
    assert len(polls) == 3  # 70 s left - 60 s reserve = 10 s: two waits of 5 s, three probes, not 61


@pytest.fixture
def group(aws, subnet) -> dict[str, str]:
    scaling = aws.client("autoscaling")
    template = aws.ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    scaling.create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]},
        MinSize=1, MaxSize=3, DesiredCapacity=2, VPCZoneIdentifier=subnet, HealthCheckType="ELB", HealthCheckGracePeriod=60,
    )
    members = [i["InstanceId"] for i in scaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["Instances"]]
    return {"member": members[0]}


def lifecycle(aws: Any, instance_id: str) -> str:
    (found,) = aws.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return str(found["LifecycleState"])


def test_case_26_a_member_judged_by_elb_goes_to_standby_and_back_in_service(aws, group, monkeypatch) -> None:
    calls = FaultPlan().install(monkeypatch)
    seen: list[str] = []
    executor = AwsExecutor(aws, MemoryJournal(), drain_policy=ON, verify=lambda i: seen.append(lifecycle(aws, i)) or True, sleep=lambda s: None)
    (outcome,) = executor.execute(reboot(group["member"], asg="web"))
    assert outcome.status is OutcomeStatus.DONE and "Standby in web" in outcome.detail
    assert seen == ["Standby"] and lifecycle(aws, group["member"]) == "InService"
    (enter,) = [r.params for r in calls.log if r.operation == "EnterStandby"]
    assert enter["ShouldDecrementDesiredCapacity"] == ["true"]  # the group launches nothing in its place
    order = [r.operation for r in calls.log if r.operation in ("EnterStandby", "RebootInstances", "ExitStandby")]
    assert order == ["EnterStandby", "RebootInstances", "ExitStandby"]


def test_case_26_a_drain_aws_refuses_means_no_reboot(aws, group, monkeypatch) -> None:
    calls = FaultPlan().install(monkeypatch)
    calls.on("EnterStandby", fault=error("ValidationError", "would violate the group's minimum size"))
    (outcome,) = AwsExecutor(aws, MemoryJournal(), drain_policy=ON, verify=lambda i: True, sleep=lambda s: None).execute(reboot(group["member"], asg="web"))
    assert outcome.status is OutcomeStatus.SKIPPED and "could not be drained first" in outcome.detail and "minimum size" in outcome.detail
    assert not [r for r in calls.log if r.operation == "RebootInstances"]


def test_case_26_drain_actions_are_declared_and_granted_only_when_on() -> None:
    from orchestrator.config import load_settings

    assert drain.PERMISSIONS <= permissions.for_settings(load_settings(environ={"ORCH_SAFETY_DRAIN_SECONDS": "120"}))
    assert not drain.PERMISSIONS - permissions.SWEEP & permissions.for_settings(load_settings(environ={}))
    assert REGION == "us-east-1"
