"""How scripts/test spreads the suite over xdist workers (tests/conftest.py): what shares
something outside its process runs on one worker, one after another."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import PARALLEL_E2E, SECOND_GROUP, SECOND_VPC_E2E, SERIAL_GROUP, work_unit

E2E = Path(__file__).resolve().parents[1] / "e2e"


def test_sandbox_and_readme_modules_share_one_serial_unit():
    for name in ("test_sandbox_serve.py", "test_readme_examples.py", "test_deploy_docs.py", "test_probe_no_route.py"):
        assert work_unit(f"tests/e2e/{name}::test_x") == SERIAL_GROUP
    assert work_unit("tests/e2e/test_heal_sandbox.py::test_x[a]") == SECOND_GROUP


def test_self_contained_modules_are_units_of_their_own():
    assert work_unit("tests/e2e/test_probe_endpoints.py::test_outcomes[ok]") == "tests/e2e/test_probe_endpoints.py"
    assert work_unit("tests/unit/test_plan.py::test_x") == "tests/unit/test_plan.py"
    assert work_unit("tests/aws/test_sweep.py::TestX::test_y") == "tests/aws/test_sweep.py"


def test_every_parallel_e2e_module_exists():
    assert sorted(name for name in PARALLEL_E2E if not (E2E / name).exists()) == []


def test_every_second_group_module_builds_its_fleets_in_the_second_vpc():
    """A module of the second group runs beside the first: a sandbox of its own built in the
    sandbox's default addresses, or anything read or written at the repository's root or
    through `orch sandbox` (default addresses again), would meet the first group's."""
    for name in sorted(SECOND_VPC_E2E):
        text = (E2E / name).read_text()
        assert text.count("Sandbox(") == text.count("Sandbox(in_second_vpc("), name
        assert "in_second_vpc(" in text, name
        assert not re.search(r"\[\"sandbox\"|\"orch\", \"sandbox\"|scripts/sandbox|127\.20\.|ROOT /", text), name
