"""The CloudFormation template travels with the code: package data that is cfn/orchestrator.yaml.

`pip install .` leaves no cfn/ directory beside site-packages, so `orch deploy` reads the
template from orchestrator/templates/, which in the repository is a symlink to the one
source, cfn/orchestrator.yaml. The wheel itself is built and installed in
tests/e2e/test_wheel_install.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from orchestrator.deploy import template
from orchestrator.deploy.errors import DeployUsageError

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "cfn" / "orchestrator.yaml"
SHIPPED = ROOT / "orchestrator" / "templates" / "orchestrator.yaml"


def test_the_shipped_template_is_a_link_to_the_one_source():
    assert SHIPPED.is_symlink(), "orchestrator/templates/orchestrator.yaml must stay a symlink to cfn/orchestrator.yaml"
    assert SHIPPED.resolve() == SOURCE.resolve()
    assert SHIPPED.read_bytes() == SOURCE.read_bytes()


def test_the_template_is_declared_package_data():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["orchestrator"]
    assert any(SHIPPED.relative_to(ROOT / "orchestrator").match(p) for p in patterns)


def test_default_template_is_the_packaged_one_and_reads_as_the_source():
    found = template.default_template()
    assert found == template.PACKAGED_TEMPLATE
    assert found.parent.name == "templates" and found.parent.parent.name == "orchestrator"
    assert template.read_template(found) == SOURCE.read_text()


def test_default_template_falls_back_to_the_checkout(tmp_path, monkeypatch):
    monkeypatch.setattr(template, "PACKAGED_TEMPLATE", tmp_path / "absent.yaml")
    assert template.default_template() == template.CHECKOUT_TEMPLATE == SOURCE.resolve()


def test_no_template_anywhere_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(template, "PACKAGED_TEMPLATE", tmp_path / "absent.yaml")
    monkeypatch.setattr(template, "CHECKOUT_TEMPLATE", tmp_path / "also-absent.yaml")
    missing = template.default_template()
    with pytest.raises(DeployUsageError) as refused:
        template.read_template(missing)
    message = str(refused.value)
    assert str(missing) in message and "--template PATH" in message and "\n" not in message
