from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import LocalStore


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[LocalStore]:
    s = LocalStore(data_dir)
    await s.start()
    yield s
    await s.close()
