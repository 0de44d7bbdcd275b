"""Helpers for the real server processes that tests and benchmarks start."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def stop(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it does not exit in time."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def peak_rss(pid: int) -> int:
    """VmHWM: the process's peak resident set so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
