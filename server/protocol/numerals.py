"""Decimal numbers as HTTP and spigot's own links write them: ASCII digits, nothing else.

`str.isdigit()` is true of "²" and "٣" too, which `int()` refuses or reads as digits, so a
check made with it let a crafted value through to `int()`, to fail there as a 500.
hypothesis found "²" in a signed link's `expires` (tests/protocol/test_access.py).
"""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """Whether `text` is one or more ASCII digits, which `int()` reads as written."""
    return text.isascii() and text.isdigit()
