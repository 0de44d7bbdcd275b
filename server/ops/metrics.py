"""spigot's metrics, in the Prometheus text format through prometheus_client.

Names follow Prometheus' conventions: `spigot_` first, `_total` on counters, units in the
name (`_seconds`, `_bytes`). Routes are labelled by their pattern (`/files/{id}`), never
by the path, so ids cannot grow the series without bound.

With several workers (`spigot serve --workers N`) the parent points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker imports this module;
each worker then writes its samples there and `exposition()` sums every worker's, so a
scrape that lands on one worker still sees all of them. Gauges say how to combine
(`livesum`: the live workers' values added up).
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# Request durations from a /healthz to an hour-long upload.
DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600, 3600)

REQUESTS = Counter(
    "spigot_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
DURATION = Histogram(
    "spigot_http_request_duration_seconds",
    "Time from request to the end of its response",
    ["route"],
    buckets=DURATION_BUCKETS,
)
RECEIVED = Counter("spigot_http_received_bytes_total", "Request body bytes read")
SENT = Counter("spigot_http_sent_bytes_total", "Response bytes written, headers included")
UPLOADS = Counter(
    "spigot_uploads_total", "Uploads by what happened to them", ["event"]
)  # created, finished, terminated, expired
UPLOADS_IN_FLIGHT = Gauge(
    "spigot_uploads_in_flight",
    "Requests streaming an upload body now",
    multiprocess_mode="livesum",
)
CONNECTIONS = Gauge(
    "spigot_open_connections", "Open client connections", multiprocess_mode="livesum"
)
SSE_SUBSCRIBERS = Gauge(
    "spigot_sse_subscribers", "Event streams open now", multiprocess_mode="livesum"
)
PROXY_BYTES = Counter("spigot_proxy_sent_bytes_total", "Proxied body bytes sent to clients")
PROXY_ERRORS = Counter(
    "spigot_proxy_upstream_errors_total", "Proxied requests the upstream failed", ["reason"]
)
S3_DURATION = Histogram(
    "spigot_s3_request_duration_seconds",
    "S3 API calls by operation",
    ["operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HOOK_CALLS = Counter("spigot_hook_calls_total", "Calls to webhooks and the auth hook", ["hook"])
HOOK_FAILURES = Counter(
    "spigot_hook_failures_total", "Hook calls that failed or were refused", ["hook"]
)
SWEEPS = Counter("spigot_sweep_runs_total", "Expiration sweeps run")
SWEEP_DURATION = Histogram(
    "spigot_sweep_duration_seconds",
    "How long a sweep took",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
)


# A method aiohttp accepts may be any token; only these get a series of their own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


# prometheus_client validates and locks on every labels() call, which measured about a
# tenth of a small request's time; the children are fixed once made, so each is looked up
# once. The label space is bounded (methods above, route patterns, statuses).
@functools.lru_cache(maxsize=1024)
def requests_of(method: str, route: str, status: int) -> Counter:
    return REQUESTS.labels(method_label(method), route, str(status))


@functools.lru_cache(maxsize=256)
def duration_of(route: str) -> Histogram:
    return DURATION.labels(route)


def observe_s3_call(operation: str, seconds: float, outcome: str) -> None:
    """storage's CallObserver callback (S3Store): botocore's threads call it."""
    S3_DURATION.labels(operation, outcome).observe(seconds)


def _version() -> str:
    try:
        return version("spigot")
    except PackageNotFoundError:  # pragma: no cover - a checkout without its metadata
        return "unknown"


class BuildInfo(Collector):
    """`spigot_build_info{version, python} 1`, computed at scrape time: prometheus_client's
    Info cannot live in multiprocess mode, and this needs no shared state."""

    def collect(self) -> Iterable[Metric]:
        yield InfoMetricFamily(
            "spigot_build",
            "spigot's version and the Python it runs on",
            value={"version": _version(), "python": platform.python_version()},
        )


if not MULTIPROCESS:
    REGISTRY.register(BuildInfo())


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its Content-Type."""
    if not MULTIPROCESS:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # all workers, summed
    registry.register(BuildInfo())
    return generate_latest(registry), CONTENT_TYPE_LATEST
