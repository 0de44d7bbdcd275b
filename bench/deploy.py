"""`make bench`, deployment: spigot behind nginx with X-Accel-Redirect, and --workers 2.

1. nginx runs deploy/nginx/spigot.conf (as tests/test_deploy_nginx.py templates it) in front
   of spigot with `--accel-redirect`: spigot checks each GET, nginx sends the bytes. Against
   it, the same nginx serves the same data file straight from a plain location. Measured:
   1 GiB downloads and 4 KiB ranges (wrk -c16), with spigot's CPU time per GiB. A signed
   download link is measured too: with `--accel-reuse`, nginx answers it from spigot's
   first answer, and against it nginx alone also runs with the open_file_cache that the
   link's location has.
2. `spigot serve --workers 2` against nginx with `worker_processes 2`, both serving 4 KiB
   ranges of one file and a tiny fixed answer (`/healthz`; nginx `return 200`).

Alternating rounds, medians, ratios; appended to bench/RESULTS.md with the date.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

from bench.run import curl, download, record, small_ranges
from bench.servers import Server, free_port, wait_listening
from tests.conftest import write_random
from tests.processes import cpu_seconds
from tests.test_deploy_nginx import main_conf, self_signed, templated
from tests.tools import require

MIB = 1 << 20


SECRET = "the signing key of the deployment bench"


def spigot(data: Path, *args: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "server", "serve", "--port", str(port)]
    command += ["--storage", str(data), "--max-request-size", "0", "--log-level", "warning"]
    env = {**os.environ, "SPIGOT_SECRET": SECRET}
    proc = subprocess.Popen([*command, *args], stdout=subprocess.DEVNULL, env=env)
    wait_listening(port, proc)
    return Server("spigot", f"http://127.0.0.1:{port}", proc)


def nginx(root: Path, site: str, workers: int) -> Server:
    conf = main_conf(root, site, workers)
    proc = subprocess.Popen([require("nginx"), "-c", str(conf), "-p", str(root)])
    return Server("nginx", "", proc)


def accel(work: Path, rounds: int, size_mib: int, seconds: int) -> list[str]:
    data = work / "accel-data"
    server = spigot(data, "--accel-redirect", "/_spigot_files/", "--accel-reuse", "60s")
    http, https, direct = free_port(), free_port(), free_port()
    cert, key = self_signed(work)
    upstream = int(server.url.rsplit(":", 1)[1])
    site = templated(upstream, http, https, cert, key, data)
    site += (
        f"server {{ listen 127.0.0.1:{direct}; sendfile on; tcp_nopush on;\n"
        f"  location /direct/ {{ alias {data}/; }}\n"
        # the descriptors kept as in the link location of deploy/nginx/spigot.conf
        f"  location /direct-kept/ {{ alias {data}/; open_file_cache max=10000 inactive=60s;"
        " open_file_cache_valid 1s; } }\n"
    )
    front = nginx(work / "nginx-accel", site, 1)
    try:
        wait_listening(http, front.proc)
        wait_listening(direct, front.proc)
        payload = work / "accel.bin"
        write_random(payload, size_mib * MIB)
        made = curl("-T", str(payload), f"http://127.0.0.1:{http}/files/accel.bin")
        file_id = made.split('"id": "', 1)[1].split('"', 1)[0]
        signed = curl("--data", json.dumps({"file": file_id}), f"http://127.0.0.1:{http}/sign")
        urls = {
            "accel": f"http://127.0.0.1:{http}/files/{file_id}",
            "link": json.loads(signed)["url"],  # spigot's answer reused by nginx
            "direct": f"http://127.0.0.1:{direct}/direct/{file_id}",
            "kept": f"http://127.0.0.1:{direct}/direct-kept/{file_id}",
        }
        got: dict[str, dict[str, list[float]]] = {k: {"dl": [], "rps": []} for k in urls}
        cpu: list[float] = []
        link_cpu: list[float] = []
        for i in range(rounds):
            order = list(urls) if i % 2 == 0 else list(urls)[::-1]
            for leg in order:
                before = cpu_seconds(server.proc.pid)
                got[leg]["dl"].append(download(urls[leg]))
                if leg == "accel":
                    cpu.append(cpu_seconds(server.proc.pid) - before)
                elif leg == "link":
                    link_cpu.append(cpu_seconds(server.proc.pid) - before)
            for leg in order:
                got[leg]["rps"].append(small_ranges(urls[leg], seconds))
            print(f"accel round {i + 1}/{rounds} done", flush=True)
    finally:
        front.stop()
        server.stop()
    gib = size_mib / 1024
    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in got.items()}
    a_dl, d_dl = size_mib / med["accel"]["dl"], size_mib / med["direct"]["dl"]
    l_dl = size_mib / med["link"]["dl"]
    a_rps, l_rps, d_rps = med["accel"]["rps"], med["link"]["rps"], med["direct"]["rps"]
    k_rps = med["kept"]["rps"]
    return [
        "| behind nginx, --accel-redirect | through spigot | nginx alone | ratio |",
        "| --- | --- | --- | --- |",
        f"| {size_mib} MiB download | {a_dl:,.0f} MiB/s | {d_dl:,.0f} MiB/s | {a_dl / d_dl:.2f}x |",
        f"| 4 KiB ranges (wrk -c16) | {a_rps:,.0f} req/s | {d_rps:,.0f} req/s "
        f"| {a_rps / d_rps:.2f}x |",
        f"| {size_mib} MiB download, signed link (--accel-reuse) | {l_dl:,.0f} MiB/s "
        f"| {d_dl:,.0f} MiB/s | {l_dl / d_dl:.2f}x |",
        f"| 4 KiB ranges, signed link (--accel-reuse) | {l_rps:,.0f} req/s | {d_rps:,.0f} req/s "
        f"| {l_rps / d_rps:.2f}x (issue 16: >= 0.8x) |",
        f"| the same, against nginx alone with open_file_cache as the link location has it "
        f"| {l_rps:,.0f} req/s | {k_rps:,.0f} req/s | {l_rps / k_rps:.2f}x |",
        # /proc counts in 10 ms ticks: nginx sends the bytes, so spigot's share is a tick or so
        f"| spigot CPU per GiB downloaded | {statistics.median(cpu) / gib * 1000:.0f} ms; "
        f"signed link {statistics.median(link_cpu) / gib * 1000:.0f} ms (10 ms ticks) | | |",
    ]


def workers(work: Path, rounds: int, seconds: int) -> list[str]:
    data = work / "workers-data"
    server = spigot(data, "--workers", "2")
    port = free_port()
    root = work / "nginx-workers"
    (root / "html").mkdir(parents=True, exist_ok=True)
    write_random(root / "html" / "small.bin", 64 * 1024)
    site = textwrap.dedent(f"""\
        server {{
            listen 127.0.0.1:{port};
            root {root}/html;
            location = /healthz {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
        }}
        """)
    front = nginx(root, site, 2)
    try:
        wait_listening(port, front.proc)
        made = curl("-T", str(root / "html" / "small.bin"), f"{server.url}/files/small.bin")
        file_id = made.split('"id": "', 1)[1].split('"', 1)[0]
        legs = {
            "spigot ranges": f"{server.url}/files/{file_id}",
            "nginx ranges": f"http://127.0.0.1:{port}/small.bin",
            "spigot healthz": f"{server.url}/healthz",
            "nginx healthz": f"http://127.0.0.1:{port}/healthz",
        }
        rps: dict[str, list[float]] = {k: [] for k in legs}
        for i in range(rounds):
            for leg in list(legs) if i % 2 == 0 else list(legs)[::-1]:
                rps[leg].append(small_ranges(legs[leg], seconds))
            print(f"workers round {i + 1}/{rounds} done", flush=True)
    finally:
        front.stop()
        server.stop()
    med = {k: statistics.median(v) for k, v in rps.items()}
    return [
        "| two workers each | spigot --workers 2 | nginx worker_processes 2 | ratio |",
        "| --- | --- | --- | --- |",
        f"| 4 KiB ranges (wrk -c16) | {med['spigot ranges']:,.0f} req/s "
        f"| {med['nginx ranges']:,.0f} req/s | {med['spigot ranges'] / med['nginx ranges']:.2f}x |",
        f"| /healthz (wrk -c16) | {med['spigot healthz']:,.0f} req/s "
        f"| {med['nginx healthz']:,.0f} req/s "
        f"| {med['spigot healthz'] / med['nginx healthz']:.2f}x |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spigot-bench-deploy-") as tmp:
        work = Path(tmp)
        lines = [
            f"## {date.today().isoformat()}: deployment (nginx in front, --workers)",
            "",
            f"{args.rounds} alternating rounds, medians; wrk -t1 -c16 for {args.wrk_seconds} s.",
            "",
            *accel(work, args.rounds, args.size_mib, args.wrk_seconds),
            "",
            *workers(work, args.rounds, args.wrk_seconds),
        ]
    report = "\n".join(lines) + "\n"
    print("\n" + report + f"\n({time.monotonic() - started:.0f} s)")
    if not args.no_record:
        record(report)


if __name__ == "__main__":
    main()
