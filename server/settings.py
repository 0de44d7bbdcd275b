"""All configuration, in one typed object. Each option is declared once, below, and becomes
both a command-line flag (`--max-request-size`) and an env var (`SPIGOT_MAX_REQUEST_SIZE`).

Precedence: flag, then env var, then default. Values are parsed and checked here, so a bad
one stops the program at start with one line naming the option, never later with a trace.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .protocol.media import MEDIA_PATTERN
from .protocol.numerals import is_digits

ENV_PREFIX = "SPIGOT_"


class SettingError(ValueError):
    """A value an operator gave is not acceptable; the message says which and why."""


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?i?B?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1}
for _i, _p in enumerate("KMGTP", start=1):
    _UNITS[_p] = _UNITS[_p + "B"] = 1000**_i
    _UNITS[_p + "I"] = _UNITS[_p + "IB"] = 1024**_i


def parse_size(value: str) -> int:
    """'100MiB' (1024-based), '100MB' (1000-based), '104857600', '0'. Case does not matter."""
    match = _SIZE.fullmatch(value)
    if match is None or match.group(2).upper() not in _UNITS:
        raise SettingError(f"{value!r} is not a size (try 100MiB, 100MB or 104857600)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float:
    """'24h', '30m', '90s', '250ms', '1d', or plain seconds ('3600')."""
    match = _DURATION.fullmatch(value)
    if match is None:
        raise SettingError(f"{value!r} is not a duration (try 24h, 30m, 90s or 3600)")
    seconds = float(match.group(1)) * _SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise SettingError(f"{value!r} must be longer than zero")
    return seconds


def parse_port(value: str) -> int:
    if not is_digits(value) or not 0 <= int(value) <= 65535:
        raise SettingError(f"{value!r} is not a port number (0-65535; 0 picks a free one)")
    return int(value)


def parse_storage(value: str) -> str:
    """A directory path or file:// URL, normalised to an absolute file:// URL."""
    url = urlsplit(value)
    if url.scheme in ("", "file"):
        if url.scheme == "file" and url.netloc not in ("", "localhost"):
            raise SettingError(f"{value!r}: a file:// URL names a local path, not a host")
        path = unquote(url.path) if url.scheme else value
        if not path:
            raise SettingError("storage path is empty")
        return Path(path).expanduser().resolve().as_uri()
    if url.scheme == "s3":
        # Bucket names: 3-63 of a-z 0-9 . - (S3's rules); the prefix is any key path.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", url.netloc):
            raise SettingError(f"{value!r}: {url.netloc!r} is not an S3 bucket name")
        if url.query or url.fragment:
            raise SettingError(f"{value!r}: an s3:// URL is s3://bucket/prefix, nothing more")
        prefix = url.path.strip("/")
        return f"s3://{url.netloc}/{prefix}" if prefix else f"s3://{url.netloc}"
    raise SettingError(f"{value!r}: storage must be a path, a file:// or an s3:// URL")


def parse_endpoint_url(value: str) -> str | None:
    if not value:
        return None
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise SettingError(f"{value!r} is not an http(s) URL like http://127.0.0.1:9000")
    return value.rstrip("/")


def parse_part_size(value: str) -> int:
    size = parse_size(value)
    if not 5 * 1024**2 <= size <= 5 * 1024**3:
        raise SettingError(f"{value!r}: S3 parts are 5MiB to 5GiB")
    return size


def parse_public_url(value: str) -> str | None:
    if not value:
        return None
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise SettingError(f"{value!r} is not an http(s) base URL like https://files.example")
    return value.rstrip("/")


def parse_fsync(value: str) -> str:
    if value.lower() not in ("never", "finish", "always"):
        raise SettingError(f"{value!r} is not an fsync mode (never, finish, always)")
    return value.lower()


def parse_checksum(value: str) -> str:
    if value.lower() not in ("sha256", "none"):
        raise SettingError(f"{value!r} is not a checksum (sha256, none)")
    return value.lower()


def parse_accel_prefix(value: str) -> str:
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*/", value) or "//" in value or "/../" in value:
        raise SettingError(f"{value!r} is not a location prefix like /_spigot_files/")
    return value


def parse_workers(value: str) -> int:
    if value.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return parse_positive(value)


def parse_log_format(value: str) -> str:
    if value.lower() not in ("text", "json"):
        raise SettingError(f"{value!r} is not a log format (text or json)")
    return value.lower()


def parse_log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingError(f"{value!r} is not a log level (debug, info, warning, error)")
    return level


def parse_origins(value: str) -> tuple[str, ...]:
    """A comma list of origins allowed to call spigot from a browser, or `*`."""
    origins = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise SettingError(f"{origin!r} is not an origin like https://app.example")
    return origins


def parse_hook_url(value: str) -> str | None:
    if not value:
        return None
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise SettingError(f"{value!r} is not an http(s) URL")
    return value


def parse_non_negative(value: str) -> int:
    if not is_digits(value):
        raise SettingError(f"{value!r} is not a whole number")
    return int(value)


def parse_positive(value: str) -> int:
    if not is_digits(value) or int(value) < 1:
        raise SettingError(f"{value!r} is not a positive whole number")
    return int(value)


def parse_loop(value: str) -> str:
    if value not in ("asyncio", "uvloop"):
        raise SettingError(f"{value!r} is not an event loop (asyncio, uvloop)")
    if value == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise SettingError("uvloop is not installed (pip install uvloop)") from None
    return value


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingError(f"{value!r} is not true or false")


def parse_secret(value: str) -> str | None:
    if not value:
        return None
    if len(value) < 16:
        raise SettingError("the secret must be at least 16 characters")
    return value


MIN_KEY_BYTES = 32  # HMAC-SHA256 keys: shorter ones are guessable offline from one link


def parse_keys(value: str) -> tuple[str, ...]:
    """A comma list of signing keys: the first signs, every one verifies (rotation)."""
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    for key in keys:
        if len(key.encode()) < MIN_KEY_BYTES:
            raise SettingError(f"each key must be at least {MIN_KEY_BYTES} bytes")
    return keys


def parse_jwt_key(value: str) -> str | None:
    if not value:
        return None
    if len(value.encode()) < MIN_KEY_BYTES:
        raise SettingError(f"an HS256 key must be at least {MIN_KEY_BYTES} bytes")
    return value


AUTH_MODES = ("none", "jwt", "hook")


def parse_auth(value: str) -> str:
    mode = value.strip().lower()
    if mode not in AUTH_MODES:
        raise SettingError(f"{value!r} is not an auth mode (none, jwt or hook)")
    return mode


def parse_pem_file(value: str) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise SettingError(f"{value!r} is not a file")
    return str(path.resolve())


def parse_text(value: str) -> str | None:
    return value.strip() or None


def parse_content_types(value: str) -> tuple[str, ...]:
    types = tuple(t.strip().lower() for t in value.split(",") if t.strip())
    for t in types:
        if not MEDIA_PATTERN.fullmatch(t):
            raise SettingError(f"{t!r} is not a media type or pattern like image/*")
    return types


def _option(
    default: Any,
    parse: Callable[[str], Any],
    help: str,
    metavar: str = "",
    *,
    flag: bool = False,
    secret: bool = False,
    env_only: bool = False,
) -> Any:
    """One setting. `flag`: a switch on the command line. `secret`: never shown by repr,
    so it cannot reach a log line or a traceback. `env_only`: refused as a flag, because
    a command line shows in `ps` and in shell history."""
    return field(
        default=default,
        repr=not secret,
        metadata={
            "parse": parse,
            "help": help,
            "metavar": metavar,
            "flag": flag,
            "env_only": env_only,
        },
    )


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = _option("127.0.0.1", str, "address to listen on", "ADDR")
    workers: int = _option(
        1,
        parse_workers,
        "processes serving the one port (auto: one per CPU); the parent restarts any that dies",
        "N",
    )
    header_timeout: float = _option(
        10.0, parse_duration, "a request head must arrive in full within this", "TIME"
    )
    network_timeout: float = _option(
        60.0,
        parse_duration,
        "the longest silence inside a request body, or from a reader that takes no bytes",
        "TIME",
    )
    keepalive_timeout: float = _option(
        75.0, parse_duration, "how long an idle keep-alive connection stays open", "TIME"
    )
    max_connections: int = _option(
        10000, parse_non_negative, "open connections per process; more get 503 (0: no cap)", "N"
    )
    max_connections_per_ip: int = _option(
        0, parse_non_negative, "open connections per client address; more get 503 (0: no cap)", "N"
    )
    shutdown_timeout: float = _option(
        30.0,
        parse_duration,
        "on SIGTERM, how long requests in flight may take to finish (a second SIGTERM: now)",
        "TIME",
    )
    port: int = _option(8080, parse_port, "port to listen on (0: any free port)", "PORT")
    storage: str = _option(
        Path("data").resolve().as_uri(),
        parse_storage,
        "where files live: a path, file:// URL, or s3://bucket/prefix",
        "WHERE",
    )
    s3_endpoint_url: str | None = _option(
        None, parse_endpoint_url, "S3 API endpoint, for MinIO, R2, Ceph or moto", "URL"
    )
    s3_part_size: int = _option(
        8 * 1024**2,
        parse_part_size,
        "preferred S3 part size (raised as needed to stay within 10,000 parts)",
        "SIZE",
    )
    s3_concurrency: int = _option(
        4, parse_positive, "S3 part uploads in flight at once (bench/RESULTS.md)", "N"
    )
    # Parts wait on disk by default, as in tusd: memory then stays flat however many uploads
    # run at once (the temp cap bounds them instead), and in the bench it cost no throughput
    # while peak RSS fell from ~130 to 91-98 MiB (bench/RESULTS.md).
    s3_memory_part_size: int = _option(
        1024**2,
        parse_size,
        "S3 parts up to this size wait for upload in memory; larger ones in --temp-dir",
        "SIZE",
    )
    s3_redirect_downloads: bool = _option(
        False, parse_bool, "answer GET /files/{id} with a 302 to a presigned S3 URL", flag=True
    )
    fsync: str = _option(
        "finish",
        parse_fsync,
        "local disk: never; finish (data, info and directory on disk before a completion "
        "is reported); always (also every PATCH's bytes before its 204)",
        "MODE",
    )
    checksum: str = _option(
        "sha256",
        parse_checksum,
        "sha256: hash every upload as it arrives, for its ETag, JSON and Repr-Digest; none: "
        "hash only what a client's Repr-Digest asks to check (about 40 per cent less CPU per byte)",
        "ALGORITHM",
    )
    event_loop: str = _option(
        "uvloop",
        parse_loop,
        "uvloop, or asyncio's own loop; bench/RESULTS.md has what each measured",
        "LOOP",
    )
    no_direct_receive: bool = _option(
        False,
        parse_bool,
        "local disk: take upload bodies through aiohttp's chunks instead of reading the "
        "socket straight into the file from a pool thread (to compare)",
        flag=True,
    )
    no_104: bool = _option(
        False,
        parse_bool,
        "send no 104 (Upload Resumption Supported) interim responses to IETF-draft uploads, "
        "for proxies that cannot pass them (nginx): clients then learn the upload's URL from "
        "the final response",
        flag=True,
    )
    accel_redirect: str | None = _option(
        None,
        parse_accel_prefix,
        "local disk behind nginx: after its checks, GET answers with X-Accel-Redirect to "
        "PREFIX + the file's path under the storage directory (deploy/nginx/spigot.conf)",
        "PREFIX",
    )
    accel_reuse: float = _option(
        0.0,
        parse_duration,
        "with --accel-redirect: let nginx reuse spigot's answer to a signed download link or "
        "a public file for up to TIME (within the link's life), serving those GETs and ranges "
        "without asking spigot again; answers to tokens are never reused (0: off)",
        "TIME",
    )
    s3_redirect_expires: float = _option(
        900.0, parse_duration, "how long a presigned download URL stays valid", "TIME"
    )
    s3_lock_ttl: float = _option(
        15.0,
        parse_duration,
        "an S3 upload lease not renewed this long is free (its holder died)",
        "TIME",
    )
    presign_expires: float = _option(
        900.0, parse_duration, "how long presigned direct-upload requests stay valid", "TIME"
    )
    verify_direct_uploads: bool = _option(
        False,
        parse_bool,
        "read each direct upload back once, in the background, to record its sha256",
        flag=True,
    )
    temp_dir: str = _option(
        str(Path(tempfile.gettempdir()) / "spigot"),
        lambda v: str(Path(v).expanduser().resolve()),
        "where S3 parts too big for memory wait for upload",
        "DIR",
    )
    temp_cap: int = _option(
        1024**3, parse_size, "most bytes parts may occupy in --temp-dir at once", "SIZE"
    )
    max_request_size: int = _option(
        100 * 1024**2, parse_size, "largest request body, e.g. 100MiB; 0 means unlimited", "SIZE"
    )
    max_upload_size: int = _option(
        1024**4, parse_size, "largest resumable (tus) upload, e.g. 1TiB; 0 means unlimited", "SIZE"
    )
    upload_ttl: float = _option(
        86400.0, parse_duration, "an unfinished upload expires this long after creation", "TIME"
    )
    sweep_interval: float = _option(
        60.0, parse_duration, "how often expired unfinished uploads are removed", "TIME"
    )
    hook_url: str | None = _option(
        None,
        parse_hook_url,
        "receives a JSON POST when uploads are created, finished, terminated",
        "URL",
    )
    cors_origin: tuple[str, ...] = _option(
        (), parse_origins, "browser origins allowed to use spigot (comma list, or *)", "ORIGINS"
    )
    sse_heartbeat: float = _option(
        15.0, parse_duration, "comment sent on quiet event streams to keep them open", "TIME"
    )
    auth: str = _option(
        "none",
        parse_auth,
        "who may do what: none (loopback only), jwt or hook (README: Access control)",
        "MODE",
    )
    insecure_no_auth: bool = _option(
        False,
        parse_bool,
        "UNSAFE, trusted networks only: allow --auth none on a non-loopback address",
        flag=True,
    )
    jwt_key: str | None = _option(
        None,
        parse_jwt_key,
        "HS256 key for --auth jwt (env var only, 32+ bytes)",
        "KEY",
        secret=True,
        env_only=True,
    )
    jwt_public_key: str | None = _option(
        None, parse_pem_file, "PEM public key file for --auth jwt (RS256, ES256, EdDSA)", "FILE"
    )
    jwt_jwks_url: str | None = _option(
        None, parse_hook_url, "JWKS URL whose keys verify tokens for --auth jwt", "URL"
    )
    jwt_audience: str | None = _option(None, parse_text, "required `aud` of tokens", "AUD")
    jwt_issuer: str | None = _option(None, parse_text, "required `iss` of tokens", "ISS")
    auth_hook_url: str | None = _option(
        None, parse_hook_url, "for --auth hook: the app that says who a request is", "URL"
    )
    auth_hook_cache: float = _option(
        30.0, parse_duration, "how long the auth hook's answer for a credential is kept", "TIME"
    )
    auth_hook_timeout: float = _option(
        5.0, parse_duration, "how long the auth hook may take before the request gets 503", "TIME"
    )
    public_downloads: bool = _option(
        False,
        parse_bool,
        "with auth on, anyone with a file's id may download it (the id is the capability)",
        flag=True,
    )
    secret: tuple[str, ...] = _option(
        (),
        parse_keys,
        "keys that sign links, comma list: the first signs, all verify (env var; 32+ bytes)",
        "KEYS",
        secret=True,
    )
    insecure_proxy_unsigned: bool = _option(
        False,
        parse_bool,
        "UNSAFE, trusted networks only: proxy URLs without a signature",
        flag=True,
    )
    insecure_proxy_allow_private: bool = _option(
        False,
        parse_bool,
        "UNSAFE, tests and development only: proxy to private addresses",
        flag=True,
    )
    proxy_max_size: int = _option(0, parse_size, "largest proxied body; 0 means unlimited", "SIZE")
    proxy_content_types: tuple[str, ...] = _option(
        (), parse_content_types, "only proxy these types, e.g. image/*,video/*", "TYPES"
    )
    proxy_connect_timeout: float = _option(5.0, parse_duration, "upstream connect timeout", "TIME")
    proxy_first_byte_timeout: float = _option(
        15.0, parse_duration, "upstream time to response headers", "TIME"
    )
    proxy_idle_timeout: float = _option(
        30.0, parse_duration, "upstream silence allowed between chunks", "TIME"
    )
    proxy_no_splice: bool = _option(
        False,
        parse_bool,
        "relay every proxied body through aiohttp's reader, even where splice(2) or the "
        "TLS window could move it (for comparison)",
        flag=True,
    )
    import_concurrency: int = _option(4, parse_positive, "imports fetched at once", "N")
    import_queue: int = _option(100, parse_positive, "imports that may wait; more get 429", "N")
    import_token: str | None = _option(
        None,
        parse_secret,
        "DEPRECATED (use --auth jwt): a bearer token that grants the import scope",
        "TOKEN",
        secret=True,
    )
    public_url: str | None = _option(
        None, parse_public_url, "external base URL used in Location headers", "URL"
    )
    log_level: str = _option("INFO", parse_log_level, "debug, info, warning or error", "LEVEL")
    log_format: str = _option(
        "text", parse_log_format, "text, or json: one object per line for log shippers", "FORMAT"
    )
    metrics_token: str | None = _option(
        None,
        parse_secret,
        "a bearer token for GET /metrics (else it needs the admin scope when --auth is on)",
        "TOKEN",
        secret=True,
    )
    metrics_port: int | None = _option(
        None,
        parse_port,
        "serve /metrics on this port instead, on 127.0.0.1 only, and not on the main one",
        "PORT",
    )

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]

    @classmethod
    def options(cls) -> list[dataclasses.Field[Any]]:
        return list(dataclasses.fields(cls))

    @classmethod
    def resolve(cls, given: Mapping[str, str | None], env: Mapping[str, str]) -> Settings:
        """Build settings from raw flag values (None: not given) and the environment."""
        values: dict[str, Any] = {}
        for opt in cls.options():
            env_name = ENV_PREFIX + opt.name.upper()
            raw, source = given.get(opt.name), "--" + opt.name.replace("_", "-")
            if raw is None and env_name in env:
                raw, source = env[env_name], env_name
            if raw is None:
                continue
            if opt.metadata["env_only"] and source.startswith("--"):
                raise SettingError(f"{source}: give it as {env_name}, not on the command line")
            try:
                values[opt.name] = opt.metadata["parse"](raw)
            except SettingError as exc:
                raise SettingError(f"{source}: {exc}") from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """What no single option can say alone: the options each auth mode needs."""
        keys = [self.jwt_key, self.jwt_public_key, self.jwt_jwks_url]
        if self.auth == "jwt" and sum(k is not None for k in keys) != 1:
            raise SettingError(
                "--auth jwt needs exactly one of SPIGOT_JWT_KEY, --jwt-public-key, --jwt-jwks-url"
            )
        if self.auth == "hook" and self.auth_hook_url is None:
            raise SettingError("--auth hook needs --auth-hook-url")
        if self.accel_reuse and not self.accel_redirect:
            raise SettingError("--accel-reuse needs --accel-redirect")
        if self.checksum == "none" and self.verify_direct_uploads:
            raise SettingError("--verify-direct-uploads records a sha256: not with --checksum none")

    @property
    def hashes(self) -> bool:
        """Whether new uploads get their sha256 (--checksum)."""
        return self.checksum == "sha256"

    @property
    def storage_path(self) -> Path:
        return Path(unquote(urlsplit(self.storage).path))

    @property
    def s3_location(self) -> tuple[str, str] | None:
        """(bucket, prefix) when storage is s3://, else None."""
        url = urlsplit(self.storage)
        return (url.netloc, url.path.strip("/")) if url.scheme == "s3" else None
