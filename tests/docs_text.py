"""The README and the pages of docs/ it links to, for the tests that keep them true.

The README is short (what orch is, the two commands, a tour, links); the rest lives in
docs/ by topic. A test that checks "this is documented" or runs a marked ```sh block
reads them all, in this order.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# Pages written before the README was split, with their own tests (tests/e2e/test_deploy_docs.py
# and scripts/bench): their ```sh blocks are not README examples.
OWN_TESTS = frozenset({"deploy.md", "performance.md", "scaling.md"})


def all_text() -> str:
    return "\n\n".join(p.read_text() for p in pages())


def readme_text() -> str:
    """The README and the pages split out of it: every ```sh block here is run by a test or says why not."""
    return "\n\n".join(p.read_text() for p in pages() if p.name not in OWN_TESTS)


def page(name: str) -> str:
    return (ROOT / "docs" / name).read_text()
