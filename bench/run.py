"""`make bench`: spigot against nginx on the same machine, in one run, as ratios.

The machine is shared and noisy, so every measurement is repeated in alternating order and
reported as a median, and targets are ratios, which survive a slower or busier machine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

from bench.servers import Server, start_nginx, start_spigot, start_tus_node
from tests.conftest import write_random
from tests.tools import require

RESULTS = Path(__file__).with_name("RESULTS.md")


def record(report: str) -> None:
    """Append one run's dated section to bench/RESULTS.md."""
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write("\n" + report.rstrip("\n") + "\n")


def publish(lines: list[str], keep: bool) -> None:
    """Print a run's section, and record it unless the run said --no-record."""
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if keep:
        record(report)


MIB = 1 << 20


def curl(*args: str) -> str:
    out = subprocess.run(
        [require("curl"), "-sS", "--fail", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def upload(server: Server, path: Path) -> tuple[float, str]:
    """Seconds to PUT the file, and the URL it can be fetched from."""
    if server.name == "nginx":
        target = f"{server.url}/{path.name}"
        start = time.perf_counter()
        curl("-T", str(path), target)
        return time.perf_counter() - start, target
    start = time.perf_counter()
    doc = json.loads(curl("-T", str(path), f"{server.url}/files/"))
    elapsed = time.perf_counter() - start
    return elapsed, f"{server.url}/files/{doc['id']}"


def tus_patch(server: Server, path: Path, size: int) -> float:
    """Seconds for one PATCH carrying the whole file into a fresh tus upload."""
    head = curl(
        "-i",
        "-X",
        "POST",
        "-H",
        "Tus-Resumable: 1.0.0",
        "-H",
        f"Upload-Length: {size}",
        f"{server.url}/files/",
    )
    location = next(
        line.split(":", 1)[1].strip()
        for line in head.splitlines()
        if line.lower().startswith("location:")
    )
    start = time.perf_counter()
    curl(
        "-X",
        "PATCH",
        "-H",
        "Tus-Resumable: 1.0.0",
        "-H",
        "Content-Type: application/offset+octet-stream",
        "-H",
        "Upload-Offset: 0",
        "-T",
        str(path),
        location,
    )
    return time.perf_counter() - start


def first_byte(url: str) -> float:
    """Seconds to the first byte of the response."""
    return float(curl("-o", "/dev/null", "-w", "%{time_starttransfer}", url))


def proxied(spigot: Server, url: str) -> str:
    return f"{spigot.url}/proxy?url={quote(url, safe='')}"


def slow_client_rss(spigot: Server, url: str, seconds: int) -> int:
    """spigot's peak RSS after a client has read through the proxy at 5 MB/s for a while."""
    subprocess.run(
        [
            require("curl"),
            "-sS",
            "-o",
            "/dev/null",
            "--limit-rate",
            "5M",
            "--max-time",
            str(seconds),
            proxied(spigot, url),
        ],
        check=False,
        stderr=subprocess.DEVNULL,  # cut off by --max-time on purpose
    )
    return spigot.peak_rss()


def download(url: str) -> float:
    start = time.perf_counter()
    curl("-o", "/dev/null", url)
    return time.perf_counter() - start


def small_ranges(url: str, seconds: int) -> float:
    """Requests per second for 4 KiB ranges, wrk with 1 thread and 16 connections."""
    out = subprocess.run(
        [require("wrk"), "-t1", "-c16", f"-d{seconds}s", "-H", "Range: bytes=4096-8191", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="spigot-bench-") as tmp:
        work = Path(tmp)
        source = work / "payload.bin"
        size_bytes = args.size_mib * MIB
        write_random(source, size_bytes)
        write_random(work / "small.bin", 4096)
        servers = [start_spigot(work), start_nginx(work)]
        curl("-T", str(work / "small.bin"), f"{servers[1].url}/small.bin")
        tus_node = start_tus_node(work)
        times: dict[str, dict[str, list[float]]] = {
            s.name: {
                "upload": [],
                "download": [],
                "ranges": [],
                "floor": [],
                "tus": [],
                "direct": [],
                "proxied": [],
                "nginx_relay": [],
                "ttfb_direct": [],
                "ttfb_proxied": [],
            }
            for s in [*servers, tus_node]
        }
        tus_rss = 0
        urls: dict[str, str] = {}
        upload_rss = 0
        try:
            for i in range(args.rounds):
                order = servers if i % 2 == 0 else servers[::-1]
                for server in order:
                    elapsed, urls[server.name] = upload(server, source)
                    times[server.name]["upload"].append(elapsed)
                upload_rss = max(upload_rss, servers[0].peak_rss())
                for server in order:
                    times[server.name]["download"].append(download(urls[server.name]))
                for server in order:
                    rps = small_ranges(urls[server.name], args.wrk_seconds)
                    times[server.name]["ranges"].append(rps)
                # aiohttp's per-request floor: the cheapest endpoint under the same load
                floor = small_ranges(servers[0].url + "/healthz", args.wrk_seconds)
                times["spigot"]["floor"].append(floor)
                before = servers[0].peak_rss()
                for server in [servers[0], tus_node] if i % 2 == 0 else [tus_node, servers[0]]:
                    times[server.name]["tus"].append(tus_patch(server, source, size_bytes))
                tus_rss = max(tus_rss, servers[0].peak_rss(), before)
                # the proxy: nginx serves the payload; fetch it directly and through spigot
                spigot, upstream = servers[0], urls["nginx"]
                nginx_relay = upstream.replace(servers[1].url, servers[1].url + "/relay", 1)
                legs = [
                    ("direct", upstream),
                    ("proxied", proxied(spigot, upstream)),
                    ("nginx_relay", nginx_relay),  # a reference: a C relay on this machine
                ]
                for leg, url in legs if i % 2 == 0 else legs[::-1]:
                    times["spigot"][leg].append(download(url))
                small = f"{servers[1].url}/small.bin"
                for _ in range(20):
                    times["spigot"]["ttfb_direct"].append(first_byte(small))
                    times["spigot"]["ttfb_proxied"].append(first_byte(proxied(spigot, small)))
                print(f"round {i + 1}/{args.rounds} done", flush=True)
            final_rss = servers[0].peak_rss()
            slow_rss = slow_client_rss(servers[0], urls["nginx"], args.wrk_seconds * 2)
        finally:
            for server in [*servers, tus_node]:
                server.stop()

    size = args.size_mib * MIB
    med = {n: {k: statistics.median(v) for k, v in m.items() if v} for n, m in times.items()}
    rows = [
        (
            "upload (curl -T)",
            size / med["spigot"]["upload"] / MIB,
            size / med["nginx"]["upload"] / MIB,
            "MiB/s",
            1.0,
        ),
        (
            "download",
            size / med["spigot"]["download"] / MIB,
            size / med["nginx"]["download"] / MIB,
            "MiB/s",
            0.85,
        ),
        ("4 KiB ranges (wrk -c16)", med["spigot"]["ranges"], med["nginx"]["ranges"], "req/s", 0.15),
    ]
    lines = [
        f"## {date.today().isoformat()}: spigot vs nginx-light and @tus/server",
        "",
        f"{args.rounds} alternating rounds, {args.size_mib} MiB payload, medians; one worker each.",
        "",
        "| measure | spigot | nginx | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, ours, theirs, unit, target in rows:
        ratio = ours / theirs
        lines.append(
            f"| {label} | {ours:,.0f} {unit} | {theirs:,.0f} {unit} | {ratio:.2f}x "
            f"| >= {target}x | {'yes' if ratio >= target else 'NO'} |"
        )
    floor = med["spigot"]["floor"]
    lines.append(
        f"| reference: spigot GET /healthz (wrk -c16) | {floor:,.0f} req/s | | "
        f"{floor / med['nginx']['ranges']:.2f}x | | |"
    )
    lines.append(
        f"| spigot peak RSS during uploads | {upload_rss / MIB:.0f} MiB | | | <= 64 MiB "
        f"| {'yes' if upload_rss <= 64 * MIB else 'NO'} |"
    )
    lines.append(f"| spigot peak RSS, whole run | {final_rss / MIB:.0f} MiB | | | | |")
    ours, theirs = size / med["spigot"]["tus"] / MIB, size / med["tus-node"]["tus"] / MIB
    lines += [
        "",
        "| tus: one PATCH of the payload | spigot | @tus/server + file-store | ratio | target "
        "| met |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| throughput | {ours:,.0f} MiB/s | {theirs:,.0f} MiB/s | {ours / theirs:.2f}x | >= 2x "
        f"| {'yes' if ours / theirs >= 2 else 'NO'} |",
        f"| spigot peak RSS | {tus_rss / MIB:.0f} MiB | | | <= 64 MiB "
        f"| {'yes' if tus_rss <= 64 * MIB else 'NO'} |",
    ]
    direct = size / med["spigot"]["direct"] / MIB
    through = size / med["spigot"]["proxied"] / MIB
    relay = size / med["spigot"]["nginx_relay"] / MIB
    added_ms = (med["spigot"]["ttfb_proxied"] - med["spigot"]["ttfb_direct"]) * 1000
    lines += [
        "",
        "| proxy: the payload from nginx | direct | through spigot | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| download | {direct:,.0f} MiB/s | {through:,.0f} MiB/s | {through / direct:.2f}x "
        f"| >= 0.8x | {'yes' if through / direct >= 0.8 else 'NO'} |",
        f"| reference: nginx proxy_pass to itself (1 MiB of buffers) | {direct:,.0f} MiB/s "
        f"| {relay:,.0f} MiB/s | {relay / direct:.2f}x | | |",
        f"| spigot's relay against nginx's | | | {through / relay:.2f}x | | |",
        f"| median added time to first byte | | {added_ms:.1f} ms | | <= 5 ms "
        f"| {'yes' if added_ms <= 5 else 'NO'} |",
        f"| spigot peak RSS after a 5 MB/s client | | {slow_rss / MIB:.0f} MiB | | | |",
    ]
    publish(lines, not args.no_record)


if __name__ == "__main__":
    main()
