"""All configuration, in one typed object. Each option is declared once, below, and becomes
both a command-line flag (`--max-request-size`) and an env var (`SPIGOT_MAX_REQUEST_SIZE`).

Precedence: flag, then env var, then default. Values are parsed and checked here, so a bad
one stops the program at start with one line naming the option, never later with a trace.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

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
    if not value.isdigit() or not 0 <= int(value) <= 65535:
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
        raise SettingError("s3:// storage is not available in this version yet")
    raise SettingError(f"{value!r}: storage must be a path or a file:// URL")


def parse_public_url(value: str) -> str | None:
    if not value:
        return None
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise SettingError(f"{value!r} is not an http(s) base URL like https://files.example")
    return value.rstrip("/")


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


def parse_positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise SettingError(f"{value!r} is not a positive whole number")
    return int(value)


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


def parse_content_types(value: str) -> tuple[str, ...]:
    types = tuple(t.strip().lower() for t in value.split(",") if t.strip())
    for t in types:
        if not re.fullmatch(r"[a-z0-9.+-]+/(\*|[a-z0-9.+-]+)", t):
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
) -> Any:
    """One setting. `flag`: a switch on the command line. `secret`: never shown by repr,
    so it cannot reach a log line or a traceback."""
    return field(
        default=default,
        repr=not secret,
        metadata={"parse": parse, "help": help, "metavar": metavar, "flag": flag},
    )


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = _option("127.0.0.1", str, "address to listen on", "ADDR")
    port: int = _option(8080, parse_port, "port to listen on (0: any free port)", "PORT")
    storage: str = _option(
        Path("data").resolve().as_uri(), parse_storage, "where files live: a path or file:// URL"
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
    secret: str | None = _option(
        None, parse_secret, "key that signs proxy links (use the env var)", "KEY", secret=True
    )
    proxy_unsigned: bool = _option(
        False,
        parse_bool,
        "UNSAFE, trusted networks only: proxy URLs without a signature",
        flag=True,
    )
    proxy_allow_private: bool = _option(
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
    import_concurrency: int = _option(4, parse_positive, "imports fetched at once", "N")
    import_queue: int = _option(100, parse_positive, "imports that may wait; more get 429", "N")
    import_token: str | None = _option(
        None,
        parse_secret,
        "if set, POST /imports needs Authorization: Bearer TOKEN",
        "TOKEN",
        secret=True,
    )
    public_url: str | None = _option(
        None, parse_public_url, "external base URL used in Location headers", "URL"
    )
    log_level: str = _option("INFO", parse_log_level, "debug, info, warning or error", "LEVEL")

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
            try:
                values[opt.name] = opt.metadata["parse"](raw)
            except SettingError as exc:
                raise SettingError(f"{source}: {exc}") from None
        return cls(**values)

    @property
    def storage_path(self) -> Path:
        return Path(unquote(urlsplit(self.storage).path))
