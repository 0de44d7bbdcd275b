"""The servers a benchmark compares, each started on a free loopback port, one worker each."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from tests import processes
from tests.tools import require

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        processes.stop(self.proc)

    def peak_rss(self) -> int:
        return processes.peak_rss(self.proc.pid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def start_spigot(workdir: Path) -> Server:
    port = free_port()
    data = workdir / "spigot-data"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--port",
            str(port),
            "--storage",
            str(data),
            "--max-request-size",
            "0",
            "--log-level",
            "warning",
            # the proxy benchmark's upstream is nginx on loopback: bench only
            "--insecure-proxy-allow-private",
            "--insecure-proxy-unsigned",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    wait_listening(port, proc)
    return Server("spigot", f"http://127.0.0.1:{port}", proc)


def start_nginx(workdir: Path) -> Server:
    """Debian's nginx-light with its dav module taking PUTs: nginx's own streaming upload."""
    port = free_port()
    root = workdir / "nginx"
    for sub in ("html", "tmp", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        user root;
        worker_processes 1;
        daemon off;
        pid {root}/nginx.pid;
        error_log {root}/logs/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            sendfile on;
            tcp_nopush on;
            default_type application/octet-stream;
            client_max_body_size 0;
            client_body_temp_path {root}/tmp;
            server {{
                listen 127.0.0.1:{port};
                root {root}/html;
                location / {{
                    dav_methods PUT DELETE;
                    create_full_put_path on;
                }}
                # nginx as a streaming reverse proxy of itself: what a relay written in C
                # reaches on this machine, beside spigot's proxy (bench/run.py)
                location /relay/ {{
                    proxy_pass http://127.0.0.1:{port}/;
                    proxy_http_version 1.1;
                    proxy_buffering on;
                    proxy_buffers 16 64k;
                    proxy_buffer_size 64k;
                    proxy_max_temp_file_size 0;
                }}
            }}
        }}
    """)
    )
    proc = subprocess.Popen(
        [require("nginx"), "-c", str(conf), "-p", str(root)], stderr=subprocess.DEVNULL
    )
    wait_listening(port, proc)
    return Server("nginx", f"http://127.0.0.1:{port}", proc)


BENCH_NODE = Path(__file__).with_name("node")


def npm_ci(directory: Path) -> None:
    if not (directory / "node_modules").is_dir():
        subprocess.run(
            [require("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            check=True,
        )


def start_tus_node(workdir: Path) -> Server:
    """@tus/server with @tus/file-store (from npm), the Node.js tus server to beat."""
    npm_ci(BENCH_NODE)
    port = free_port()
    data = workdir / "tus-node-data"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [require("node"), "tus-server.mjs", str(data), str(port)],
        cwd=BENCH_NODE,
        stdout=subprocess.DEVNULL,
    )
    wait_listening(port, proc)
    return Server("tus-node", f"http://127.0.0.1:{port}", proc)
