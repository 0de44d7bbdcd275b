"""Where an interrupted upload's URL waits for the next run: a small JSON file in the
user's cache directory (XDG), keyed by the file's absolute path, size and mtime, so a
changed file starts over and an unchanged one continues wherever the last run stopped."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import IO, Any

from tusclient.fingerprint.interface import Fingerprint
from tusclient.storage.interface import Storage


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spigot"


class PathFingerprint(Fingerprint):
    """The file's identity for resuming: path, size and mtime, not its bytes (reading a
    100 GiB file to fingerprint it would cost more than the resume saves)."""

    def __init__(self, path: Path, server: str) -> None:
        stat = path.stat()
        key = f"{server}\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
        self.key = hashlib.sha256(key.encode()).hexdigest()

    def get_fingerprint(self, fs: IO[bytes]) -> str:
        return self.key


class JsonStorage(Storage):
    """tuspy's URL storage as one JSON file, replaced atomically, shared by the threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)

    def get_item(self, key: str) -> str | None:
        with self._lock:
            value = self._read().get(key)
            return value if isinstance(value, str) else None

    def set_item(self, key: str, value: str) -> None:
        with self._lock:
            data = self._read()
            data[key] = value
            self._write(data)

    def remove_item(self, key: str) -> None:
        with self._lock:
            data = self._read()
            if data.pop(key, None) is not None:
                self._write(data)
