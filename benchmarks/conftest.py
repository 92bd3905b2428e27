"""Session fixtures of the hnnsim benchmarks (helpers live in ``_harness.py``)."""

from __future__ import annotations

import statistics
import timeit

import pytest

import systems
from _harness import DT, N_LONG, P0, Q0, BareTime, bare_leapfrog


@pytest.fixture(scope="session")
def pendulum():
    """The default pendulum: mass 1, length 1, g = 9.81."""
    return systems.get("pendulum")


@pytest.fixture(scope="session")
def bare_seconds(pendulum) -> BareTime:
    """Wall time (s) of :func:`bare_leapfrog` for ``N_LONG`` steps, compiled beforehand:
    best and median of 7 runs.

    The denominator of every ``ratio_vs_bare`` in ``extra_info``; measured once per session
    so a ratio does not depend on which tests were selected or in which order they ran.
    """
    bare_leapfrog(Q0, P0, pendulum.params, DT, 10)  # compile
    times = timeit.repeat(lambda: bare_leapfrog(Q0, P0, pendulum.params, DT, N_LONG), number=1, repeat=7)
    return BareTime(best=min(times), median=statistics.median(times))
