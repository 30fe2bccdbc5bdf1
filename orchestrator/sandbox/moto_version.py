"""The one moto release the sandbox's patches were written against, checked before use.

The sandbox replaces private moto internals (``ec2_fixes``, ``cloudwatch_fixes``,
``hooks``). Those are not an API: a moto release may rename or reshape them, and the
patches would then fail in odd places or, worse, silently stop patching. So the
version is pinned in pyproject.toml and checked here, with a message that says what to
install, before any patch is applied.
"""

from __future__ import annotations

from importlib import metadata
from typing import Callable

SUPPORTED_MOTO = "5.2.5"


class UnsupportedMoto(RuntimeError):
    """Another moto is installed than the one the sandbox's patches were written for."""


def installed_moto() -> str | None:
    try:
        return metadata.version("moto")
    except metadata.PackageNotFoundError:
        return None


def moto_problem(version_of: Callable[[], str | None] | None = None) -> str | None:
    """Why the sandbox cannot run with the installed moto, or None when it can."""
    found = (version_of or installed_moto)()
    if found is None:
        return f"the sandbox needs moto {SUPPORTED_MOTO}, which is not installed: pip install 'orch[sandbox]'"
    if found != SUPPORTED_MOTO:
        return (
            f"the sandbox patches moto's internals and was written against moto {SUPPORTED_MOTO}, but moto {found} "
            f"is installed: pip install 'moto[server]=={SUPPORTED_MOTO}' (or pip install -e '.[sandbox]')"
        )
    return None


def require_supported_moto(version_of: Callable[[], str | None] | None = None) -> None:
    problem = moto_problem(version_of)
    if problem is not None:
        raise UnsupportedMoto(problem)
