"""server/serving/arenas.py: glibc's arenas are capped unless the operator chose.

Each check runs in a child process: mallopt changes the whole process, and this one is
pytest's, with moto's and the stores' threads running.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

CALL = "from server.serving.arenas import limit_arenas; print(limit_arenas(2))"


def limit_in_child(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", CALL], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


def test_arenas_are_capped_on_glibc() -> None:
    assert limit_in_child() == "True"  # Debian's libc is glibc: mallopt took it


def test_an_operator_s_malloc_arena_max_is_left_alone() -> None:
    assert limit_in_child(MALLOC_ARENA_MAX="4") == "False"
