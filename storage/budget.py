"""How large a batch each upload gathers before one write, so that memory stays flat.

An upload gathers network chunks into large writes done in a pool thread (local/store.py says
why: the cost is in thread hand-offs, not bytes). Alone, an upload gathers `largest`. With
many at once, each gathers an equal share of `total`, down to `smallest`, so all uploads
together hold about `total` bytes gathered plus as much in flight, however many there are.

The trade: when few uploads share the CPU, per-write overhead is what limits them and large
batches pay; when many do, smaller batches (and read windows, bodies.py) cost CPU per byte,
2.6 CPU-s/GiB alone against 5.8 at 256 uploads, for memory that grows ~200 KiB per upload
rather than ~10 MiB (bench/RESULTS.md, the load suite).
"""

from __future__ import annotations


class BatchBudget:
    def __init__(self, total: int, largest: int, smallest: int) -> None:
        assert 0 < smallest <= largest <= total
        self.total = total
        self.largest = largest
        self.smallest = smallest
        self.active = 0

    def join(self) -> None:
        """One more upload is gathering; pair with `leave`."""
        self.active += 1

    def leave(self) -> None:
        self.active -= 1

    @property
    def shared(self) -> bool:
        """Whether uploads get less than `largest` each: then one batch at a time is best."""
        return self.active * self.largest > self.total

    def batch(self) -> int:
        """The batch size for each gathering upload now."""
        share = self.total // max(self.active, 1)
        return max(self.smallest, min(self.largest, share))
