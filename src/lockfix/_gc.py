"""Python's cyclic garbage collector, paused while lockfix builds what it keeps.

A check makes objects by the hundred thousand (lock entries, requirements, markers, index
files) that live until it ends, and frees the rest by reference counting. The collector's
passes, set off by the count of objects made, walk all of them and find almost nothing: a
tenth of a cold check's CPU time, growing with the lock.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Run a block (or, as a decorator, a function) without the cyclic collector, then put
    it back as it was. What the block drops is freed as ever; cycles wait for the next
    collection after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
