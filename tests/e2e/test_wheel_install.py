"""`pip install .` (a wheel, not editable) gives a working `orch package` and `orch deploy`.

The wheel is built from a copy of the repository's packaging inputs (so the build leaves
no build/ or egg-info in the checkout), with pip restricted to local package sources
(tests/unit/test_package.py's offline rules; it skips when there are none). It is installed
into a fresh venv whose only link to this one is a .pth line naming this venv's
site-packages for the dependencies: orch itself, its metadata and its template come from
the wheel, and the commands run from a directory with no cfn/ in reach.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.unit.test_package import local_pip_environment

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cfn" / "orchestrator.yaml"
pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:.*not supported by moto's CloudFormation")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = local_pip_environment()
    if env is None:
        pytest.skip("pip has no local (file://) package sources for setuptools; building a wheel needs them offline")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("orchestrator", "lambdas", "cfn"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)  # the template link stays a link
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(src)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    if built.returncode != 0 and "No matching distribution" in built.stderr:
        pytest.skip(f"local package sources cannot serve the build backend: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("orch-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # Dependencies only: a .pth line adds the directory, but the .pth files in it (this
    # venv's editable orch) are not processed, so orch comes from the wheel.
    (purelib / "orch-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return root


@pytest.fixture
def moto_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCH_", "PYTHON"))}
        env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1", COLUMNS="160", HOME=str(tmp_path))
        yield env
    finally:
        server.stop()


def run(venv: Path, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_carries_the_template_as_a_file(wheel):
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("orchestrator/templates/orchestrator.yaml") == TEMPLATE.read_bytes()
        assert {"lambdas/heal.py", "orchestrator/deploy/stack.py", "orchestrator/sweep/pipeline.py"} <= set(archive.namelist())


def test_the_installed_orch_resolves_everything_from_the_wheel(venv, tmp_path):
    probe = (
        "import importlib.metadata, orchestrator, lambdas.heal; from orchestrator import deploy, package; "
        "print(orchestrator.__file__); print(deploy.default_template()); "
        "print(importlib.metadata.distribution('orch').locate_file('')); print(package.requirements()[0])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    shown = run(venv, ["python", "-c", probe], tmp_path, env)
    assert shown.returncode == 0, shown.stderr
    module, template, dist, first_requirement = shown.stdout.split("\n")[:4]
    assert module.startswith(str(venv)) and template.startswith(str(venv)) and dist.startswith(str(venv))
    assert template.endswith("orchestrator/templates/orchestrator.yaml")
    assert Path(template).read_bytes() == TEMPLATE.read_bytes()
    assert "==" in first_requirement


def test_orch_package_then_deploy_dry_run_from_the_wheel(venv, tmp_path, moto_env):
    zip_path = tmp_path / "orch-lambda.zip"
    offline = local_pip_environment() or {}
    packaged = run(venv, ["orch", "package", "--zip", str(zip_path)], tmp_path, {**moto_env, **{k: v for k, v in offline.items() if k.startswith("PIP_")}})
    if packaged.returncode != 0:
        assert "--wheelhouse" in packaged.stderr, packaged.stderr  # the documented failure, not a traceback
        # Local sources lack Lambda's wheels: build with the installed orch and no dependencies.
        build = "import sys; from pathlib import Path; from orchestrator import package; package.build(Path(sys.argv[1]), installer=lambda *a: None)"
        made = run(venv, ["python", "-c", build, str(zip_path)], tmp_path, moto_env)
        assert made.returncode == 0, made.stderr
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"lambdas/heal.py", "orchestrator/sweep/pipeline.py", "orch_build.json"} <= names
    boto3.client("s3", endpoint_url=moto_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="orch-code")
    params = ["-p", "VpcId=vpc-12345678", "-p", "SubnetIds=subnet-12345678", "-p", "VpcCidr=127.0.0.0/16"]
    dry = run(venv, ["orch", "deploy", "--dry-run", "--stack-name", "orch-wheel", "--bucket", "orch-code", "--zip", str(zip_path), *params],
              tmp_path, moto_env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run for orch-wheel (CREATE)" in dry.stdout and "parameter VpcCidr" in dry.stdout
    assert "does not exist" not in dry.stdout + dry.stderr
