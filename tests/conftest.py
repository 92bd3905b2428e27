"""Shared helpers for the physics tests of ``integrators`` and ``systems``.

Everything here is parametrised from the registries (``integrators.available()``,
``systems.available()``), so a newly registered integrator or system is picked up by
every test without editing the tests. Numba compiles one kernel per (kernel, system)
pair; the helpers below reuse one system instance per name so that each pair is
compiled once per test session.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/naive.py

import integrators  # noqa: E402
import systems  # noqa: E402

EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(autouse=True)
def _restore_registry():
    """Unregister the systems a test registers (the registry is process-wide)."""
    before = set(systems.available())
    yield
    for name in set(systems.available()) - before:
        systems.registry.unregister(name)

def _wells(n: int, inputs: int, offset: int, scale: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hidden units ``scale * [tanh(x_i - 1) - tanh(x_i + 1)]`` for x = inputs[offset:offset+n]:
    a smooth well in every coordinate (bounded orbits near 0), as first-layer rows and
    second-layer weights."""
    W = np.zeros((2 * n, inputs))
    for i in range(n):
        W[2 * i, offset + i] = W[2 * i + 1, offset + i] = 1.0
    b = np.tile([-1.0, 1.0], n)
    a = np.tile([scale, -scale], n)
    return W, b, a


def _learned_test_systems() -> List[systems.LearnedSystem]:
    """Two learned systems with fixed weights (no training, no torch), registered so that
    every physics suite parametrised over ``systems.available()`` covers learned
    Hamiltonians too: a separable ``T(p) + V(q)`` and a non-separable ``H(q, p)``, two
    degrees of freedom each, tanh networks whose wells keep orbits near the origin bounded,
    with seeded couplings so that no coordinate decouples."""
    rng = np.random.default_rng(2026)
    n = 2
    WT, bT, aT = _wells(n, n, 0, 0.8)
    WV, bV, aV = _wells(n, n, 0, 1.3)
    WV = WV + 0.15 * rng.standard_normal(WV.shape)  # couples q1 and q2 in V
    sep = systems.LearnedSystem(
        "learned-separable-test", (n, 1),
        {"T": [(WT, bT), (aT[None, :], np.zeros(1))], "V": [(WV, bV), (aV[None, :], np.array([0.3]))]},
        activation="tanh", separable=True, default_state=([[0.3], [-0.2]], [[0.1], [0.25]]))
    Wq, bq, aq = _wells(n, 2 * n, 0, 1.1)
    Wp, bp, ap = _wells(n, 2 * n, n, 0.7)
    mix = 0.4 * rng.standard_normal((3, 2 * n))  # units that see q and p together: H is not separable
    W1 = np.vstack([Wq, Wp, mix])
    b1 = np.concatenate([bq, bp, 0.1 * rng.standard_normal(3)])
    W2 = np.concatenate([aq, ap, 0.2 * rng.standard_normal(3)])[None, :]
    hnn = systems.LearnedSystem("learned-hnn-test", (n, 1), {"H": [(W1, b1), (W2, np.zeros(1))]}, activation="tanh",
                                default_state=([[0.25], [0.1]], [[-0.15], [0.3]]))
    return [sep.register(), hnn.register()]


LEARNED_TEST_SYSTEMS = _learned_test_systems()
INTEGRATORS: List[str] = integrators.available()
SYSTEMS: List[str] = systems.available()


#: Registered systems whose default size is a production workload get a small instance in
#: the registry-wide physics suites (every integrator, 1e5-step runs, one-step Jacobians):
#: 32 Lennard-Jones atoms (the box scanned pair by pair; cell lists are tested in
#: test_particles.py), shifted-force so that no pair crossing the cutoff makes the energy
#: error of a symplectic method jump.
TEST_SIZES: Dict[str, Dict[str, Any]] = {
    "lennard-jones": dict(n_cells=2, density=0.3, cutoff=2.0, skin=0.3, shift="force"),
}


@functools.lru_cache(maxsize=None)
def system(name: str):
    """One shared instance per registered system (never mutate it in a test)."""
    return systems.get(name, **TEST_SIZES.get(name, {}))


@functools.lru_cache(maxsize=None)
def probe(name: str, **kwargs: Any):
    """An instance of integrator ``name`` used only to read its attributes."""
    return integrators.get(name, dt=1.0, **kwargs)


def compatible(name: str, sname: str) -> bool:
    """Whether integrator ``name`` can integrate system ``sname`` (False if either is not registered)."""
    if name not in INTEGRATORS or sname not in SYSTEMS:
        return False
    return not (probe(name).requires_separable and not system(sname).separable)


def pairs(predicate=lambda name, sname: True) -> List[Any]:
    """Every compatible (integrator, system) pair satisfying ``predicate``, as pytest params."""
    return [pytest.param(i, s, id=f"{i}-{s}") for i in INTEGRATORS for s in SYSTEMS
            if compatible(i, s) and predicate(i, s)]


#: Systems whose default state is a lattice start: the physics suites begin from the liquid
#: reached after this many leapfrog steps of 0.005 (collisions under way, so that the
#: linearised flow there sees the repulsive walls).
EQUILIBRATE: Dict[str, int] = {"lennard-jones": 2000}


@functools.lru_cache(maxsize=None)
def _default_state(sname: str) -> Tuple[np.ndarray, np.ndarray]:
    q0, p0 = system(sname).default_state()
    q = np.asarray(q0, dtype=np.float64).reshape(1, -1).copy()
    p = np.asarray(p0, dtype=np.float64).reshape(1, -1).copy()
    if sname in EQUILIBRATE:
        assert integrators.Leapfrog(dt=0.005).advance(system(sname), q, p, EQUILIBRATE[sname]).ok
    return q[0], p[0]


def start_state(sname: str, noise: float = 0.05, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The system's default state (equilibrated where it is a lattice start), flattened to
    ``[ndof]``, plus a small seeded perturbation (so that no component is special, e.g. a
    momentum that is exactly zero)."""
    q0, p0 = _default_state(sname)
    rng = np.random.default_rng(seed)
    q = np.asarray(q0, dtype=np.float64).reshape(-1) + noise * rng.standard_normal(system(sname).ndof)
    p = np.asarray(p0, dtype=np.float64).reshape(-1) + noise * rng.standard_normal(system(sname).ndof)
    return q, p


def flow_jacobian(sname: str, q: np.ndarray, p: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Jacobian of the vector field (dH/dp, -dH/dq) at ``(q, p)`` by central differences."""
    sys_ = system(sname)
    n = sys_.ndof
    y = np.concatenate([q, p])

    def f(y):
        dq, dp = sys_.time_derivative(y[:n], y[n:])
        return np.concatenate([dq, dp])

    jac = np.empty((2 * n, 2 * n))
    for j in range(2 * n):
        e = np.zeros(2 * n)
        e[j] = h * max(1.0, abs(y[j]))
        jac[:, j] = (f(y + e) - f(y - e)) / (2.0 * e[j])
    return jac


@functools.lru_cache(maxsize=None)
def rate(sname: str) -> float:
    """Characteristic angular frequency of ``sname`` near its start state: the spectral radius
    of the linearised flow. Step sizes are set as ``c / rate``, so that one rule fits every
    registered system."""
    q, p = start_state(sname)
    return float(np.max(np.abs(np.linalg.eigvals(flow_jacobian(sname, q, p)))))


def max_dt(name: str, **kwargs: Any) -> float:
    """Largest step at which ``name`` is in its asymptotic error regime regardless of H.

    Tao's method rotates the copies by the angle ``2 omega d`` in every binding sub-step;
    its error expansion in ``dt`` holds only while that angle is small, so the step is
    capped at ``1 / (2 omega order)``. Other methods have no cap of their own.
    """
    integ = probe(name, **kwargs)
    omega = getattr(integ, "omega", None)
    return math.inf if omega is None else 1.0 / (2.0 * omega * integ.order)


def make(name: str, dt: float, **kwargs: Any):
    """Integrator ``name`` at step ``min(dt, max_dt(name))``."""
    return integrators.get(name, dt=min(dt, max_dt(name, **kwargs)), **kwargs)


def members(q: np.ndarray, p: np.ndarray, B: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """``[B, n]`` C-contiguous copies of one state."""
    return (np.ascontiguousarray(np.tile(np.asarray(q, dtype=np.float64).reshape(1, -1), (B, 1))),
            np.ascontiguousarray(np.tile(np.asarray(p, dtype=np.float64).reshape(1, -1), (B, 1))))


def run(integ, sname: str, q0: np.ndarray, p0: np.ndarray, nsteps: int, **kwargs: Any):
    """Advance one member from ``(q0, p0)``; return final ``(q, p)`` (flat) and the Advance.
    Fails the test if the kernel reports a non-zero status."""
    q, p = members(q0, p0)
    res = integ.advance(system(sname), q, p, nsteps, **kwargs)
    assert res.ok, f"{integ!r} on {sname}: status {res.status.tolist()}"
    return q[0], p[0], res


def state_scale(q: np.ndarray, p: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(q))), float(np.max(np.abs(p))))


_REFERENCE: Dict[Tuple[str, float, bytes, bytes], Tuple[np.ndarray, np.ndarray]] = {}


def reference_solution(sname: str, q0: np.ndarray, p0: np.ndarray, T: float):
    """State at time ``T`` from scipy's DOP853 with rtol = atol = 1e-13 (cached)."""
    from scipy.integrate import solve_ivp

    key = (sname, float(T), q0.tobytes(), p0.tobytes())
    if key not in _REFERENCE:
        sys_ = system(sname)
        n = sys_.ndof

        def f(t, y):
            dq, dp = sys_.time_derivative(y[:n], y[n:])
            return np.concatenate([dq, dp])

        sol = solve_ivp(f, (0.0, T), np.concatenate([q0, p0]), method="DOP853", rtol=1e-13, atol=1e-13)
        assert sol.success, sol.message
        _REFERENCE[key] = (sol.y[:n, -1].copy(), sol.y[n:, -1].copy())
    return _REFERENCE[key]
