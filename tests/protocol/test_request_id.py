from __future__ import annotations

import re

import pytest

from server.protocol.request_id import request_id


@pytest.mark.parametrize(
    "sent",
    [
        "5f0b3c1e9d6a4e2b8c7d1a0f3e5b7c9d",
        "2b1f6c2e-7b9a-4c3d-9e8f-0a1b2c3d4e5f",
        "Root=1-67891233-abcdef012345678912345678",
        "a" * 128,
    ],
)
def test_a_safe_id_is_kept(sent: str) -> None:
    assert request_id(sent) == sent


@pytest.mark.parametrize(
    "sent", [None, "", "a" * 129, "has space", 'quote"d', "line\nbreak", "tab\tx", "é"]
)
def test_anything_else_gets_a_fresh_one(sent: str | None) -> None:
    made = request_id(sent)
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert request_id(sent) != made  # unguessable, never reused
