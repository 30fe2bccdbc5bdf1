"""How scripts/test spreads the suite over xdist workers (tests/conftest.py): what shares
something outside its process runs on one worker, one after another."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import PARALLEL_E2E, SERIAL_GROUP, work_unit

E2E = Path(__file__).resolve().parents[1] / "e2e"


def test_sandbox_and_readme_modules_share_one_serial_unit():
    for name in ("test_heal_sandbox.py", "test_readme_examples.py", "test_deploy_docs.py", "test_probe_no_route.py"):
        assert work_unit(f"tests/e2e/{name}::test_x") == SERIAL_GROUP


def test_self_contained_modules_are_units_of_their_own():
    assert work_unit("tests/e2e/test_probe_endpoints.py::test_outcomes[ok]") == "tests/e2e/test_probe_endpoints.py"
    assert work_unit("tests/unit/test_plan.py::test_x") == "tests/unit/test_plan.py"
    assert work_unit("tests/aws/test_sweep.py::TestX::test_y") == "tests/aws/test_sweep.py"


def test_every_parallel_e2e_module_exists():
    assert sorted(name for name in PARALLEL_E2E if not (E2E / name).exists()) == []
