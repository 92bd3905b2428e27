"""Shared pieces of the hnnsim benchmarks: constants, the hand-written baseline loop, timing helpers.

Every benchmark runs its target once, untimed, before timing it (numba compiles on the
first call, which takes seconds), so no reported number contains compile time.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple, Optional, Tuple

import numba
import numpy as np

from systems import vector_math  # the pendulum's sin, so the baseline does the same arithmetic

#: step size of every fixed-step case (system time units)
DT = 0.01
#: steps of the long single-pendulum runs
N_LONG = 1_000_000
#: pendulum initial condition: released from rest at 1 rad
Q0, P0 = 1.0, 0.0


@numba.njit
def bare_leapfrog(q: float, p: float, params: np.ndarray, dt: float, nsteps: int) -> Tuple[float, float]:
    r"""Kick-drift-kick leapfrog for one pendulum, :math:`H = p^2/(2 m l^2) + m g l (1 - \cos q)`.

    Scalars in, scalars out, no output buffer, no finiteness check, the force
    :math:`m g l \sin q` written inline: the floor the library's kernels are measured
    against. The floating-point operations are the ones the generic splitting kernel
    performs for ``Leapfrog`` on ``systems.Pendulum`` (``params = [mass, length, g]``), in
    the same order, so both give bit-identical states; the benchmarks check that, so a
    ratio kernel/bare compares equal work.
    """
    m, l, g = params[0], params[1], params[2]
    half = 0.5 * dt
    force = m * g * l * vector_math.sin_fast(q)
    for _ in range(nsteps):
        p -= half * force
        q += dt * (p / (m * l * l))
        force = m * g * l * vector_math.sin_fast(q)
        p -= half * force
    return q, p


class BareTime(NamedTuple):
    """Wall time (s) of the bare loop for ``N_LONG`` steps: best and median of several runs."""

    best: float
    median: float


def fresh_state(q0: np.ndarray, p0: np.ndarray, keep: Optional[list] = None) -> Callable[[], tuple]:
    """A ``benchmark.pedantic`` setup giving every round its own copies of ``q0, p0``
    (``advance`` works in place). ``keep`` (a list), if given, holds the latest copies so a
    test can check the state the last round ended in."""

    def setup():
        q = np.array(q0, dtype=np.float64, order="C", copy=True)
        p = np.array(p0, dtype=np.float64, order="C", copy=True)
        if keep is not None:
            keep[:] = [q, p]
        return (q, p), {}

    return setup


def best_seconds(benchmark) -> Optional[float]:
    """Fastest round of a finished benchmark (s); ``None`` under ``--benchmark-disable``."""
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.min)


def record(benchmark, *, steps: Optional[int] = None, per: str = "ns_per_step", **info) -> None:
    """Put ``info`` and, given ``steps``, the best time per step (ns) in ``extra_info``."""
    best = best_seconds(benchmark)
    if steps is not None and best is not None:
        benchmark.extra_info[per] = round(best / steps * 1e9, 2)
    benchmark.extra_info.update(info)
    # other processes on a small machine delay numba's worker threads; keep the evidence
    benchmark.extra_info["load_average_1min"] = round(os.getloadavg()[0], 2)


def record_ratio(benchmark, bare: BareTime) -> None:
    """``extra_info["ratio_vs_bare"]`` (best round / best bare-loop time for the same steps)
    and ``ratio_vs_bare_median`` (median / median)."""
    benchmark.extra_info["bare_best_s"] = round(bare.best, 6)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["ratio_vs_bare"] = round(stats.stats.min / bare.best, 3)
        benchmark.extra_info["ratio_vs_bare_median"] = round(stats.stats.median / bare.median, 3)
