"""Progress for transfers: rich's bars on a terminal, one plain line per tenth elsewhere
(a log file or a CI job reads better without carriage returns)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Transfer:
    """One file's progress: `advance(to)` with the bytes done so far."""

    def __init__(self, board: Board, name: str, total: int, done: int) -> None:
        self._board = board
        self.name = name
        self.total = total
        self.done = done
        self._task = board.add(name, total, done)
        self._tenth = -1

    def advance(self, done: int) -> None:
        self.done = done
        self._board.update(self)

    def tenth(self) -> int:
        return 10 * self.done // self.total if self.total else 10


class Board:
    def __init__(self) -> None:
        self.console = Console(file=sys.stderr)
        self.live = self.console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        self._lock = threading.Lock()
        self._tenths: dict[TaskID, int] = {}

    def __enter__(self) -> Board:
        self._progress.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.__exit__(kind, exc, tb)

    def add(self, name: str, total: int, done: int) -> TaskID:
        task = self._progress.add_task(name, total=total or None, completed=done)
        if not self.live and done:
            self.line(f"{name}: resuming at {done} of {total} bytes")
        return task

    def update(self, transfer: Transfer) -> None:
        with self._lock:
            self._progress.update(transfer._task, completed=transfer.done)
            if not self.live:
                tenth = transfer.tenth()
                if tenth != self._tenths.get(transfer._task):
                    self._tenths[transfer._task] = tenth
                    self.line(f"{transfer.name}: {transfer.done} of {transfer.total} bytes")

    def line(self, text: str) -> None:
        print(text, file=self.console.file, flush=True)

    def transfer(self, name: str, total: int, done: int = 0) -> Transfer:
        return Transfer(self, name, total, done)


class Throttle:
    """`--limit-rate`: at most `rate` bytes a second through `spend` (0: no limit)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._start = time.monotonic()
        self._spent = 0
        self._lock = threading.Lock()

    def spend(self, n: int) -> None:
        if not self.rate:
            return
        with self._lock:
            self._spent += n
            ahead = self._spent / self.rate - (time.monotonic() - self._start)
        if ahead > 0:
            time.sleep(ahead)


@contextmanager
def board() -> Iterator[Board]:
    with Board() as b:
        yield b
