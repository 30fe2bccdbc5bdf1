"""Build the simulated fleet's AWS side with boto3, exactly as a user would.

Only public API calls against the sandbox's moto server: VPC, two subnets in two
AZs, tagged instances, a launch template and an Auto Scaling group, two unmanaged
bystanders. Everything lives in a VPC inside 127.0.0.0/8, so every private IP is a
loopback address the fake sshd endpoints can bind. Nothing here knows about moto.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any, Sequence

MANAGED_TAG = ("orch:managed", "true")
OPT_OUT_TAG = ("orch:skip", "true")
ASG_NAME = "orch-sandbox-asg"
LAUNCH_TEMPLATE_NAME = "orch-sandbox-lt"
AWS_RESERVED_PER_SUBNET = 5  # network, router, DNS, future use, broadcast
REPLACEMENT_HEADROOM = 64  # ASG replacements land in the first subnet too


@dataclass(frozen=True, slots=True)
class Launched:
    """One instance as DescribeInstances reported it after the build."""

    instance_id: str
    name: str
    private_ip: str
    availability_zone: str
    subnet_id: str
    image_id: str
    instance_type: str
    asg_name: str | None
    managed: bool
    opt_out: bool


@dataclass(frozen=True, slots=True)
class BuiltFleet:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    managed: tuple[Launched, ...]  # index i is crawler-(i+1)
    unmanaged: tuple[Launched, ...]


def subnet_cidrs(vpc_cidr: str, per_subnet: int) -> tuple[str, str]:
    """Two equal subnets big enough for ``per_subnet`` instances each.

    Small fleets get the familiar x.y.1.0/24 and x.y.2.0/24; larger ones the next
    power of two that fits (a /24 holds 251 instances after AWS's 5 reserved).
    """
    network = ipaddress.ip_network(vpc_cidr)
    for prefix in range(24, network.prefixlen, -1):
        if 2 ** (32 - prefix) - AWS_RESERVED_PER_SUBNET >= per_subnet:
            break
    else:
        raise ValueError(f"{vpc_cidr} is too small for two subnets of {per_subnet} instances")
    candidates = list(network.subnets(new_prefix=prefix))
    first, second = (candidates[1], candidates[2]) if len(candidates) >= 3 else (candidates[0], candidates[1])
    return str(first), str(second)


def pick_image(ec2: Any) -> str:
    """A stable AMI id from moto's catalogue: the lowest id among Amazon Linux 2 images.

    Filtered, because listing all of Amazon's ~1300 images costs moto most of a second.
    """
    images = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*x86_64-gp2"]}]
    )["Images"] or ec2.describe_images(Owners=["amazon"])["Images"]
    if not images:
        raise RuntimeError("the endpoint lists no Amazon images to launch from")
    return min(image["ImageId"] for image in images)


def build_fleet(
    ec2: Any,
    autoscaling: Any,
    *,
    vpc_cidr: str,
    standalone: int,
    asg_members: int,
    opt_out: Sequence[int],
    unmanaged: int,
    instance_type: str,
    tagged: bool = True,
    ssh_port: int = 22,
) -> BuiltFleet:
    """Create everything; managed index i (0-based) is named ``crawler-(i+1)``.

    ``tagged=False`` launches the managed instances (and the group) without the selector
    tag: the fleet a person has before `orch init`. They are still the managed ones
    (``Launched.managed``): the instances orch is meant to heal once adopted.

    Standalone instances alternate between the two subnets (index order = launch
    order = address order); ASG members follow them, ordered by address, because moto
    puts every ASG instance in the group's first subnet.
    """
    per_subnet = (standalone + 1) // 2 + asg_members + unmanaged + REPLACEMENT_HEADROOM
    cidr_a, cidr_b = subnet_cidrs(vpc_cidr, per_subnet)
    vpc_id = ec2.create_vpc(
        CidrBlock=vpc_cidr,
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "orch-sandbox"}]}],
    )["Vpc"]["VpcId"]
    zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])[:2]
    subnet_ids = tuple(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in ((cidr_a, zones[0]), (cidr_b, zones[-1]))
    )
    image_id = pick_image(ec2)
    opt_out_set = set(opt_out)
    group_id = _open_path(ec2, vpc_id, ssh_port)

    ids: list[str] = []
    per_subnet_ids = [
        _run(ec2, image_id, instance_type, subnet_ids[k], len(range(k, standalone, 2)), [MANAGED_TAG] if tagged else [], group_id)
        for k in (0, 1)
    ]
    for index in range(standalone):
        ids.append(per_subnet_ids[index % 2][index // 2])
    if asg_members:
        ids.extend(_create_asg(ec2, autoscaling, image_id, instance_type, subnet_ids, asg_members, group_id, tagged))
    for index, instance_id in enumerate(ids):
        tags = [{"Key": "Name", "Value": f"crawler-{index + 1}"}]
        if index in opt_out_set:
            tags.append({"Key": OPT_OUT_TAG[0], "Value": OPT_OUT_TAG[1]})
        ec2.create_tags(Resources=[instance_id], Tags=tags)

    bystanders = [
        _run(ec2, image_id, instance_type, subnet_ids[k], len(range(k, unmanaged, 2)), [], group_id) for k in (0, 1)
    ]
    other_ids = [bystanders[index % 2][index // 2] for index in range(unmanaged)]
    for index, instance_id in enumerate(other_ids):
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": f"unmanaged-{index + 1}"}])

    described = describe(ec2, ids + other_ids)
    return BuiltFleet(
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        managed=tuple(dataclasses.replace(described[i], managed=True) for i in ids),
        unmanaged=tuple(described[i] for i in other_ids),
    )


SSH_GROUP_NAME = "orch-sandbox-ssh"
PROBER_NETWORK = "127.0.0.0/8"  # where orch runs in the sandbox: this host's loopback


def _open_path(ec2: Any, vpc_id: str, ssh_port: int) -> str:
    """The network path a real fleet needs from where orch runs (what `orch doctor` checks):
    a security group letting the probe port in from the prober's network, and a route back
    to that network (here a virtual private gateway, as for an office or a VPN)."""
    group_id = ec2.create_security_group(GroupName=SSH_GROUP_NAME, Description="sshd from the prober", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": ssh_port, "ToPort": ssh_port, "IpRanges": [{"CidrIp": PROBER_NETWORK}]}],
    )
    gateway = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpcId=vpc_id, VpnGatewayId=gateway)
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}])
    for table in tables["RouteTables"]:
        ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock=PROBER_NETWORK, GatewayId=gateway)
    return str(group_id)


def _run(
    ec2: Any, image_id: str, instance_type: str, subnet_id: str, count: int, tags: list[tuple[str, str]], group_id: str
) -> list[str]:
    if count == 0:
        return []
    kwargs: dict[str, Any] = {"SecurityGroupIds": [group_id]}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags]}
        ]
    response = ec2.run_instances(
        ImageId=image_id, InstanceType=instance_type, MinCount=count, MaxCount=count, SubnetId=subnet_id, **kwargs
    )
    return [i["InstanceId"] for i in response["Instances"]]


def _create_asg(
    ec2: Any,
    autoscaling: Any,
    image_id: str,
    instance_type: str,
    subnet_ids: Sequence[str],
    size: int,
    group_id: str,
    tagged: bool = True,
) -> list[str]:
    """Launch template + group; members carry orch:managed=true via propagated tags (when ``tagged``)."""
    ec2.create_launch_template(
        LaunchTemplateName=LAUNCH_TEMPLATE_NAME,
        LaunchTemplateData={"ImageId": image_id, "InstanceType": instance_type, "SecurityGroupIds": [group_id]},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=ASG_NAME,
        LaunchTemplate={"LaunchTemplateName": LAUNCH_TEMPLATE_NAME, "Version": "$Latest"},
        MinSize=size,
        MaxSize=size,
        DesiredCapacity=size,
        VPCZoneIdentifier=",".join(subnet_ids),
        HealthCheckType="EC2",
        Tags=([{"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1], "PropagateAtLaunch": True}] if tagged else [])
        + [{"Key": "Name", "Value": "crawler-asg", "PropagateAtLaunch": True}],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG_NAME])["AutoScalingGroups"][0]
    members = [i["InstanceId"] for i in group["Instances"]]
    by_id = describe(ec2, members)
    return sorted(members, key=lambda i: ipaddress.ip_address(by_id[i].private_ip))


def describe(ec2: Any, instance_ids: Sequence[str]) -> dict[str, Launched]:
    """DescribeInstances in pages of 1000 ids, turned into ``Launched`` records."""
    found: dict[str, Launched] = {}
    ids = list(instance_ids)
    for start in range(0, len(ids), 1000):
        paginator = ec2.get_paginator("describe_instances")
        for page in paginator.paginate(InstanceIds=ids[start : start + 1000]):
            for reservation in page["Reservations"]:
                for raw in reservation["Instances"]:
                    launched = to_launched(raw)
                    found[launched.instance_id] = launched
    return found


def to_launched(raw: dict[str, Any]) -> Launched:
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
    return Launched(
        instance_id=raw["InstanceId"],
        name=tags.get("Name", ""),
        private_ip=raw["PrivateIpAddress"],
        availability_zone=raw["Placement"]["AvailabilityZone"],
        subnet_id=raw["SubnetId"],
        image_id=raw["ImageId"],
        instance_type=raw["InstanceType"],
        asg_name=tags.get("aws:autoscaling:groupName"),
        managed=tags.get(MANAGED_TAG[0]) == MANAGED_TAG[1],
        opt_out=tags.get(OPT_OUT_TAG[0]) == OPT_OUT_TAG[1],
    )
