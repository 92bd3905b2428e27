"""Tests of the Hamiltonian systems, parametrised over ``systems.available()``.

Gradients are checked against finite differences of the energy, the physics of each
analytic system against an independent derivation (closed forms, Kepler's laws, the
Lagrangian of the double pendulum) or scipy's DOP853, and the Python API (shapes,
batching, validation, descriptions) against its documented contract.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import systems
from conftest import SYSTEMS, start_state, system

RNG_STATES = 6


def random_states(sname, count=RNG_STATES, seed=11):
    """``count`` states near the default one (perturbation 0.2), as ``[count, ndof]``."""
    qs, ps = zip(*(start_state(sname, noise=0.2, seed=seed + k) for k in range(count)))
    return np.array(qs), np.array(ps)


def dop853(sys_, q0, p0, t_end, **kwargs):
    n = sys_.ndof

    def f(t, y):
        dq, dp = sys_.time_derivative(y[:n], y[n:])
        return np.concatenate([dq, dp])

    sol = solve_ivp(f, (0.0, t_end), np.concatenate([q0, p0]), method="DOP853", rtol=1e-12, atol=1e-12, **kwargs)
    assert sol.success, sol.message
    return sol


# -- description and shapes -------------------------------------------------------

@pytest.mark.parametrize("sname", SYSTEMS)
def test_shapes_and_description(sname):
    sys_ = system(sname)
    N, D = sys_.shape
    assert sys_.ndof == N * D
    q0, p0 = sys_.default_state()
    assert q0.shape == (N, D) and p0.shape == (N, D)
    assert np.isfinite(sys_.energy(q0, p0))
    assert sys_.params.dtype == np.float64 and sys_.params.ndim == 1
    if not isinstance(sys_, systems.LearnedSystem) and not sys_.structural:
        # a learned system's params are its packed network; a particle system's are derived
        assert list(sys_.params) == list(sys_.parameters.values())
    rebuilt = systems.from_description(sys_.describe())
    assert rebuilt == sys_ and np.array_equal(rebuilt.params, sys_.params)


@pytest.mark.parametrize("sname", SYSTEMS)
def test_parameters_reach_the_kernel_array(sname):
    """Each named parameter lands in its slot of ``params`` and changes H there."""
    base = system(sname)
    q, p = start_state(sname)
    for k, (key, value) in enumerate(base.parameters.items()):
        if key in base.structural or not isinstance(value, float):
            continue  # geometry (size, box, list) and options: test_particles.py
        changed = systems.get(sname, **{**base.parameters, key: 1.5 * value + 0.25})
        if not base.structural:
            assert changed.params[k] == 1.5 * value + 0.25
            assert np.array_equal(np.delete(changed.params, k), np.delete(base.params, k))
        else:
            assert not np.array_equal(changed.params, base.params)
        assert getattr(changed, key) == 1.5 * value + 0.25
        assert changed.energy(q, p) != base.energy(q, p), f"parameter {key} does not enter H"
        assert changed != base


# -- gradients --------------------------------------------------------------------

def non_unit_parameters(sname, seed=0):
    """The system with every parameter drawn from [0.35, 2.6] x its default (never near 1,
    never near another parameter's value): a gradient that drops a factor or uses one
    parameter for another is wrong here even where the defaults (mostly 1) hide it."""
    base = system(sname)
    rng = np.random.default_rng([seed, sum(map(ord, sname))])
    values = {}
    for key, default in base.parameters.items():
        if key in base.structural or not isinstance(default, float):
            values[key] = default
            continue
        factor = rng.uniform(0.35, 2.6)
        while abs(factor - 1.0) < 0.1 or any(abs(factor * default - v) < 0.05 for v in values.values()
                                              if isinstance(v, float)):
            factor = rng.uniform(0.35, 2.6)
        values[key] = factor * default
    return systems.get(sname, **values)


@pytest.mark.parametrize("sname, params", [pytest.param(s, "default", id=f"{s}-default") for s in SYSTEMS]
                         + [pytest.param(s, "non-unit", id=f"{s}-non-unit") for s in SYSTEMS if system(s).parameters])
def test_gradients_match_finite_differences_of_energy(sname, params):
    """dH/dq, dH/dp against central differences of ``energy`` with step h = 1e-6 (scaled):
    truncation ~ h^2 |H'''| and round-off ~ EPS |H| / h ~ 1e-10, so 1e-6 relative is safe.
    Run at the defaults and at random non-unit values of every parameter."""
    sys_ = system(sname) if params == "default" else non_unit_parameters(sname)
    Q, P = random_states(sname)
    gq, gp = sys_.gradients(Q, P)
    n = sys_.ndof
    for which, X, grad in (("q", Q, gq), ("p", P, gp)):
        fd = np.empty_like(X)
        for j in range(n):
            h = 1e-6 * np.maximum(1.0, np.abs(X[:, j]))
            Xp, Xm = X.copy(), X.copy()
            Xp[:, j] += h
            Xm[:, j] -= h
            Ep = sys_.energy(Xp, P) if which == "q" else sys_.energy(Q, Xp)
            Em = sys_.energy(Xm, P) if which == "q" else sys_.energy(Q, Xm)
            fd[:, j] = (Ep - Em) / (2 * h)
        scale = np.maximum(1.0, np.max(np.abs(grad), axis=1, keepdims=True))
        err = np.max(np.abs(grad - fd) / scale)
        assert err < 1e-6, f"{sname} dH/d{which} at {sys_.parameters}: {err:.2e}"


@pytest.mark.parametrize("sname", SYSTEMS)
def test_numba_functions_match_python_api(sname):
    """The kernel-facing functions fill ``out`` with what ``gradients``/``energy`` return,
    and ``time_derivative`` is Hamilton's equations (dH/dp, -dH/dq)."""
    sys_ = system(sname)
    Q, P = random_states(sname)
    gq, gp = sys_.gradients(Q, P)
    dq, dp = sys_.time_derivative(Q, P)
    assert np.array_equal(dq, gp) and np.array_equal(dp, -gq)
    work = sys_.workspace(1)
    iw, fw = work.iwork[0], work.fwork[0]
    for b in range(Q.shape[0]):
        out_q = np.full(sys_.ndof, np.nan)
        out_p = np.full(sys_.ndof, np.nan)
        sys_.dHdq(Q[b], P[b], sys_.params, iw, fw, out_q)
        sys_.dHdp(Q[b], P[b], sys_.params, iw, fw, out_p)
        assert np.array_equal(out_q, gq[b]) and np.array_equal(out_p, gp[b])
        assert sys_.hamiltonian(Q[b], P[b], sys_.params, iw, fw) == sys_.energy(Q[b], P[b])


@pytest.mark.parametrize("sname", SYSTEMS)
def test_separable_flag_is_truthful(sname):
    """A system declared separable has dH/dq independent of p and dH/dp independent of q
    (explicit splitting methods rely on it silently); a non-separable one does not."""
    sys_ = system(sname)
    Q, P = random_states(sname)
    Q2, P2 = random_states(sname, seed=99)
    gq, gp = sys_.gradients(Q, P)
    gq_other_p, _ = sys_.gradients(Q, P2)
    _, gp_other_q = sys_.gradients(Q2, P)
    if sys_.separable:
        assert np.array_equal(gq, gq_other_p) and np.array_equal(gp, gp_other_q)
        T, V = sys_.split_energy(Q, P)
        np.testing.assert_allclose(T + V, sys_.energy(Q, P), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(V, sys_.energy(Q, np.zeros_like(P)), rtol=1e-12, atol=1e-12)
    else:
        assert not (np.allclose(gq, gq_other_p) and np.allclose(gp, gp_other_q))
        with pytest.raises(TypeError, match=rf"{re.escape(sname)} is not separable"):
            sys_.split_energy(Q, P)


@pytest.mark.parametrize("sname", SYSTEMS)
def test_observables_agree_with_energy_and_gradients(sname):
    sys_ = system(sname)
    Q, P = random_states(sname)
    obs = sys_.observables(np.ascontiguousarray(Q), np.ascontiguousarray(P))
    gq, gp = sys_.gradients(Q, P)
    assert np.array_equal(obs["velocity"], gp) and np.array_equal(obs["force"], -gq)
    assert np.array_equal(obs["energy"], sys_.energy(Q, P))
    if sys_.separable:
        T, V = sys_.split_energy(Q, P)
        np.testing.assert_allclose(obs["potential_energy"], V, rtol=0, atol=1e-14 * np.max(np.abs(V)))
        np.testing.assert_allclose(obs["kinetic_energy"], T, rtol=0, atol=1e-14 * np.max(np.abs(obs["energy"])) + 1e-15)
    else:
        assert obs["potential_energy"] is None and obs["kinetic_energy"] is None


# -- batching and shape validation ---------------------------------------------------

@pytest.mark.parametrize("sname", SYSTEMS)
def test_batch_axes(sname):
    """Any leading batch axes, with states as (..., N, D) or flat (..., N*D)."""
    sys_ = system(sname)
    N, D = sys_.shape
    Q, P = random_states(sname, count=6)
    E = np.array([sys_.energy(Q[k], P[k]) for k in range(6)])
    G = [sys_.gradients(Q[k], P[k]) for k in range(6)]
    for shape, batch in (((2, 3, N, D), (2, 3)), ((2, 3, N * D), (2, 3)), ((6, N, D), (6,)), ((6, N * D), (6,)),
                         ((N, D), ()), ((N * D,), ())):
        count = int(np.prod(batch))
        e = sys_.energy(Q[:count].reshape(shape), P[:count].reshape(shape))
        assert e.shape == batch
        assert np.array_equal(e.reshape(-1), E[:count])
        gq, gp = sys_.gradients(Q[:count].reshape(shape), P[:count].reshape(shape))
        dq, dp = sys_.time_derivative(Q[:count].reshape(shape), P[:count].reshape(shape))
        assert gq.shape == gp.shape == dq.shape == dp.shape == shape
        assert np.array_equal(gq.reshape(count, -1), np.array([g[0] for g in G[:count]]).reshape(count, -1))
        assert np.array_equal(gp.reshape(count, -1), np.array([g[1] for g in G[:count]]).reshape(count, -1))
    q0, p0 = sys_.default_state()
    assert sys_.energy(q0, p0).shape == ()


@pytest.mark.parametrize("sname", SYSTEMS)
def test_wrong_shapes_rejected(sname):
    sys_ = system(sname)
    N, D = sys_.shape
    n = sys_.ndof
    msg = rf"{re.escape(sname)} states must have shape \(\.\.\., {N}, {D}\) or \(\.\.\., {n}\); got \(3, {n + 1}\)"
    bad = np.zeros((3, n + 1))
    with pytest.raises(ValueError, match=msg):
        sys_.energy(bad, bad)
    with pytest.raises(ValueError, match=msg):
        sys_.gradients(bad, bad)
    with pytest.raises(ValueError, match=msg):
        sys_.time_derivative(bad, bad)
    with pytest.raises(ValueError, match=rf"q and p must have the same shape, got \(2, {n}\) and \(3, {n}\)"):
        sys_.energy(np.zeros((2, n)), np.zeros((3, n)))


# -- parameter validation ----------------------------------------------------------

@pytest.mark.parametrize("sname", SYSTEMS)
def test_parameter_validation(sname):
    cls_name = type(system(sname)).__name__
    with pytest.raises(TypeError, match=rf"{cls_name} got unknown parameter\(s\) bogus; it takes "):
        systems.get(sname, bogus=1.0)
    for key in type(system(sname)).defaults:
        with pytest.raises(ValueError, match=rf"{cls_name} parameter {key} must be finite, got nan"):
            systems.get(sname, **{key: float("nan")})
        with pytest.raises(TypeError, match=rf"{cls_name} parameter {key} must be a number, got 'heavy'"):
            systems.get(sname, **{key: "heavy"})
    for key in type(system(sname)).positive:
        for bad in (-1.0, 0.0):
            with pytest.raises(ValueError, match=rf"{cls_name} parameter {key} must be > 0, got {bad!r}"):
                systems.get(sname, **{key: bad})


def test_physical_parameters_declared_positive():
    """Masses, lengths, spring constants, g and G of the analytic systems must be > 0."""
    expected = {"harmonic-oscillator": {"mass", "k"}, "pendulum": {"mass", "length", "g"},
                "two-body": {"m1", "m2", "G"}, "double-pendulum": {"m1", "m2", "l1", "l2", "g"}}
    for sname, keys in expected.items():
        if sname in SYSTEMS:
            assert keys <= set(type(system(sname)).positive), sname


# -- physics of each analytic system ------------------------------------------------

def test_harmonic_oscillator_closed_form():
    """``exact`` solves Hamilton's equations (checked against DOP853) with omega = sqrt(k/m)."""
    sys_ = systems.get("harmonic-oscillator", mass=2.0, k=0.5)
    assert sys_.omega == pytest.approx(0.5, rel=1e-15)
    t = np.linspace(0.0, 20.0, 41)
    sol = dop853(sys_, np.array([1.0]), np.array([0.3]), 20.0, t_eval=t)
    qe, pe = sys_.exact(1.0, 0.3, t)
    np.testing.assert_allclose(qe, sol.y[0], atol=1e-9)
    np.testing.assert_allclose(pe, sol.y[1], atol=1e-9)
    assert qe[0] == 1.0 and pe[0] == 0.3
    np.testing.assert_allclose(sys_.energy(qe[:, None], pe[:, None]), sys_.energy(np.ones(1), 0.3 * np.ones(1)), rtol=1e-14)


@pytest.mark.parametrize("amplitude", [0.05, 1.0, 2.5, 3.0])
def test_pendulum_period(amplitude):
    """``period(amplitude)`` against the period measured from DOP853 (successive downward zero
    crossings of the angle), with m, l, g all different from 1."""
    sys_ = systems.get("pendulum", mass=0.7, length=1.5, g=9.81)
    small = 2 * math.pi * math.sqrt(sys_.length / sys_.g)
    T = sys_.period(amplitude)

    def crossing(t, y):
        return y[0]

    crossing.direction = -1
    sol = dop853(sys_, np.array([amplitude]), np.array([0.0]), 2.6 * T, events=crossing)
    times = sol.t_events[0]
    assert times.size == 3
    np.testing.assert_allclose(np.diff(times), T, rtol=1e-9)
    if amplitude < 0.1:
        assert T == pytest.approx(small * (1 + amplitude**2 / 16), rel=1e-6)  # first correction
    else:
        assert T > small * (1 + amplitude**2 / 16)


def test_two_body_circular_orbit_and_kepler():
    sys_ = systems.get("two-body", m1=1.0, m2=0.3, G=2.0)
    M = sys_.m1 + sys_.m2
    q, p = sys_.circular_orbit(1.7)
    assert q.shape == p.shape == (2, 2)
    np.testing.assert_allclose(sys_.m1 * q[0] + sys_.m2 * q[1], 0.0, atol=1e-15)  # centre of mass
    np.testing.assert_allclose(p[0] + p[1], 0.0, atol=1e-15)  # total momentum
    assert np.linalg.norm(q[1] - q[0]) == pytest.approx(1.7, rel=1e-15)
    v_rel = p[1] / sys_.m2 - p[0] / sys_.m1
    assert np.dot(v_rel, q[1] - q[0]) == pytest.approx(0.0, abs=1e-15)
    assert np.linalg.norm(v_rel) == pytest.approx(math.sqrt(sys_.G * M / 1.7), rel=1e-14)
    assert sys_.semi_major_axis(q, p) == pytest.approx(1.7, rel=1e-13)
    T = sys_.period(q, p)
    assert T == pytest.approx(2 * math.pi * math.sqrt(1.7**3 / (sys_.G * M)), rel=1e-13)
    # the orbit is circular and closes after T
    t = np.linspace(0, T, 9)
    sol = dop853(sys_, q.reshape(-1), p.reshape(-1), T, t_eval=t)
    r = np.linalg.norm(sol.y[2:4] - sol.y[0:2], axis=0)
    np.testing.assert_allclose(r, 1.7, rtol=1e-9)
    np.testing.assert_allclose(sol.y[:, -1], np.concatenate([q.reshape(-1), p.reshape(-1)]), atol=1e-8)


def test_two_body_eccentric_orbit_semi_major_axis_and_period():
    """From periapsis with 1.25 times the circular speed: a from vis-viva, r_max = a (1 + e),
    and the period from DOP853 (periapsis passages) matches ``period``."""
    sys_ = systems.get("two-body", m1=1.0, m2=0.3, G=2.0)
    GM = sys_.G * (sys_.m1 + sys_.m2)
    q, p = sys_.circular_orbit(1.0)
    p = 1.25 * p
    v = np.linalg.norm(p[1] / sys_.m2 - p[0] / sys_.m1)
    a = 1.0 / (2.0 / 1.0 - v**2 / GM)
    e = 1.0 - 1.0 / a  # periapsis distance 1 = a (1 - e)
    assert sys_.semi_major_axis(q, p) == pytest.approx(a, rel=1e-13)
    T = sys_.period(q, p)
    assert T == pytest.approx(2 * math.pi * math.sqrt(a**3 / GM), rel=1e-13)

    def periapsis(t, y):  # radial velocity, crossing upwards at periapsis
        d, w = y[2:4] - y[0:2], y[6:8] / sys_.m2 - y[4:6] / sys_.m1
        return np.dot(d, w)

    periapsis.direction = 1

    def apoapsis(t, y):
        return periapsis(t, y)

    apoapsis.direction = -1
    sol = dop853(sys_, q.reshape(-1), p.reshape(-1), 2.5 * T, events=[periapsis, apoapsis])
    np.testing.assert_allclose(np.diff(sol.t_events[0]), T, rtol=1e-9)
    r_apo = np.linalg.norm(sol.y_events[1][:, 2:4] - sol.y_events[1][:, 0:2], axis=1)
    np.testing.assert_allclose(r_apo, a * (1 + e), rtol=1e-9)


def test_two_body_unbound_orbit_has_no_period():
    sys_ = systems.get("two-body")
    q, p = sys_.circular_orbit(1.0)
    with pytest.raises(ValueError, match=r"the orbit is unbound \(E = .* >= 0\): no semi-major axis"):
        sys_.period(q, 2.0 * p)  # twice the circular speed exceeds the escape speed sqrt(2) times


def test_double_pendulum_hamiltonian_is_the_legendre_transform_of_its_lagrangian():
    """Independent derivation: with thetadot = dH/dp, the Lagrangian momenta
    p1 = (m1+m2) l1^2 w1 + m2 l1 l2 w2 cos(d), p2 = m2 l2^2 w2 + m2 l1 l2 w1 cos(d) give back
    p, and H = T + V with T = (m1+m2) l1^2 w1^2/2 + m2 l2^2 w2^2/2 + m2 l1 l2 w1 w2 cos(d)."""
    if "double-pendulum" not in SYSTEMS:
        pytest.skip("double-pendulum not registered")
    sys_ = systems.get("double-pendulum", m1=1.3, m2=0.7, l1=0.9, l2=1.4, g=9.81)
    m1, m2, l1, l2, g = sys_.m1, sys_.m2, sys_.l1, sys_.l2, sys_.g
    rng = np.random.default_rng(5)
    for _ in range(5):
        q = rng.uniform(-3, 3, 2)
        p = rng.uniform(-3, 3, 2)
        _, w = sys_.gradients(q, p)
        c = math.cos(q[0] - q[1])
        p1 = (m1 + m2) * l1**2 * w[0] + m2 * l1 * l2 * w[1] * c
        p2 = m2 * l2**2 * w[1] + m2 * l1 * l2 * w[0] * c
        np.testing.assert_allclose([p1, p2], p, rtol=1e-12, atol=1e-12)
        T = 0.5 * (m1 + m2) * l1**2 * w[0] ** 2 + 0.5 * m2 * l2**2 * w[1] ** 2 + m2 * l1 * l2 * w[0] * w[1] * c
        V = -(m1 + m2) * g * l1 * math.cos(q[0]) - m2 * g * l2 * math.cos(q[1])
        assert sys_.energy(q, p) == pytest.approx(T + V, rel=1e-12, abs=1e-12)


def test_henon_heiles_potential():
    """V = (x^2 + y^2)/2 + lam (x^2 y - y^3/3); the saddle at y = 1/lam has energy 1/(6 lam^2)."""
    if "henon-heiles" not in SYSTEMS:
        pytest.skip("henon-heiles not registered")
    sys_ = systems.get("henon-heiles", lam=0.8)
    x, y = 0.3, -0.4
    V = 0.5 * (x * x + y * y) + 0.8 * (x * x * y - y**3 / 3)
    assert sys_.energy(np.array([x, y]), np.array([0.1, 0.2])) == pytest.approx(V + 0.5 * (0.01 + 0.04), rel=1e-14)
    saddle = np.array([0.0, 1 / 0.8])
    gq, _ = sys_.gradients(saddle, np.zeros(2))
    np.testing.assert_allclose(gq, 0.0, atol=1e-15)
    assert sys_.energy(saddle, np.zeros(2)) == pytest.approx(1 / (6 * 0.8**2), rel=1e-14)


@pytest.mark.parametrize("sname", SYSTEMS)
def test_energy_conserved_by_the_exact_flow(sname):
    """Consistency of H with its gradients along a trajectory: DOP853 on the gradient field
    conserves ``energy`` to its tolerance (a gradient bug that FD missed would show here)."""
    sys_ = system(sname)
    q0, p0 = start_state(sname)
    sol = dop853(sys_, q0, p0, 5.0, t_eval=np.linspace(0, 5.0, 11))
    n = sys_.ndof
    E = sys_.energy(sol.y[:n].T, sol.y[n:].T)
    # a potential cut off at r_c is only C1 there (shifted force): DOP853's steps across the
    # kinks set its error, still 1e4 below what a wrong gradient gives
    tol = 1e-9 if sys_.smooth else 1e-6
    assert np.max(np.abs(E - E[0])) < tol * max(1.0, abs(E[0]))


def test_functions_taking_dispatchers_are_not_disk_cached():
    """numba cannot reuse an on-disk cache entry keyed by a first-class function type across
    processes: with ``cache=True`` every process appends an entry to the index, which then
    fails to re-save (ReferenceError: underlying object has vanished) in later processes.
    Every compiled function of ``systems``/``integrators`` that was called with dispatcher
    arguments must therefore be compiled without ``cache=True``."""
    import importlib
    import pkgutil

    import integrators
    from numba.core import caching, registry, types

    for sname in SYSTEMS:  # exercise the batch helpers with every system's functions
        sys_ = system(sname)
        Q, P = random_states(sname, count=2)
        sys_.energy(Q, P)
        sys_.gradients(Q, P)
        sys_.observables(np.ascontiguousarray(Q), np.ascontiguousarray(P))
    checked = 0
    for package in (systems, integrators):
        for mod in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{mod.name}")
            for obj in vars(module).values():
                if isinstance(obj, registry.CPUDispatcher) and any(
                        isinstance(arg, types.Dispatcher) for sig in obj.signatures for arg in sig):
                    checked += 1
                    assert isinstance(obj._cache, caching.NullCache), (
                        f"{module.__name__}.{obj.py_func.__name__} takes dispatchers but has cache=True")
    assert checked >= 3
