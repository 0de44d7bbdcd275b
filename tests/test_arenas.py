"""server/serving/arenas.py: glibc's arenas are capped unless the operator chose."""

from __future__ import annotations

import pytest

from server.serving.arenas import limit_arenas


def test_arenas_are_capped_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas(2) is True  # Debian's libc is glibc: mallopt took it


def test_an_operator_s_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas(2) is False
