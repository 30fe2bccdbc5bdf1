"""Deployed healers and a manual orch: one store, one lease, never two healers (table-driven)."""

from __future__ import annotations

import json

import pytest

from orchestrator.estate.registry import Healer, HealerConflict, overlaps, parse, resolve

SELECTOR = {"orch:managed": "true"}
PROD = Healer("orch-prod", "us-east-1", "111122223333", "vpc-1", {"orch:managed": "true"}, "dynamodb://orch-prod-state", "heal")
WEB = Healer("orch-web", "us-east-1", "111122223333", "vpc-2", {"orch:managed": "true", "team": "web"}, "dynamodb://orch-web-state", "heal")
OTHER_TEAM = Healer("orch-db", "us-east-1", "111122223333", "vpc-1", {"team": "db"}, "dynamodb://db-state", "heal")


@pytest.mark.parametrize(
    "a, b, overlap",
    [
        ({"orch:managed": "true"}, {"orch:managed": "true"}, True),
        ({"orch:managed": "true"}, {"orch:managed": "true", "team": "web"}, True),  # a subset
        ({"team": "web"}, {"env": "prod"}, True),  # one instance can carry both tags
        ({"team": "web"}, {"team": "db"}, False),  # one tag, two values: no instance has both
    ],
)
def test_selectors_overlap_unless_a_tag_is_required_with_two_values(a, b, overlap):
    assert overlaps(a, b) is overlap and overlaps(b, a) is overlap


@pytest.mark.parametrize(
    "name, healers, vpc, given, acting, want_state, want_vpc, want_account, raises",
    [
        ("no healer deployed: the caller's store", [], None, None, True, None, None, "-", None),
        ("one overlapping healer: its store, VPC and account", [PROD], None, None, True, PROD.state, "vpc-1", "111122223333", None),
        ("its store named explicitly: fine", [PROD], None, PROD.state, True, PROD.state, "vpc-1", "111122223333", None),
        ("another store named, acting: refused", [PROD], None, "/tmp/local.db", True, None, None, None, "through another store"),
        ("another store named, only reading: a note", [PROD], None, "/tmp/local.db", False, "/tmp/local.db", None, "-", None),
        ("two overlapping healers, acting: refused", [PROD, WEB], None, None, True, None, None, None, "2 deployed healers"),
        ("two healers, one VPC chosen: that one", [PROD, WEB], "vpc-2", None, True, WEB.state, "vpc-2", "111122223333", None),
        ("a healer of another team's tag value: none overlaps", [OTHER_TEAM], None, None, True, None, None, "-", None),
        ("its own registration is not another healer", [PROD], None, PROD.state, True, PROD.state, None, "-", None),
    ],
)
def test_resolve(name, healers, vpc, given, acting, want_state, want_vpc, want_account, raises):
    own = "orch-prod" if name.startswith("its own") else None
    if raises:
        with pytest.raises(HealerConflict, match=raises):
            resolve(healers, {"orch:managed": "true"} if healers != [OTHER_TEAM] else {"team": "web"}, vpc, given, acting, own)
        return
    selector = {"team": "web"} if healers == [OTHER_TEAM] else SELECTOR
    found = resolve(healers, selector, vpc, given, acting, own)
    assert (found.state, found.vpc_id, found.account) == (want_state, want_vpc, want_account)


def test_a_registration_that_is_not_orchs_is_never_trusted():
    good = {"stack": "s", "region": "r", "account": "1", "vpc_id": "vpc-1", "selector": {"a": "b"}, "state": "dynamodb://t", "mode": "heal"}
    assert parse("/orch/healers/s", json.dumps(good)) == Healer("s", "r", "1", "vpc-1", {"a": "b"}, "dynamodb://t", "heal")
    for bad in ("not json", "[]", json.dumps({**good, "selector": "a=b"}), json.dumps({**good, "state": ""})):
        assert parse("/orch/healers/s", bad) is None
