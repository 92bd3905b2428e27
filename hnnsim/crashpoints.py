"""Named crash points in the write path, for tests that kill the writer on purpose.

Crash safety is a claim about every moment of a run, so the tests do not rely on a kill
landing somewhere by chance: each write and flush of the H5MD writer calls
:func:`reached` with a name from :data:`POINTS`, and a process started with the environment
variable ``HNNSIM_CRASH_AT="<point>:<n>"`` ends itself with ``os._exit(86)`` (no cleanup, no
flush: what a SIGKILL leaves) the ``n``-th time it reaches ``<point>``. Unset, a crash point
costs one comparison. ``tests/test_crash_points.py`` runs a writer to each point and checks
that the file reads back and resumes bit-identically to an uninterrupted run.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Tuple
from .errors import InputError

#: Exit status of a process ended at a crash point.
EXIT_CODE = 86

#: Every crash point, in the order one block reaches them.
POINTS = (
    "lock:held",               # a writer holds its lock, before it creates or opens the file
    "append:start",            # before the block's value rows
    "append:values",           # value and observable rows written, not flushed
    "append:values-flushed",   # ... flushed; step/time rows not yet written
    "append:series",           # step/time rows written, not flushed
    "append:series-flushed",   # the block's frames are complete on disk
    "checkpoint:start",        # before the checkpoint slot is written
    "checkpoint:data",         # the free slot's q, p, aux, step written, not flushed
    "checkpoint:data-flushed", # ... flushed; the slot index still names the previous slot
    "checkpoint:slot",         # the slot index switched to the new slot
    "create:rename",           # a new file's first block is on disk, before it is renamed into place
)

#: points a writer reaches once in its life (at its start)
ONCE = frozenset({"lock:held", "create:rename"})


def _parse(spec: Optional[str]) -> Optional[Tuple[str, int]]:
    if not spec:
        return None
    name, _, n = spec.rpartition(":")
    if name not in POINTS or not n.isdigit() or int(n) < 1:
        raise InputError(f"HNNSIM_CRASH_AT must be '<point>:<n>' with a point from {POINTS} and n >= 1, "
                         f"got {spec!r}")
    return name, int(n)


_TARGET = _parse(os.environ.get("HNNSIM_CRASH_AT"))
_seen: Dict[str, int] = {}


def arm(point: Optional[str], n: int = 1) -> None:
    """End the process the ``n``-th time from now that it reaches ``point`` (``None``
    disarms): the same as starting it with ``HNNSIM_CRASH_AT``, for a test that forks
    writers from one warmed-up process."""
    global _TARGET
    _TARGET = None if point is None else _parse(f"{point}:{n}")
    _seen.clear()


def reached(point: str) -> None:
    """Mark that the write path reached ``point``; end the process here if asked to."""
    if _TARGET is not None and _TARGET[0] == point:
        _seen[point] = _seen.get(point, 0) + 1
        if _seen[point] == _TARGET[1]:
            os._exit(EXIT_CODE)
