"""Building the Lambda zip: contents, reproducibility, limits, and real pip runs kept offline.

The real-pip tests only ever let pip read local sources (file:// indexes and local
find-links from pip's own configuration); with none configured they skip. Building
for Lambda's python3.12 needs cp312 wheels of pydantic-core: when the local sources
lack them the test skips with pip's reason instead of pretending.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Sequence

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.deploy import package


def fake_installer(reqs: Sequence[str], target_dir: Path, target: package.Target, wheelhouse: Path | None) -> None:
    """What pip --target leaves behind, in miniature."""
    (target_dir / "fakedep").mkdir()
    (target_dir / "fakedep" / "__init__.py").write_text("VALUE = 1\n")
    (target_dir / "fakedep" / "__pycache__").mkdir()
    (target_dir / "fakedep" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (target_dir / "fakedep-1.2.dist-info").mkdir()
    (target_dir / "fakedep-1.2.dist-info" / "METADATA").write_text("Name: fakedep\n")
    (target_dir / "bin").mkdir()
    (target_dir / "bin" / "fakedep-cli").write_text("#!python\n")
    (target_dir / "orchestrator").mkdir()  # a dependency must never shadow our own package
    (target_dir / "orchestrator" / "evil.py").write_text("raise SystemExit\n")


def test_zip_holds_our_packages_the_dependencies_and_a_manifest(tmp_path):
    result = package.build(tmp_path / "out.zip", installer=fake_installer)
    names = set(zipfile.ZipFile(result.path).namelist())
    assert {"lambdas/__init__.py", "lambdas/heal.py", "orchestrator/sweep/pipeline.py", "orchestrator/state/dynamodb.py"} <= names
    assert {"fakedep/__init__.py", "fakedep-1.2.dist-info/METADATA"} <= names
    assert "orchestrator/evil.py" not in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("bin/")]
    manifest = json.loads(zipfile.ZipFile(result.path).read(package.MANIFEST))
    assert manifest["python"] == "3.12" and manifest["arch"] == "x86_64"
    assert manifest["distributions"] == ["fakedep==1.2"] and result.distributions == ("fakedep==1.2",)
    assert any(r.startswith("pydantic") for r in manifest["requirements"])
    assert result.zipped_bytes == result.path.stat().st_size and result.unzipped_bytes > result.zipped_bytes
    assert package.read_manifest(result.path)["arch"] == "x86_64"


def test_boto3_is_bundled_unless_left_out():
    assert any(r.startswith("boto3") for r in package.requirements())
    assert not any(r.startswith("boto3") for r in package.requirements(include_boto3=False))
    assert not any(r.startswith(("pytest", "moto")) for r in package.requirements())


def test_the_zip_carries_no_cli_only_dependency_and_the_handler_needs_none():
    names = {package._name(r) for r in package.requirements()}
    assert not names & package.CLI_ONLY and {"boto3", "pydantic", "pydantic-settings", "tenacity"} <= names
    # The handler imports with the CLI's libraries made unimportable (None in sys.modules).
    blocked = ", ".join(repr(m) for m in sorted(package.CLI_ONLY))
    code = f"import sys\nfor m in ({blocked},): sys.modules[m] = None\nimport lambdas.heal\nprint('ok')"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout.strip() == "ok", ran.stderr


def test_dependencies_are_pinned_to_what_is_installed_here():
    import importlib.metadata

    pinned = package.requirements()
    assert f"tenacity=={importlib.metadata.version('tenacity')}" in pinned
    assert f"pydantic=={importlib.metadata.version('pydantic')}" in pinned
    assert all("==" in r for r in pinned)
    assert any(r.startswith("tenacity>=") for r in package.requirements(pin_installed=False))


class _Ran:
    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.returncode, self.stderr, self.stdout = returncode, stderr, ""


def test_pip_is_asked_for_lambdas_platform_and_binary_wheels_only(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(package.subprocess, "run", lambda cmd, **kw: seen.append(cmd) or _Ran())
    package.pip_install(["pydantic==2.14.4"], tmp_path, package.Target("arm64", "3.12"), None)
    package.pip_install(["pydantic==2.14.4"], tmp_path, package.Target("x86_64", "3.12"), tmp_path / "wheels")
    arm, x86 = seen
    for flag in ("--only-binary=:all:", "--no-compile"):
        assert flag in arm
    assert arm[arm.index("--python-version") + 1] == "3.12" and arm[arm.index("--implementation") + 1] == "cp"
    assert arm[arm.index("--target") + 1] == str(tmp_path)
    assert {arm[i + 1] for i, a in enumerate(arm) if a == "--platform"} == {"manylinux2014_aarch64", "manylinux_2_28_aarch64"}
    assert "--no-index" not in arm and arm[-1] == "pydantic==2.14.4"
    assert {x86[i + 1] for i, a in enumerate(x86) if a == "--platform"} == {"manylinux2014_x86_64", "manylinux_2_28_x86_64"}
    assert "--no-index" in x86 and x86[x86.index("--find-links") + 1] == str(tmp_path / "wheels")


def test_a_pip_failure_names_the_missing_wheel_and_the_fix(tmp_path, monkeypatch):
    stderr = (
        "Looking in links: /opt/wheels\n"
        "ERROR: Could not find a version that satisfies the requirement pydantic-core==2.46.5 (from versions: none)\n"
        "ERROR: No matching distribution found for pydantic-core==2.46.5\n"
    )
    monkeypatch.setattr(package.subprocess, "run", lambda cmd, **kw: _Ran(1, stderr))
    with pytest.raises(package.PackageError) as caught:
        package.build(tmp_path / "x.zip")
    message = str(caught.value)
    assert "python 3.12, x86_64" in message and "pydantic-core==2.46.5" in message
    assert "--wheelhouse DIR" in message and "--platform manylinux2014_x86_64" in message
    assert not (tmp_path / "x.zip").exists()


def test_same_sources_give_the_same_bytes(tmp_path):
    first = package.build(tmp_path / "a.zip", installer=fake_installer)
    second = package.build(tmp_path / "b.zip", installer=fake_installer)
    assert first.path.read_bytes() == second.path.read_bytes() and first.sha256 == second.sha256


def test_files_in_the_zip_are_readable_by_lambda(tmp_path):
    result = package.build(tmp_path / "out.zip", installer=fake_installer)
    for info in zipfile.ZipFile(result.path).infolist():
        assert (info.external_attr >> 16) & 0o444 == 0o444, info.filename


@pytest.mark.parametrize("limit", ["max_zipped", "max_unzipped"])
def test_over_a_lambda_limit_fails_clearly_and_leaves_no_zip(tmp_path, limit):
    out = tmp_path / "out.zip"
    with pytest.raises(package.PackageError, match=r"over Lambda's 0\.0 MB limit"):
        package.build(out, installer=fake_installer, **{limit: 1000})
    assert not out.exists()


def test_the_limits_are_lambdas():
    assert package.MAX_ZIPPED_BYTES == 50 * 1024 * 1024 and package.MAX_UNZIPPED_BYTES == 250 * 1024 * 1024


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("not a zip"), "not a readable zip"),
        (lambda p: zipfile.ZipFile(p, "w").writestr("hello.py", ""), "not an orch Lambda zip"),
    ],
)
def test_read_manifest_refuses_what_orch_package_did_not_build(tmp_path, make, message):
    path = tmp_path / "x.zip"
    make(path)
    with pytest.raises(package.PackageError, match=message):
        package.read_manifest(path)


def test_bad_targets_are_refused():
    with pytest.raises(package.PackageError, match="unknown architecture 'sparc'"):
        package.Target("sparc")
    with pytest.raises(package.PackageError, match="not MAJOR.MINOR"):
        package.Target("x86_64", "python3")


@pytest.mark.parametrize(
    "args",
    [
        ["package", "--zip", "{out}", "-o", "json"],
        ["-o", "json", "package", "--zip", "{out}"],  # the global option before the command
        ["package", "--zip", "{out}", "--json"],  # the old flag, hidden, still works
    ],
)
def test_orch_package_reports_the_size(tmp_path, monkeypatch, args):
    monkeypatch.setattr(package, "pip_install", fake_installer)
    out = tmp_path / "orch.zip"
    result = CliRunner().invoke(cli, [a.format(out=out) for a in args])
    assert result.exit_code == 0, result.output
    reported = json.loads(result.stdout)
    assert reported["zipped_bytes"] == out.stat().st_size and reported["python"] == "3.12"
    assert not result.stderr


def test_orch_package_output_path_is_a_deprecated_alias_of_zip(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "pip_install", fake_installer)
    out = tmp_path / "old.zip"
    result = CliRunner().invoke(cli, ["package", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and f"wrote {out}" in result.stdout
    assert "deprecated; use --zip" in result.stderr
    both = CliRunner().invoke(cli, ["package", "--output", str(out), "--zip", str(out)])
    assert both.exit_code == 2 and "give the zip's path once" in both.stderr


def test_orch_package_failure_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["package", "--zip", str(tmp_path / "x.zip"), "--wheelhouse", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "is not a directory" in result.output and "Traceback" not in result.output


# -- real pip, offline ----------------------------------------------------------------------


def local_pip_environment() -> dict[str, str] | None:
    """pip's configured sources restricted to local ones (file:// or paths); None if none."""
    # The user's pip config, not the empty config directory tests/conftest.py gives orch.
    from tests.conftest import USER_XDG_CONFIG_HOME

    config_env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    if USER_XDG_CONFIG_HOME is not None:
        config_env["XDG_CONFIG_HOME"] = USER_XDG_CONFIG_HOME
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, env=config_env).stdout
    values: dict[str, list[str]] = {}
    for line in listed.splitlines():
        name, _, raw = line.partition("=")
        key = name.rsplit(".", 1)[-1]
        values.setdefault(key, []).extend(raw.strip().strip("'\"").split())
    indexes = [u for k in ("index-url", "extra-index-url") for u in values.get(k, []) if u.startswith("file://")]
    links = [u for u in values.get("find-links", []) if u.startswith(("file://", "/"))]
    if not indexes and not links:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    if indexes:
        env["PIP_INDEX_URL"] = indexes[0]
        env["PIP_EXTRA_INDEX_URL"] = " ".join(indexes[1:])
    else:
        env["PIP_NO_INDEX"] = "1"
    env["PIP_FIND_LINKS"] = " ".join(links)
    return env


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    env = local_pip_environment()
    if env is None:
        pytest.skip("pip has no local (file://) package sources configured; a real build needs network")
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_real_build_for_lambda_python(tmp_path, offline_pip):
    try:
        result = package.build(tmp_path / "orch.zip")
    except package.PackageError as exc:
        assert "Fix:" in str(exc) and "--wheelhouse" in str(exc)
        pytest.skip(f"offline sources cannot serve Lambda's python{package.LAMBDA_PYTHON}: {exc}")
    assert result.zipped_bytes < package.MAX_ZIPPED_BYTES
    assert any(d.startswith("pydantic_core==") for d in result.distributions)


def test_real_build_is_self_contained_and_imports_the_handler(tmp_path, offline_pip):
    """Built for this interpreter's Python, so the zip can be imported here, isolated from the venv."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        result = package.build(tmp_path / "orch.zip", package.Target("x86_64", version))
    except package.PackageError as exc:
        pytest.skip(f"offline sources cannot serve python {version} manylinux wheels: {exc}")
    names = zipfile.ZipFile(result.path).namelist()
    assert any(n.startswith("pydantic_core/") and ".so" in n and "x86_64" in n for n in names)
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(result.path).extractall(unpacked)
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1]]; import lambdas.heal, pydantic_core, boto3; "
        "print(lambdas.heal.__file__); print(pydantic_core.__file__); print(boto3.__file__)"
    )
    # -I -S: no user site, no site-packages: everything must come from the zip.
    shown = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(unpacked)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert all(line.startswith(str(unpacked)) for line in shown.stdout.split()), shown.stdout


def test_scripts_package_runs_orch_package_with_its_arguments(tmp_path):
    """The script only sets up the venv (scripts/_setup) and hands its arguments over."""
    root = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    digest = subprocess.run(["sha1sum", "pyproject.toml"], cwd=root, capture_output=True, text=True).stdout[:12]
    (venv / f".installed-{digest}").touch()  # ensure_venv: already installed
    orch = Path(sys.executable).parent / "orch"
    (venv / "bin" / "orch").symlink_to(orch)
    shown = subprocess.run(
        ["bash", str(root / "scripts" / "package"), "--help"],
        capture_output=True, text=True, env={**os.environ, "ORCH_VENV": str(venv)},
    )
    assert shown.returncode == 0, shown.stderr
    assert "Usage: orch package" in shown.stdout and "--wheelhouse" in shown.stdout
