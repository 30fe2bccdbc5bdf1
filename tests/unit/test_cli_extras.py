"""Errors that name the missing extra (orchestrator.cli.extras)."""

from __future__ import annotations

import pytest

from orchestrator.cli.extras import local_endpoint, sandbox_deploy_hint


def missing(name: str) -> None:
    return None


def present(name: str) -> object:
    return object()


@pytest.mark.parametrize("url,local", [("http://127.0.0.1:5000", True), ("http://127.20.0.9:1", True), ("http://localhost:9", True),
                                       ("https://cloudformation.us-east-1.amazonaws.com", False), ("http://10.0.0.1:5000", False),
                                       (None, False), ("not a url", False)])
def test_local_endpoint(url, local):
    assert local_endpoint(url) is local


def test_the_sandbox_without_cloudformation_names_the_extra(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    hint = sandbox_deploy_hint("http://127.0.0.1:5000", find=missing)
    assert hint is not None and ".[sandbox-deploy]" in hint and "127.0.0.1:5000" in hint
    assert sandbox_deploy_hint("http://127.0.0.1:5000", find=present) is None  # installed: the error is another one
    assert sandbox_deploy_hint("https://cloudformation.us-east-1.amazonaws.com", find=missing) is None  # real AWS
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:7000")
    assert "127.0.0.1:7000" in (sandbox_deploy_hint(None, find=missing) or "")
