"""Steady-state speed of hnnsim's numba kernels, against a hand-written loop and scipy.

Run: ``.venv/bin/python -m pytest benchmarks/ --benchmark-only`` (see benchmarks/README.md).

Groups (cases of one group are printed in one table):

``pendulum-leapfrog-1e6``
    10^6 leapfrog steps of one pendulum: the bare numba loop (baseline), the library
    kernel ``integ.advance``, and ``Simulator.run`` writing HDF5 / keeping frames in memory.
    ``extra_info["ratio_vs_bare"]`` = best time / best bare-loop time (and the same
    for medians).
``pendulum-span-T100``
    The same pendulum over t in [0, 100]: leapfrog kernel (10^4 steps of 0.01) against
    scipy ``solve_ivp(method="DOP853", rtol=1e-9, atol=1e-9)``; time per unit of simulated
    time and the energy error each reaches.
``step-cost-pendulum``, ``step-cost-two-body``
    Every registered integrator that accepts the system, 10^5 steps.
``ensemble-leapfrog-pendulum``
    B = 1, 64, 1024 pendulums in one kernel call (prange over members).

Timing rules: each case calls its target once untimed first (numba compiles then), every
round starts from the same initial state (``benchmark.pedantic`` setup, outside the timing),
and nothing is asserted about time; the asserts check that the timed code computed the
right thing.
"""

from __future__ import annotations

import itertools
import math
import os

import numba
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import integrators
import systems
from _harness import DT, N_LONG, P0, Q0, bare_leapfrog, fresh_state, record, record_ratio

GROUP_LONG = "pendulum-leapfrog-1e6"
ROUNDS_LONG = 10


def _pendulum_state(q0: float = Q0, p0: float = P0):
    return np.array([[q0]]), np.array([[p0]])


def _relative_energy_error(system, q, p, q0=Q0, p0=P0) -> float:
    e0 = float(system.energy(np.array([q0]), np.array([p0])))
    return float(np.max(np.abs(system.energy(q, p) - e0)) / abs(e0))


# -- 1. one pendulum, 10^6 leapfrog steps -------------------------------------------------

@pytest.mark.benchmark(group=GROUP_LONG)
def test_bare_loop(benchmark, pendulum):
    """Baseline: hand-written njit kick-drift-kick loop, scalars, sin inlined, no output."""
    params = pendulum.params
    bare_leapfrog(Q0, P0, params, DT, 10)  # warm-up: compile
    q, p = benchmark.pedantic(bare_leapfrog, args=(Q0, P0, params, DT, N_LONG), rounds=ROUNDS_LONG)
    record(benchmark, steps=N_LONG, simulated_time=N_LONG * DT)
    # leapfrog keeps the energy error bounded, O(dt^2): a broken loop would not
    assert _relative_energy_error(pendulum, np.array([q]), np.array([p])) < 1e-3


@pytest.mark.benchmark(group=GROUP_LONG)
def test_kernel_advance(benchmark, pendulum, bare_seconds):
    """``Leapfrog.advance`` (generic splitting kernel); a frame every 1000 steps (1000 frames)."""
    integ = integrators.get("leapfrog", dt=DT)
    integ.advance(pendulum, *_pendulum_state(), 10, every=1000)  # warm-up: compile
    last = []
    benchmark.pedantic(lambda q, p: integ.advance(pendulum, q, p, N_LONG, every=1000),
                       setup=fresh_state(*_pendulum_state(), keep=last), rounds=ROUNDS_LONG)
    record(benchmark, steps=N_LONG, every=1000)
    record_ratio(benchmark, bare_seconds)
    # same arithmetic as the baseline, so the ratio compares equal work
    q_bare, p_bare = bare_leapfrog(Q0, P0, pendulum.params, DT, N_LONG)
    q, p = last
    assert (q[0, 0], p[0, 0]) == (q_bare, p_bare), (
        f"kernel ended at {(q[0, 0], p[0, 0])}, bare loop at {(q_bare, p_bare)}: they no longer do "
        "the same floating-point operations, so ratio_vs_bare is not a like-for-like comparison; "
        "update bare_leapfrog in benchmarks/_harness.py to match the kernel"
    )


def _simulator_class():
    try:
        from hnnsim import Simulator
    except ImportError as exc:
        pytest.skip(f"hnnsim.Simulator is not importable yet ({exc}); this benchmark measures "
                    "Simulator.run against the bare loop once hnnsim/simulator.py exists")
    return Simulator


@pytest.mark.parametrize("out", ["h5", "memory"])
@pytest.mark.benchmark(group=GROUP_LONG)
def test_simulator_run(benchmark, tmp_path, pendulum, bare_seconds, out):
    """``Simulator(...).run(steps=10**6, every=10, out=...)``: construction, kernel chunks,
    reporters, and the HDF5 file (``out="h5"``) or in-memory frames (``out="memory"``).
    Target: ratio_vs_bare <= 1.5 (reported, not asserted)."""
    Simulator = _simulator_class()
    numbers = itertools.count()

    def target_path():
        return str(tmp_path / f"p{next(numbers)}.h5") if out == "h5" else None

    def run(path, steps=N_LONG):
        simulator = Simulator(systems.get("pendulum"), integrators.Leapfrog(dt=DT), q0=[Q0], p0=[P0])
        return simulator.run(steps=steps, every=10, out=path)

    run(target_path(), steps=1000)  # warm-up: compile, first HDF5 file
    paths = []

    def setup():
        paths.append(target_path())
        return (paths[-1],), {}

    trajectory = benchmark.pedantic(run, setup=setup, rounds=5)
    record(benchmark, steps=N_LONG, every=10, out=out)
    record_ratio(benchmark, bare_seconds)
    benchmark.extra_info["target_ratio"] = 1.5
    # untimed checks (an HDF5 trajectory is read back here, lazily): the run covered all
    # N steps and ended where the bare loop ends, so the ratio compares equal work
    if out == "h5":
        assert os.path.getsize(paths[-1]) > 0
    assert int(trajectory.step[-1]) == N_LONG and len(trajectory) == N_LONG // 10 + 1
    q_bare, p_bare = bare_leapfrog(Q0, P0, pendulum.params, DT, N_LONG)
    assert (float(trajectory.q[-1].ravel()[0]), float(trajectory.p[-1].ravel()[0])) == (q_bare, p_bare)


# -- 1c. fixed-step leapfrog against adaptive DOP853 over the same span ------------------

SPAN = 100.0
GROUP_SPAN = "pendulum-span-T100"


@pytest.mark.benchmark(group=GROUP_SPAN)
def test_span_leapfrog(benchmark, pendulum):
    """Leapfrog kernel, dt = 0.01, over t in [0, 100] (10^4 steps, a frame every 10 steps)."""
    integ = integrators.get("leapfrog", dt=DT)
    nsteps = round(SPAN / DT)
    integ.advance(pendulum, *_pendulum_state(), 10, every=10)  # warm-up
    result = benchmark.pedantic(lambda q, p: integ.advance(pendulum, q, p, nsteps, every=10),
                                setup=fresh_state(*_pendulum_state()), rounds=20)
    best = benchmark.stats.stats.min if benchmark.stats else None
    err = _relative_energy_error(pendulum, result.q[:, 0], result.p[:, 0])
    record(benchmark, steps=nsteps, simulated_time=SPAN, max_rel_energy_error=float(f"{err:.3g}"))
    if best is not None:
        benchmark.extra_info["us_per_simulated_time"] = round(best / SPAN * 1e6, 3)
    assert result.ok and err < 1e-2


@pytest.mark.benchmark(group=GROUP_SPAN)
def test_span_solve_ivp_dop853(benchmark, pendulum):
    """scipy DOP853 (adaptive order-8 Runge-Kutta, Python right-hand side), rtol = atol = 1e-9,
    over t in [0, 100]. Not symplectic, but far more accurate per run than leapfrog at
    dt = 0.01: compare ``max_rel_energy_error`` too, not just time. A 10^6-step leapfrog run
    covers t = 10^4; DOP853 would take about 100 times this case's time for that span."""
    m, l, g = pendulum.params
    inertia, mgl = m * l * l, m * g * l

    def rhs(t, y):
        return np.array([y[1] / inertia, -mgl * math.sin(y[0])])

    def solve():
        return solve_ivp(rhs, (0.0, SPAN), [Q0, P0], method="DOP853", rtol=1e-9, atol=1e-9)

    solve()  # warm-up (no compilation, but the first call pays imports and caches)
    sol = benchmark.pedantic(solve, rounds=5)
    err = _relative_energy_error(pendulum, sol.y[0][:, None], sol.y[1][:, None])
    best = benchmark.stats.stats.min if benchmark.stats else None
    record(benchmark, simulated_time=SPAN, accepted_steps=int(sol.t.size - 1), nfev=int(sol.nfev),
           max_rel_energy_error=float(f"{err:.3g}"))
    if best is not None:
        benchmark.extra_info["us_per_simulated_time"] = round(best / SPAN * 1e6, 3)
        benchmark.extra_info["ns_per_accepted_step"] = round(best / (sol.t.size - 1) * 1e9, 1)
    assert sol.success and err < 1e-6


# -- 2. cost per step of every integrator --------------------------------------------------

STEP_COST_SYSTEMS = ("pendulum", "two-body")
STEP_COST_STEPS = 100_000


def _step_cost_cases():
    for system_name in STEP_COST_SYSTEMS:
        separable = systems.registry.entry(system_name).separable
        for name in integrators.available_for(separable=separable):
            yield pytest.param(system_name, name, id=f"{system_name}-{name}",
                               marks=pytest.mark.benchmark(group=f"step-cost-{system_name}"))


@pytest.mark.parametrize("system_name, integrator_name", list(_step_cost_cases()))
def test_step_cost(benchmark, system_name, integrator_name):
    """10^5 steps of dt = 0.01 from the system's default state, a frame every 1000 steps."""
    system = systems.get(system_name)
    integ = integrators.get(integrator_name, dt=DT)
    q0, p0 = (x.reshape(1, -1) for x in system.default_state())
    integ.advance(system, q0.copy(), p0.copy(), 10, every=1000)  # warm-up: compile
    last = []
    result = benchmark.pedantic(lambda q, p: integ.advance(system, q, p, STEP_COST_STEPS, every=1000),
                                setup=fresh_state(q0, p0, keep=last), rounds=10)
    record(benchmark, steps=STEP_COST_STEPS, order=integ.order, symplectic=integ.symplectic)
    if hasattr(integ, "force_evaluations"):
        benchmark.extra_info["force_evaluations_per_step"] = integ.force_evaluations()
    e0 = float(system.energy(q0[0], p0[0]))
    assert result.ok and abs(float(system.energy(last[0][0], last[1][0])) - e0) < 1e-2 * abs(e0)


# -- 3. ensemble scaling -------------------------------------------------------------------

ENSEMBLE_STEPS = 10_000


@pytest.mark.parametrize("members", [1, 64, 1024])
@pytest.mark.benchmark(group="ensemble-leapfrog-pendulum")
def test_ensemble(benchmark, pendulum, members):
    """B pendulums (amplitudes 0.1 to 2.5 rad) advanced together, 10^4 leapfrog steps."""
    integ = integrators.get("leapfrog", dt=DT)
    q0 = np.linspace(0.1, 2.5, members).reshape(members, 1)
    p0 = np.zeros_like(q0)
    integ.advance(pendulum, q0.copy(), p0.copy(), 10, every=1000)  # warm-up
    last = []
    result = benchmark.pedantic(lambda q, p: integ.advance(pendulum, q, p, ENSEMBLE_STEPS, every=1000),
                                setup=fresh_state(q0, p0, keep=last), rounds=10)
    record(benchmark, steps=ENSEMBLE_STEPS * members, per="ns_per_member_step", members=members,
           numba_threads=numba.get_num_threads(), cpu_count=os.cpu_count())
    # each member must match its own single-member run: prange does not mix members
    q1, p1 = q0[-1:].copy(), p0[-1:].copy()
    integ.advance(pendulum, q1, p1, ENSEMBLE_STEPS, every=1000)
    assert result.ok and (last[0][-1, 0], last[1][-1, 0]) == (q1[0, 0], p1[0, 0])
