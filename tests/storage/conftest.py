from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Backend


@pytest.fixture
async def store(backend_store: Backend) -> AsyncIterator[Any]:
    """A started store of the test's backend (a module may narrow BACKENDS to one)."""
    s = backend_store.new_store()
    await s.start()
    yield s
    await s.close()
