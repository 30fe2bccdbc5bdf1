"""Build the Lambda zip: orch's own packages plus its dependencies, built for Lambda.

The zip runs on Amazon Linux under CPython 3.12 (x86_64 or arm64), not on the machine
that builds it, and pydantic-core is a compiled extension: so dependencies are fetched
as binary wheels for Lambda's platform and Python (``pip install --platform ...
--only-binary=:all:``), never copied from the build host's site-packages.

Dependencies are pinned to the versions installed where orch is built (the versions
its tests ran against); ``pin_installed=False`` takes the declared ranges instead.
boto3 is bundled although the runtime ships one: the runtime's copy changes under a
deployed function without notice and lags the API. ``include_boto3=False`` leaves it
out (a much smaller zip).

The zip is reproducible: entries sorted, timestamps fixed. Same sources and wheels give
the same bytes, hence the same content-hash key in S3, hence "no changes" on redeploy.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from orchestrator.echo import clip

LAMBDA_PYTHON = "3.12"  # the template's Runtime is python3.12
ARCHITECTURES: dict[str, tuple[str, ...]] = {
    # Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux2014 and
    # manylinux_2_28 wheels both load there.
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}
# Lambda quotas: 50 MB zipped when uploaded directly through the API, 250 MB unzipped
# (function code and layers) however it is uploaded.
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
SOURCE_PACKAGES = ("orchestrator", "lambdas")
# The command line's own libraries: the handler never imports them (a test imports
# lambdas.heal with them blocked), so the zip does not carry them or what they pull in
# (rich alone brings pygments and markdown-it).
CLI_ONLY = frozenset({"click", "rich", "platformdirs"})
MANIFEST = "orch_build.json"  # what the zip was built for; `orch deploy --zip` checks it
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIP_DIRS = frozenset({"__pycache__"})
_SKIP_SUFFIXES = (".pyc", ".pyo")


class PackageError(Exception):
    """The zip could not be built or is unusable on Lambda; the message names the fix."""


@dataclass(frozen=True)
class Target:
    arch: str = "x86_64"
    python_version: str = LAMBDA_PYTHON

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise PackageError(f"unknown architecture {self.arch!r}: use one of {', '.join(ARCHITECTURES)}")
        if not re.fullmatch(r"3\.\d{1,2}", self.python_version):
            raise PackageError(f"python version {self.python_version!r} is not MAJOR.MINOR such as {LAMBDA_PYTHON}")


@dataclass(frozen=True)
class PackageResult:
    path: Path
    target: Target
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    distributions: tuple[str, ...]  # name==version of every bundled dependency
    sha256: str

    def describe(self) -> str:
        return (
            f"wrote {self.path} for Lambda python{self.target.python_version} {self.target.arch}: "
            f"{_mb(self.zipped_bytes)} zipped (limit {_mb(MAX_ZIPPED_BYTES)}), "
            f"{_mb(self.unzipped_bytes)} unzipped (limit {_mb(MAX_UNZIPPED_BYTES)}), {self.files} files"
        )


Installer = Callable[[Sequence[str], Path, Target, Path | None], None]
"""(requirements, target dir, target platform, wheelhouse or None) -> installs or raises PackageError."""


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def requirements(include_boto3: bool = True, pin_installed: bool = True) -> list[str]:
    """orch's declared runtime requirements (extras and CLI_ONLY left out), pinned to the installed versions.

    Pinned because the zip should run what the tests here ran: an index that only offers
    an older release inside the declared range would otherwise ship code that never ran
    against it (an older tenacity once broke the import this way).
    """
    try:
        declared = importlib.metadata.requires("orch") or []
    except importlib.metadata.PackageNotFoundError:
        raise PackageError("orch is not installed (pip install -e . in the repository), so its dependencies are unknown") from None
    reqs = [r for r in declared if "extra ==" not in r.replace('"', " ").replace("'", " ") and _name(r) not in CLI_ONLY]
    if not include_boto3:
        reqs = [r for r in reqs if _name(r) != "boto3"]
    return [_pinned(r) if pin_installed else r for r in reqs]


def _name(requirement: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1).lower().replace("_", "-") if match else requirement


def _pinned(requirement: str) -> str:
    if ";" in requirement:  # an environment marker: the build host is not the target, keep it
        return requirement
    try:
        return f"{_name(requirement)}=={importlib.metadata.version(_name(requirement))}"
    except importlib.metadata.PackageNotFoundError:
        return requirement


def pip_install(reqs: Sequence[str], target_dir: Path, target: Target, wheelhouse: Path | None = None) -> None:
    """pip with Lambda's platform tags; pip's own configuration decides where wheels come from."""
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(target_dir),
        "--implementation", "cp",
        "--python-version", target.python_version,
        "--only-binary=:all:",
    ]
    for platform in ARCHITECTURES[target.arch]:
        command += ["--platform", platform]
    if wheelhouse is not None:
        command += ["--no-index", "--find-links", str(wheelhouse)]
    command += list(reqs)
    proc = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise PackageError(
            f"pip could not get wheels for Lambda (python {target.python_version}, {target.arch}): "
            f"{_pip_reason(proc.stderr)}. Fix: give pip a route to an index that has them, or build a "
            f"wheelhouse on a connected machine (pip download --only-binary=:all: --python-version "
            f"{target.python_version} --platform {ARCHITECTURES[target.arch][0]} -d DIR {' '.join(reqs)}) "
            "and pass --wheelhouse DIR"
        )


def _pip_reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "is ignored" not in line]
    for line in lines:
        if line.startswith("ERROR:") and ("No matching distribution" in line or "Could not find" in line):
            return line.removeprefix("ERROR:").strip()
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["pip failed without a message"])[-1]


def source_dirs() -> list[Path]:
    """Where the orchestrator and lambdas packages live (the checkout, for an editable install).

    Found, not imported: the package that ships the handlers stands below them.
    """
    found = []
    for name in ("orchestrator", "lambdas"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise PackageError(f"cannot find the {name} package to put in the Lambda package")
        found.append(Path(spec.origin).resolve().parent)
    return found


def _walk(root: Path, prefix: str) -> Iterable[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(_SKIP_SUFFIXES):
                continue
            path = Path(dirpath) / name
            yield f"{prefix}{path.relative_to(root).as_posix()}", path


def _distributions(deps_dir: Path) -> tuple[str, ...]:
    found = []
    for dist in sorted(deps_dir.glob("*.dist-info")):
        name, _, version = dist.name.removesuffix(".dist-info").partition("-")
        found.append(f"{name}=={version}")
    return tuple(found)


def _write_zip(path: Path, entries: list[tuple[str, Path | bytes]]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for arcname, source in sorted(entries, key=lambda e: e[0]):
            info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # Lambda needs world-readable files
            data = source if isinstance(source, bytes) else source.read_bytes()
            archive.writestr(info, data)


def build(
    output: Path,
    target: Target = Target(),
    *,
    include_boto3: bool = True,
    pin_installed: bool = True,
    wheelhouse: Path | None = None,
    installer: Installer | None = None,
    max_zipped: int = MAX_ZIPPED_BYTES,
    max_unzipped: int = MAX_UNZIPPED_BYTES,
) -> PackageResult:
    """Build the zip at ``output``; raise PackageError (and leave no zip) if it would not deploy."""
    output = Path(output)
    if wheelhouse is not None and not Path(wheelhouse).is_dir():
        raise PackageError(f"wheelhouse {wheelhouse} is not a directory")
    reqs = requirements(include_boto3, pin_installed)
    with tempfile.TemporaryDirectory(prefix="orch-package-") as tmp:
        deps = Path(tmp) / "deps"
        deps.mkdir()
        (installer or pip_install)(reqs, deps, target, wheelhouse)
        entries: list[tuple[str, Path | bytes]] = []
        owned = set(SOURCE_PACKAGES)
        for arcname, path in _walk(deps, ""):
            top = arcname.split("/", 1)[0]
            if top in owned or top == "bin":
                continue  # never let a dependency shadow our packages; console scripts are useless here
            entries.append((arcname, path))
        for root in source_dirs():
            entries.extend(_walk(root, f"{root.name}/"))
        distributions = _distributions(deps)
        manifest = {"python": target.python_version, "arch": target.arch, "requirements": reqs, "distributions": list(distributions)}
        entries.append((MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode()))
        unzipped = sum(len(s) if isinstance(s, bytes) else s.stat().st_size for _, s in entries)
        if unzipped > max_unzipped:
            raise PackageError(
                f"the package would be {_mb(unzipped)} unzipped, over Lambda's {_mb(max_unzipped)} limit: "
                "leave boto3 out (--no-boto3) or trim dependencies"
            )
        partial = Path(tmp) / "lambda.zip"
        _write_zip(partial, entries)
        zipped = partial.stat().st_size
        if zipped > max_zipped:
            raise PackageError(
                f"the zip is {_mb(zipped)}, over Lambda's {_mb(max_zipped)} limit for a zip: leave boto3 out (--no-boto3) or trim dependencies"
            )
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), output)
    return PackageResult(output, target, zipped, unzipped, len(entries), distributions, digest)


def read_manifest(zip_path: Path) -> dict[str, object]:
    """The build manifest of a zip made by ``build``; PackageError if there is none."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = set(archive.namelist())
            missing = [p for p in ("lambdas/heal.py", "orchestrator/sweep/pipeline.py") if p not in names]
            if missing:
                raise PackageError(f"{zip_path} is not an orch Lambda zip (no {', '.join(missing)}): build one with orch package")
            if MANIFEST not in names:
                raise PackageError(f"{zip_path} has no {MANIFEST}: build it with orch package")
            manifest = json.loads(archive.read(MANIFEST))
    except FileNotFoundError:
        raise PackageError(f"{zip_path} does not exist: build it with orch package --output {zip_path}") from None
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"{zip_path} is not a readable zip: {clip(str(exc), quote=False)}") from None
    except IsADirectoryError:
        raise PackageError(f"{zip_path} is a directory: give the zip orch package wrote") from None
    except OSError as exc:
        raise PackageError(f"{zip_path} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(manifest, dict) or not all(isinstance(k, str) for k in manifest):
        raise PackageError(f"{zip_path}: {MANIFEST} is not a JSON object (got {type(manifest).__name__}): rebuild the zip with orch package")
    return manifest
