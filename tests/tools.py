"""Real client tools the tests drive, installed from Debian when missing.

A test that needs curl, wget, aria2c, nginx or wrk calls `require(...)`, and one that needs
an nginx module `require_file(...)`: the tool is installed if absent, and if that is
impossible the test fails with the reason. It never skips, so a green run always means the
real client was exercised.

Also runnable: `python -m tests.tools curl wget aria2 ...` (Debian package names), which
`make test` uses to install everything up front.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Debian package -> the executable it provides
PACKAGES = {
    "curl": "curl",
    "wget": "wget",
    "aria2": "aria2c",
    "nginx-light": "nginx",
    "wrk": "wrk",
    "nodejs": "node",
    "npm": "npm",
    "chromium": "chromium",
    "util-linux": "unshare",
    "tmux": "tmux",
    "systemd": "systemd-analyze",
}
_BY_EXECUTABLE = {exe: pkg for pkg, exe in PACKAGES.items()}
# Debian package -> a file of it that no PATH lookup finds
FILES = {
    "libnginx-mod-http-headers-more-filter": (
        "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so"
    ),
}
_apt_updated = False


def _executable(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


@contextlib.contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """One process at a time (pytest-xdist runs tests in two): apt and npm ci each take
    their own lock, and would fail, or half-install, if two ran at once."""
    with open(Path(tempfile.gettempdir()) / f"spigot-tests-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _apt_install(packages: list[str]) -> None:
    with _exclusive("apt"):
        _apt_install_now(packages)


def _apt_install_now(packages: list[str]) -> None:
    global _apt_updated
    if os.geteuid() != 0:
        raise RuntimeError(f"need {packages} but not root: apt-get install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        _apt_updated = True
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def require(executable: str) -> str:
    """Path of `executable`, installing its Debian package first if needed."""
    path = _executable(executable)
    if path is None:
        _apt_install([_BY_EXECUTABLE.get(executable, executable)])
        path = _executable(executable)
    if path is None:
        raise RuntimeError(f"{executable} is still missing after installing it")
    return path


def require_file(package: str) -> str:
    """Path of the file `package` is known by (FILES), installing the package if needed."""
    path = Path(FILES[package])
    if not path.exists():
        _apt_install([package])
    if not path.exists():
        raise RuntimeError(f"{path} is still missing after installing {package}")
    return str(path)


def _present(package: str) -> bool:
    if package in FILES:
        return Path(FILES[package]).exists()
    return _executable(PACKAGES.get(package, package)) is not None


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of `size` (mount's units: 1m, 64m) at `where`, unmounted after: a disk
    a test can fill, or memory-backed storage. The tests run as root, so it can mount."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"the test mounts a tmpfs as root: {mounted.stderr}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def npm_ci(directory: object, *needed: str) -> None:
    """Install a directory's pinned npm packages (its package-lock.json) unless every one of
    `needed` is already in its node_modules."""
    where = Path(str(directory))
    if needed and all((where / "node_modules" / p).is_dir() for p in needed):
        return
    with _exclusive("npm-" + hashlib.sha1(str(where.resolve()).encode()).hexdigest()[:12]):
        if needed and all((where / "node_modules" / p).is_dir() for p in needed):
            return  # the other process installed them meanwhile
        _npm_ci_now(where)


def _npm_ci_now(where: Path) -> None:
    done = subprocess.run(
        [require("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def main(packages: list[str]) -> None:
    missing = [p for p in packages if not _present(p)]
    if missing:
        print(f"installing Debian packages: {' '.join(missing)}", flush=True)
        _apt_install(missing)


if __name__ == "__main__":
    main(sys.argv[1:])
