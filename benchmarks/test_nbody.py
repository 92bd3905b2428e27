"""Direct-sum gravity (``systems.nbody.NBodyGravity``): pair interactions per second.

Run: ``.venv/bin/python -m pytest benchmarks/test_nbody.py --benchmark-only`` (~20 s on 2
cores; set ``OMP_WAIT_POLICY=PASSIVE`` on a shared machine, see ``benchmarks/compare.py``).

``nbody-leapfrog-1024``
    N = 1024 equal masses (total 1) in a virialised Plummer sphere, softening 0.01,
    ``Leapfrog(dt=1e-3).advance`` of one member (B = 1: the threaded forces) for 20 steps,
    one force evaluation per step, with 1 numba thread and with all of them; and REBOUND's
    ``leapfrog`` with ``gravity="basic"`` (serial pip build) on the same state when it is
    installed. ``extra_info["M_pairs_per_s"]``: N(N-1)/2 x steps / best round, in millions.
``nbody-forces-1024``
    One ``dH/dq`` call, serial and threaded functions (``kernel_functions``), same state.

Compile time is excluded (every case runs its target once before timing), every round
starts from the same state, and nothing about time is asserted.
"""

from __future__ import annotations

import os

import numba
import numpy as np
import pytest

import integrators
from _harness import fresh_state, record
from systems.nbody import NBodyGravity

N = 1024
STEPS = 20
DT = 1e-3
SOFTENING = 0.01
PAIRS = N * (N - 1) / 2
THREADS = sorted({1, numba.config.NUMBA_NUM_THREADS})


@pytest.fixture(scope="module")
def cluster():
    sys_ = NBodyGravity(n_bodies=N, softening=SOFTENING)
    q0, p0 = sys_.plummer_state(seed=1)
    return sys_, q0.reshape(1, -1), p0.reshape(1, -1)


def _pairs_per_s(benchmark, evaluations: float):
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["M_pairs_per_s"] = round(PAIRS * evaluations / stats.stats.min / 1e6, 1)
        benchmark.extra_info["M_pairs_per_s_median"] = round(PAIRS * evaluations / stats.stats.median / 1e6, 1)


@pytest.mark.benchmark(group="nbody-leapfrog-1024")
@pytest.mark.parametrize("threads", THREADS)
def test_nbody_leapfrog(benchmark, cluster, threads):
    sys_, q0, p0 = cluster
    integ = integrators.Leapfrog(dt=DT)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        integ.advance(sys_, q0.copy(), p0.copy(), 2)  # compile
        last = []
        res = benchmark.pedantic(lambda q, p: integ.advance(sys_, q, p, STEPS, every=STEPS),
                                 setup=fresh_state(q0, p0, keep=last), rounds=7)
    finally:
        numba.set_num_threads(before)
    _pairs_per_s(benchmark, STEPS)
    record(benchmark, steps=STEPS, n_bodies=N, numba_threads=threads, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))
    assert res.ok
    E0 = float(sys_.energy(q0[0], p0[0]))
    assert abs(float(sys_.energy(last[0][0], last[1][0])) - E0) < 1e-6 * abs(E0)


@pytest.mark.benchmark(group="nbody-leapfrog-1024")
def test_rebound_leapfrog_basic(benchmark, cluster):
    rebound = pytest.importorskip("rebound")
    sys_, q0, p0 = cluster
    m = sys_.masses()
    x0 = q0.reshape(N, 3)
    v0 = p0.reshape(N, 3) / m[:, None]

    def setup():
        sim = rebound.Simulation()
        sim.G, sim.softening, sim.dt = 1.0, SOFTENING, DT
        sim.integrator, sim.gravity = "leapfrog", "basic"
        for k in range(N):
            sim.add(m=m[k], x=x0[k, 0], y=x0[k, 1], z=x0[k, 2], vx=v0[k, 0], vy=v0[k, 1], vz=v0[k, 2])
        return (sim,), {}

    sims = []
    benchmark.pedantic(lambda sim: (sims.append(sim), sim.steps(STEPS)), setup=setup, rounds=7)
    _pairs_per_s(benchmark, STEPS)
    record(benchmark, steps=STEPS, n_bodies=N, rebound_version=rebound.__version__, threads=1)
    xs = np.empty((N, 3))
    vs = np.empty((N, 3))
    sims[-1].serialize_particle_data(xyz=xs, vxvyvz=vs)
    E0 = float(sys_.energy(q0[0], p0[0]))
    assert abs(float(sys_.energy(xs.reshape(-1), (m[:, None] * vs).reshape(-1))) - E0) < 1e-6 * abs(E0)


@pytest.mark.benchmark(group="nbody-forces-1024")
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "threaded"])
def test_nbody_forces(benchmark, cluster, parallel):
    sys_, q0, p0 = cluster
    dHdq = sys_.kernel_functions(parallel)[0]
    work = sys_.workspace(1)
    out = np.empty(sys_.ndof)
    args = (q0[0], p0[0], sys_.params, work.iwork[0], work.fwork[0], out)
    dHdq(*args)  # compile
    benchmark.pedantic(dHdq, args=args, rounds=50, iterations=1)
    _pairs_per_s(benchmark, 1)
    record(benchmark, n_bodies=N, numba_threads=numba.get_num_threads() if parallel else 1)
    assert np.all(np.isfinite(out))
