"""The proxy with a TLS upstream, which is what real upstreams are: a local nginx serving
the payload over HTTPS with a self-signed certificate, fetched by curl directly and
through spigot's /proxy (issue 16's leg; target: at least 0.7x direct).

Over TLS the relay cannot splice: the bytes must be decrypted in spigot's process (by
OpenSSL, under asyncio's SSL protocol), then written to the client. spigot trusts the
certificate through SSL_CERT_FILE, which OpenSSL's default verify paths honour, as an
operator's private CA would be trusted. Alternating rounds, medians, and spigot's CPU
seconds per GiB relayed.
Run: python -m bench.proxy_tls [--size-mib 512] [--rounds 5] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

from bench.receive import server_cpu
from bench.run import curl, publish
from bench.servers import ROOT, Server, free_port, wait_listening
from tests.conftest import write_random
from tests.test_deploy_nginx import main_conf, self_signed
from tests.tools import require

MIB = 1 << 20
GIB = 1 << 30
TARGET = 0.7


def start_tls_nginx(root: Path, cert: Path, key: Path) -> Server:
    port = free_port()
    (root / "html").mkdir(parents=True, exist_ok=True)
    site = textwrap.dedent(f"""\
        server {{
            listen 127.0.0.1:{port} ssl;
            ssl_certificate {cert};
            ssl_certificate_key {key};
            sendfile on;
            default_type application/octet-stream;
            root {root}/html;
        }}
        """)
    main = main_conf(root, site)
    proc = subprocess.Popen(
        [require("nginx"), "-c", str(main), "-p", str(root)], stderr=subprocess.DEVNULL
    )
    wait_listening(port, proc)
    return Server("nginx-tls", f"https://127.0.0.1:{port}", proc)


def start_proxy(work: Path, cert: Path, extra: list[str]) -> Server:
    port = free_port()
    data = work / "spigot-data"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "server", "serve", "--port", str(port)),
            *("--storage", str(data), "--log-level", "warning"),
            # the upstream is nginx on loopback: bench only
            "--insecure-proxy-allow-private",
            "--insecure-proxy-unsigned",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "SSL_CERT_FILE": str(cert)},
    )
    wait_listening(port, proc)
    return Server("spigot", f"http://127.0.0.1:{port}", proc)


def fetch(url: str, cert: Path) -> float:
    start = time.perf_counter()
    curl("--cacert", str(cert), "-o", "/dev/null", url)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--spigot-arg", action="append", default=[], help="extra `spigot serve` argument"
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="spigot-bench-tls-") as tmp:
        work = Path(tmp)
        cert, key = self_signed(work, "localhost", "127.0.0.1")
        nginx = start_tls_nginx(work / "nginx", cert, key)
        spigot = start_proxy(work, cert, args.spigot_arg)
        write_random(work / "nginx" / "html" / "payload.bin", size)
        upstream = f"{nginx.url}/payload.bin"
        through = f"{spigot.url}/proxy?url={quote(upstream, safe='')}"
        times: dict[str, list[float]] = {"direct": [], "proxied": []}
        cpu: list[float] = []
        try:
            fetch(through, cert)  # warm: the page cache, the TLS session, the connector
            for i in range(args.rounds):
                legs = [("direct", upstream), ("proxied", through)]
                for leg, url in legs if i % 2 == 0 else legs[::-1]:
                    before = server_cpu(spigot)
                    times[leg].append(fetch(url, cert))
                    if leg == "proxied":
                        cpu.append(server_cpu(spigot) - before)
                print(f"round {i + 1}/{args.rounds} done", flush=True)
            rss = spigot.peak_rss()
        finally:
            spigot.stop()
            nginx.stop()
    direct = size / statistics.median(times["direct"]) / MIB
    proxied = size / statistics.median(times["proxied"]) / MIB
    ratio = proxied / direct
    per_gib = statistics.median(cpu) / (size / GIB)
    lines = [
        f"## {date.today().isoformat()}: the proxy with a TLS upstream",
        "",
        f"`python -m bench.proxy_tls` (part of `make bench`): nginx serves {args.size_mib} MiB "
        "over HTTPS (self-signed, trusted through SSL_CERT_FILE); curl fetches it directly "
        f"and through spigot's /proxy; {args.rounds} alternating rounds, medians.",
        "",
        "| measure | direct (curl) | through spigot | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| download | {direct:,.0f} MiB/s | {proxied:,.0f} MiB/s | {ratio:.2f}x "
        f"| >= {TARGET}x | {'yes' if ratio >= TARGET else 'NO'} |",
        f"| spigot CPU per GiB relayed | | {per_gib:.2f} s | | | |",
        f"| spigot peak RSS | | {rss / MIB:.0f} MiB | | <= 64 MiB "
        f"| {'yes' if rss <= 64 * MIB else 'NO'} |",
    ]
    publish(lines, not args.no_record)


if __name__ == "__main__":
    main()
