"""Helpers for the real server processes that tests and benchmarks start."""

from __future__ import annotations

import os
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
