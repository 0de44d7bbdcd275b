"""Protected mode, as in Redis: with `--auth none`, spigot listens on loopback only.

Anyone who can reach an open spigot can list, read and delete every file, so reaching it
from beyond the machine must be a decision (`--insecure-no-auth`), never a default.
"""

from __future__ import annotations

import ipaddress

from ..settings import Settings


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name may resolve anywhere; 0.0.0.0 and :: are everywhere


def exposure_problem(settings: Settings) -> str | None:
    """The one line to stop with, or None when the settings are safe to listen with."""
    if settings.auth != "none" or settings.insecure_no_auth or is_loopback(settings.host):
        return None
    return (
        f"--host {settings.host} is reachable beyond this machine and --auth is none, so anyone "
        "could read and delete every file: set --auth jwt or --auth hook, "
        "or pass --insecure-no-auth on a trusted network"
    )
