from __future__ import annotations

from typing import Iterator

import pytest

from tests.e2e.fake_endpoints import EndpointLoop


@pytest.fixture
def endpoints() -> Iterator[EndpointLoop]:
    loop = EndpointLoop()
    try:
        yield loop
    finally:
        loop.close()
