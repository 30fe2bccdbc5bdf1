"""The sandbox runs only on the moto release its patches were written against."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.sandbox import moto_version
from orchestrator.sandbox.moto_version import SUPPORTED_MOTO, UnsupportedMoto, moto_problem, require_supported_moto

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_pyproject_pins_exactly_the_supported_moto() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["sandbox"]
    (moto,) = [d for d in extras if d.startswith("moto")]
    assert moto.endswith(f"=={SUPPORTED_MOTO}")


def test_the_installed_moto_is_the_supported_one() -> None:
    assert moto_problem() is None


@pytest.mark.parametrize(
    ("found", "expected"),
    [("5.3.0", "moto 5.3.0 is installed"), ("5.2.4", "moto 5.2.4 is installed"), (None, "not installed")],
)
def test_another_moto_is_refused_with_what_to_install(found: str | None, expected: str) -> None:
    with pytest.raises(UnsupportedMoto) as raised:
        require_supported_moto(lambda: found)
    assert expected in str(raised.value) and SUPPORTED_MOTO in str(raised.value)


def test_orch_sandbox_says_so_in_one_line_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_version, "installed_moto", lambda: "9.9.9")
    result = CliRunner().invoke(cli, ["sandbox", "--instances", "2"])
    assert result.exit_code == 2, result.output
    assert "moto 9.9.9 is installed" in result.output and f"moto[server]=={SUPPORTED_MOTO}" in result.output
    assert "Traceback" not in result.output
