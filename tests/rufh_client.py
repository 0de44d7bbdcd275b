"""A small HTTP/1.1 client on h11, for the IETF resumable-upload draft's tests.

aiohttp's and httpx's clients drop 1xx responses; h11 hands each one over, so a test sees
the 104s exactly as they came, in order, before the final response. The body can be sent
in pieces with pauses between them, or cut off after so many bytes (the socket is then
closed with the request unfinished, as a dropped connection would leave it).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import h11


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    at: float = 0.0  # when it arrived (time.monotonic)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def get(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Exchange:
    interim: list[Answer] = field(default_factory=list)
    final: Answer | None = None

    @property
    def statuses(self) -> list[int]:
        return [a.status for a in self.interim] + ([self.final.status] if self.final else [])


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode().lower()
        out[key] = f"{out[key]}, {value.decode()}" if key in out else value.decode()
    return out


def exchange(
    url: str,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes | Iterable[bytes] = b"",
    *,
    length: int | None = None,
    pause: float = 0.0,
    cut_after: int | None = None,
    timeout: float = 30.0,
) -> Exchange:
    """One request; every response to it. `body` is bytes or pieces, with `pause` seconds
    after each, during which responses that arrive are read (and timed). `length` is the
    Content-Length to declare when the pieces do not add up to it (a cut body)."""
    host, port = url.removeprefix("http://").split(":")
    pieces = [body] if isinstance(body, bytes) else list(body)
    total = sum(len(p) for p in pieces) if length is None else length
    fields = [("Host", f"{host}:{port}"), *(headers or {}).items()]
    names = {k.lower() for k, _ in fields}
    framed = "content-length" in names or "transfer-encoding" in names
    if not framed and (method not in ("HEAD", "GET", "DELETE", "OPTIONS") or total):
        fields.append(("Content-Length", str(total)))
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    reader = _Reader(h11.Connection(h11.CLIENT), sock, timeout)
    conn = reader.conn
    try:
        sock.sendall(conn.send(h11.Request(method=method, target=target, headers=fields)) or b"")
        sent = 0
        try:
            for piece in pieces:
                if cut_after is not None and sent + len(piece) >= cut_after:
                    sock.sendall(conn.send(h11.Data(data=piece[: cut_after - sent])) or b"")
                    reader.read_for(pause)
                    return reader.result  # the connection drops mid-body (finally closes it)
                sock.sendall(conn.send(h11.Data(data=piece)) or b"")
                sent += len(piece)
                reader.read_for(pause)
            sock.sendall(conn.send(h11.EndOfMessage()) or b"")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: read what it said
        reader.read_all()
        return reader.result
    finally:
        sock.close()


class _Reader:
    """Responses as they arrive, each timed on arrival."""

    def __init__(self, conn: h11.Connection, sock: socket.socket, timeout: float) -> None:
        self.conn, self.sock, self.timeout = conn, sock, timeout
        self.result = Exchange()
        self.answer: Answer | None = None
        self.body = bytearray()
        self.ended = False

    def read_for(self, seconds: float) -> None:
        """Read whatever arrives within `seconds`, without waiting longer."""
        deadline = time.monotonic() + seconds
        while not self.ended and (left := deadline - time.monotonic()) > 0:
            if not self._step(left):
                return

    def read_all(self) -> None:
        while not self.ended and self._step(self.timeout):
            pass

    def _step(self, wait: float) -> bool:
        """Handle one event; False when nothing more can come (or not within `wait`)."""
        try:
            event = self.conn.next_event()
        except h11.RemoteProtocolError:
            self.ended = True  # the connection ended mid-response
            return False
        if event is h11.NEED_DATA:
            self.sock.settimeout(wait)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return False
            except ConnectionResetError:
                data = b""
            if not data and self.answer is None and not self.result.interim:
                self.ended = True
            self.conn.receive_data(data)
            return bool(data) or not self.ended
        now = time.monotonic()
        if isinstance(event, h11.InformationalResponse):
            self.result.interim.append(Answer(event.status_code, _headers(event.headers), at=now))
        elif isinstance(event, h11.Response):
            self.answer = Answer(event.status_code, _headers(event.headers), at=now)
        elif isinstance(event, h11.Data):
            self.body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            if self.answer is not None:
                self.answer.body = bytes(self.body)
                self.result.final = self.answer
            self.ended = True
            return False
        return True
