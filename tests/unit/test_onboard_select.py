"""`orch init`'s choice of instances: pure, table-driven (orchestrator/onboard/select.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from orchestrator.model import Instance
from orchestrator.onboard.select import select

SELECTOR = {"orch:managed": "true"}
T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def box(n: int, vpc: str = "vpc-a", state: str = "running", **tags: str) -> Instance:
    return Instance(instance_id=f"i-{n:08x}", state=state, availability_zone="us-east-1a", launch_time=T0, tags=tags, vpc_id=vpc)


def ids(instances) -> set[int]:
    return {int(i.instance_id[2:], 16) for i in instances}


def test_running_and_stopped_in_the_vpc_are_tagged():
    chosen = select([box(1), box(2, state="stopped")], SELECTOR)
    assert ids(chosen.to_tag) == {1, 2} and chosen.vpcs == ("vpc-a",) and not chosen.excluded


@pytest.mark.parametrize("state", ["pending", "stopping", "shutting-down", "terminated"])
def test_other_states_are_shown_and_left_alone(state):
    chosen = select([box(1), box(2, state=state)], SELECTOR)
    assert ids(chosen.to_tag) == {1}
    assert [(int(e.instance.instance_id[2:], 16), state in e.why) for e in chosen.excluded] == [(2, True)]


def test_already_tagged_is_said_and_not_tagged_again():
    chosen = select([box(1, **SELECTOR), box(2)], SELECTOR)
    assert ids(chosen.to_tag) == {2} and ids(chosen.already_tagged) == {1} and ids(chosen.adopted) == {1, 2}


def test_a_partial_selector_match_is_tagged_again():
    chosen = select([box(1, **{"orch:managed": "false"})], SELECTOR)
    assert ids(chosen.to_tag) == {1}


def test_matches_in_two_vpcs_need_a_choice_and_tag_nothing():
    chosen = select([box(1), box(2), box(3, vpc="vpc-b")], SELECTOR)
    assert chosen.needs_vpc_choice == {"vpc-a": 2, "vpc-b": 1}
    assert not chosen.to_tag and not chosen.adopted


def test_the_chosen_vpc_wins_and_the_others_are_excluded_with_why():
    chosen = select([box(1), box(3, vpc="vpc-b")], SELECTOR, vpcs=["vpc-b"])
    assert ids(chosen.to_tag) == {3}
    assert [e.why for e in chosen.excluded] == ["in vpc-a, not in vpc-b"]


def test_terminated_instances_do_not_count_as_another_vpc():
    chosen = select([box(1), box(2, vpc="vpc-b", state="terminated")], SELECTOR)
    assert not chosen.needs_vpc_choice and ids(chosen.to_tag) == {1}


def test_unmatched_neighbours_are_listed_as_staying_unmanaged():
    neighbours = [box(1), box(7), box(8, **SELECTOR), box(9, vpc="vpc-b"), box(10, state="stopped")]
    chosen = select([box(1)], SELECTOR, neighbours=neighbours)
    assert ids(chosen.unmatched) == {7, 10}  # not 1 (matched), 8 (already managed), 9 (another VPC)


def test_nothing_matched_adopts_nothing():
    chosen = select([], SELECTOR)
    assert not chosen.adopted and not chosen.needs_vpc_choice
