"""`spigot upload FILE... --server URL`: resumable tus uploads with tuspy, several at once.

Rerunning the same command after Ctrl-C, a crash or a reboot continues each file where
the server has it (the URL waits in the cache directory, see state.py). With an upload
link as `--server`, no token is needed.
"""

from __future__ import annotations

import mimetypes
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader.uploader import Uploader

from .progress import Board, Throttle
from .state import JsonStorage, PathFingerprint, cache_dir

CHUNK = 8 << 20


class TransferFailed(Exception):
    """One line for the user; the command exits 1."""


@dataclass(frozen=True, slots=True)
class Uploaded:
    path: Path
    url: str
    resumed_at: int
    sent: int


def endpoint(server: str) -> str:
    """The tus endpoint: a server's `/files/`, or an upload link as it is."""
    if "?" in server:
        return server
    return server.rstrip("/") + "/files/"


def upload_one(
    path: Path, server: str, token: str | None, board: Board, throttle: Throttle
) -> Uploaded:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = tus.TusClient(endpoint(server), headers=headers)
    storage = JsonStorage(cache_dir() / "uploads.json")
    fingerprint = PathFingerprint(path, server)
    metadata = {"filename": path.name}
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed:
        metadata["filetype"] = guessed
    chunk = min(CHUNK, 1 << 20) if throttle.rate else CHUNK

    def uploader() -> Uploader:
        return client.uploader(
            str(path),
            chunk_size=chunk,
            metadata=metadata,
            store_url=True,
            url_storage=storage,
            fingerprinter=fingerprint,
            retries=2,
            retry_delay=1,
        )

    try:
        try:
            up = uploader()
        except TusCommunicationError:  # the stored upload is gone (expired, deleted)
            storage.remove_item(fingerprint.key)
            up = uploader()
        size = up.get_file_size()
        start = up.offset
        transfer = board.transfer(path.name, size, start)
        while up.offset < size or up.url is None:
            before = up.offset
            up.upload_chunk()
            throttle.spend(up.offset - before)
            transfer.advance(up.offset)
            if size == 0:
                break
    except (TusCommunicationError, TusUploadFailed, OSError) as exc:
        raise TransferFailed(f"{path}: {describe(exc)}") from None
    storage.remove_item(fingerprint.key)
    url = str(up.url).split("?", 1)[0]
    return Uploaded(path, url, start, size - start)


def describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status:
        return f"the server answered {status}"
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        return str(exc)
    return "the server could not be reached; run the same command again to resume"


def upload(
    paths: list[Path], server: str, token: str | None, jobs: int, rate: int, board: Board
) -> list[Uploaded]:
    for path in paths:
        if not path.is_file():
            raise TransferFailed(f"{path}: not a file")
    throttle = Throttle(rate)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(upload_one, p, server, token, board, throttle) for p in paths]
        return [f.result() for f in futures]
