"""Physics tests of the integrators, parametrised over both registries.

Every compatible (integrator, system) pair from ``integrators.available()`` x
``systems.available()`` is covered; a newly registered entry is picked up without editing
this file (and the few tests that need a per-method fact, such as whether a method is
time-symmetric or how its naive reference reads, fail loudly until that fact is added).

Tolerances come from theory, as noted at each test: round-off (``EPS`` times the number
of steps), finite-difference error (``h**2`` and ``EPS / h``), or the leading error term
``C (omega h)**p omega t`` of an order-``p`` method with an O(1) constant ``C``.
Step sizes are ``c / rate(system)``, with ``rate`` the spectral radius of the linearised
flow (see ``conftest.py``), so one rule fits every system.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import integrators
import naive
import systems
from conftest import (EPS, INTEGRATORS, SYSTEMS, compatible, make, max_dt, members, pairs, probe,
                      rate, reference_solution, run, start_state, state_scale, system)
from integrators._registry import Registry

#: Methods whose step satisfies Phi_{-h} = Phi_h^{-1} (Hairer, Lubich & Wanner, V.1).
SYMMETRIC = {"leapfrog", "stormer-verlet", "yoshida4", "yoshida6", "pefrl", "implicit-midpoint", "tao"}
#: Methods known not to be symmetric.
NOT_SYMMETRIC = {"symplectic-euler", "rk4"}

#: Registry defaults plus instance variants that change the order (Tao by triple jumps).
VARIANTS = [pytest.param(name, {}, id=name) for name in INTEGRATORS]
if "tao" in INTEGRATORS:
    VARIANTS.append(pytest.param("tao", {"order": 4}, id="tao-order4"))


def _variant_pairs(sysnames):
    out = []
    for v in VARIANTS:
        name, kwargs = v.values
        for sname in sysnames:
            if compatible(name, sname):
                out.append(pytest.param(name, kwargs, sname, id=f"{v.id}-{sname}"))
    return out


def test_every_integrator_is_classified():
    """Per-method facts the tests below rely on must exist for each registered integrator."""
    for name in INTEGRATORS:
        assert (name in SYMMETRIC) != (name in NOT_SYMMETRIC), (
            f"classify {name!r} as time-symmetric or not in tests/test_integrators.py")
        assert name in naive.KNOWN, f"tests/naive.py needs a reference implementation of {name!r}"
        integ = probe(name)
        assert integ.order >= 1 and isinstance(integ.symplectic, bool)


# -- convergence order ------------------------------------------------------------

#: Largest omega*dt of the dt ladder per order: small enough to be in the asymptotic
#: regime, large enough that the smallest error stays far above round-off and the
#: ~1e-13 accuracy of the reference (order 6 needs the large-ish steps). A symmetric
#: method's error expansion has only even powers, h^p + h^(p+2) + ...; a non-symmetric
#: one also has h^(p+1), so its ladder starts 4 times lower.
LADDER_START = {1: 0.04, 2: 0.05, 4: 0.2, 6: 0.15}


@pytest.mark.parametrize("name,kwargs,sname", _variant_pairs(("pendulum", "henon-heiles", "double-pendulum")))
def test_convergence_order(name, kwargs, sname):
    """Global error at T = 3/omega against DOP853 (rtol = atol = 1e-13): the log-log slope
    over a factor-4 range of dt (5 steps of sqrt 2) is the method's order within 0.1."""
    order = probe(name, **kwargs).order
    w = rate(sname)
    T = 3.0 / w
    q0, p0 = start_state(sname)
    q_ref, p_ref = reference_solution(sname, q0, p0, T)
    a = LADDER_START.get(order, 0.15) / (1.0 if name in SYMMETRIC else 4.0)
    dt0 = min(a / w, max_dt(name, **kwargs))
    nsteps = [math.ceil(T / dt0 * 2.0 ** (k / 2)) for k in range(5)]
    errors = []
    for n in nsteps:
        q, p, _ = run(integrators.get(name, dt=T / n, **kwargs), sname, q0, p0, n)
        errors.append(max(np.max(np.abs(q - q_ref)), np.max(np.abs(p - p_ref))))
    errors = np.array(errors)
    assert errors.min() > 1e-11, f"setup: errors {errors} come near the reference's accuracy"
    slope = np.polyfit(np.log(T / np.array(nsteps)), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.1, f"{name}{kwargs} on {sname}: slope {slope:.3f}, order {order}; errors {errors}"


# -- energy behaviour over long runs ----------------------------------------------

LONG_STEPS = 100_000


def _energy_error(name, sname):
    sys_ = system(sname)
    q0, p0 = start_state(sname)
    integ = make(name, 0.1 / rate(sname))
    _, _, res = run(integ, sname, q0, p0, LONG_STEPS, every=10)
    H0 = float(sys_.energy(q0, p0))
    dH = sys_.energy(res.q[:, 0], res.p[:, 0]) - H0
    t = res.steps * integ.dt
    slope = np.polyfit(t, dH, 1)[0]
    if sys_.smooth:
        worst = float(np.max(np.abs(dH)))
        early = float(np.max(np.abs(dH[: dH.size // 10])))
    else:  # many-body: rare close collisions make the maximum heavy-tailed; compare RMS (a
        # random walk still grows sqrt(10) ~ 3.2 times from the first tenth to the whole run)
        worst = float(np.sqrt(np.mean(dH ** 2)))
        early = float(np.sqrt(np.mean(dH[: dH.size // 10] ** 2)))
    # worst-case (linear) accumulation of one rounding of H per step
    floor = LONG_STEPS * EPS * max(abs(H0), EPS)
    return worst, early, abs(slope * t[-1]), floor


def _bounded_energy_expected(name: str, sname: str) -> bool:
    """Backward error analysis bounds a symplectic method's energy error on a smooth H. A
    cutoff potential is only C1 at r_c: each pair crossing it adds a local error of the
    order of h^3 with a random sign, below a second-order method's O(h^2) oscillation but
    not a higher-order one's, and chaotic many-body motion pulls Tao's copies apart. There
    the check runs for the second-order methods whose state is (q, p)."""
    integ = probe(name)
    return integ.symplectic and (system(sname).smooth or (integ.order <= 2 and integ.n_aux == 0))


@pytest.mark.parametrize("name,sname", pairs(_bounded_energy_expected))
def test_symplectic_energy_error_bounded(name, sname):
    """Symplectic: H(y_n) - H(y_0) oscillates with a bounded amplitude O(h^p).

    Over 1e5 steps a linear drift would make the maximum over the whole run 10 times the
    maximum over its first tenth (a random walk, sqrt(10) ~ 3.2 times); bounded
    oscillation gives ~1, so the bound is 2. The linear-fit change over the run of an
    oscillation is ~ amplitude / (number of periods); a drift gives ~ the amplitude.
    """
    worst, early, fitted_change, floor = _energy_error(name, sname)
    assert worst <= 2.0 * early + floor, f"energy error grows: {early:.3e} -> {worst:.3e}"
    # chaotic many-body motion gives a stationary noise, whose fitted slope over the run is a
    # fraction of its RMS, not the ~1/(number of periods) of a quasi-periodic orbit; a drift
    # (a pair missed by a neighbour list, a non-symplectic step) exceeds the RMS
    share = 0.05 if system(sname).smooth else 0.5
    assert fitted_change <= share * worst + floor, f"energy drifts: fitted change {fitted_change:.3e}, max {worst:.3e}"


@pytest.mark.skipif("rk4" not in INTEGRATORS, reason="rk4 not registered")
@pytest.mark.parametrize("sname", SYSTEMS)
def test_rk4_energy_drifts(sname):
    """RK4 is not symplectic: its energy error grows secularly ~ t h^4 (same run as above)."""
    worst, early, fitted_change, floor = _energy_error("rk4", sname)
    assert worst > 1e3 * floor
    assert worst >= 5.0 * early, f"no secular growth: {early:.3e} -> {worst:.3e}"
    assert fitted_change >= 0.5 * worst


# -- time reversal -------------------------------------------------------------

@pytest.mark.parametrize("name,sname", pairs())
def test_time_reversal(name, sname):
    """N steps forward then N with backward=True: a symmetric method returns to the start up
    to round-off (N = 200: 200 EPS ~ 4e-14, with margin for the growth of errors in chaotic
    many-body motion: 1e-11);
    symplectic Euler and RK4 are not symmetric and miss the start by ~ N h^(p+1)."""
    integ = make(name, 0.1 / rate(sname))
    q0, p0 = start_state(sname)
    q, p = members(q0, p0)
    aux = integ.init_aux(q, p)
    aux0 = aux.copy()
    n = 200
    assert integ.advance(system(sname), q, p, n, aux=aux).ok
    moved = max(np.max(np.abs(q[0] - q0)), np.max(np.abs(p[0] - p0)))
    assert integ.advance(system(sname), q, p, n, aux=aux, backward=True).ok
    scale = state_scale(q0, p0)
    err = max(np.max(np.abs(q[0] - q0)), np.max(np.abs(p[0] - p0))) / scale
    assert moved / scale > 1e-2, "setup: the trajectory did not move"
    if name in SYMMETRIC:
        assert err < 1e-11, f"{name} on {sname} does not reverse: {err:.2e}"
        if aux.size:
            assert np.max(np.abs(aux - aux0)) / scale < 1e-11, "the extended copies do not reverse"
    else:
        assert err > 1e-9, f"{name} reverses to {err:.2e}, but it is not a symmetric method"


# -- symplecticity -------------------------------------------------------------

def _one_step_jacobian(integ, sname, z0, n_pairs, pack, unpack, d=1e-6):
    """Jacobian of one step by central differences, all 2m perturbations in one ensemble call."""
    m = z0.size
    Z = np.repeat(z0[None], 2 * m, axis=0)
    for j in range(m):
        Z[2 * j, j] += d
        Z[2 * j + 1, j] -= d
    q, p, aux = unpack(Z)
    res = integ.advance(system(sname), q, p, 1, aux=aux)
    assert res.ok, res.status
    out = pack(q, p, aux)
    return (out[0::2] - out[1::2]).T / (2.0 * d)


def _symplectic_defect(M):
    k = M.shape[0] // 2
    J = np.block([[np.zeros((k, k)), np.eye(k)], [-np.eye(k), np.zeros((k, k))]])
    return float(np.max(np.abs(M.T @ J @ M - J)))


@pytest.mark.parametrize("name,sname", pairs())
def test_one_step_map_symplectic(name, sname):
    """M^T J M = J for the one-step Jacobian M (central differences, h = 1e-6: error
    ~ h^2 + EPS/h ~ 1e-10, so the tolerance is 1e-7), at a moderately large step
    omega*dt = 0.5. Non-symplectic methods must violate it by far more (RK4 on the
    oscillator: 1 - |R(i omega h)|^2 ~ (omega h)^6 / 72 ~ 2e-4), here > 1e-5.

    Tao's map on (q, p) alone is not symplectic (only an approximation of one): the
    test checks its map on the extended phase space (q, x; p, y), for which it is exact,
    starting with copies x != q, y != p.
    """
    integ = make(name, 0.5 / rate(sname))
    q0, p0 = start_state(sname)
    n = q0.size
    if integ.n_aux == 0:
        z0 = np.concatenate([q0, p0])

        def unpack(Z):
            return np.ascontiguousarray(Z[:, :n]), np.ascontiguousarray(Z[:, n:]), None

        def pack(q, p, aux):
            return np.concatenate([q, p], axis=1)
    elif name == "tao":
        rng = np.random.default_rng(3)
        z0 = np.concatenate([q0, q0 + 0.01 * rng.standard_normal(n), p0, p0 + 0.01 * rng.standard_normal(n)])

        def unpack(Z):  # extended coordinates (q, x) with momenta (p, y)
            aux = np.ascontiguousarray(np.stack([Z[:, n:2 * n], Z[:, 3 * n:]], axis=1))
            return np.ascontiguousarray(Z[:, :n]), np.ascontiguousarray(Z[:, 2 * n:3 * n]), aux

        def pack(q, p, aux):
            return np.concatenate([q, aux[:, 0], p, aux[:, 1]], axis=1)
    else:
        pytest.fail(f"{name} carries aux state of unknown meaning; extend this test")
    M = _one_step_jacobian(integ, sname, z0, n, pack, unpack)
    defect = _symplectic_defect(M)
    if integ.symplectic:
        assert defect < 1e-7, f"{name} on {sname}: |M^T J M - J| = {defect:.2e}"
    else:
        assert defect > 1e-5, f"{name} claims not to be symplectic but its defect is {defect:.2e}"


# -- exact solutions -----------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in INTEGRATORS if compatible(n, "harmonic-oscillator")])
def test_harmonic_oscillator_matches_closed_form(name):
    """Every frame over 3 periods against ``HarmonicOscillator.exact`` (m = 2, k = 0.5): the
    global error of an order-p method is C (omega h)^p omega t with C = O(1) (leapfrog's phase
    error has C = 1/24); the bound uses C = 1, at 200 steps per period."""
    sys_ = systems.get("harmonic-oscillator", mass=2.0, k=0.5)
    w = sys_.omega
    period = 2 * math.pi / w
    integ = make(name, period / 200)
    nsteps = math.ceil(3 * period / integ.dt)
    q0, p0 = 1.0, 0.3
    q, p = members([q0], [p0])
    res = integ.advance(sys_, q, p, nsteps)
    assert res.ok
    t = res.steps * integ.dt
    qe, pe = sys_.exact(q0, p0, t)
    amp = math.hypot(q0, p0 / (sys_.mass * w))
    err = max(np.max(np.abs(res.q[:, 0, 0] - qe)), np.max(np.abs(res.p[:, 0, 0] - pe)) / (sys_.mass * w)) / amp
    bound = (w * integ.dt) ** integ.order * w * t[-1] + 100 * EPS * nsteps
    assert err <= bound, f"{name}: error {err:.2e} > bound {bound:.2e}"


def _two_body(m1=1.0, m2=0.5, G=1.0):
    return systems.get("two-body", m1=m1, m2=m2, G=G)


@pytest.mark.parametrize("name", [n for n in INTEGRATORS if compatible(n, "two-body")])
def test_circular_orbit_returns_after_one_period(name):
    """A circular orbit (m1 = 1, m2 = 0.5, separation 1.3) is back at its start after
    ``TwoBody.period`` to C (omega h)^p * 2 pi, C <= 2 (1000 steps per period), and is
    diametrically opposite at half the period."""
    sys_ = _two_body()
    q0, p0 = (x.reshape(-1) for x in sys_.circular_orbit(1.3))
    period = sys_.period(q0, p0)
    nsteps = 2 * math.ceil(period / min(period / 1000, max_dt(name)) / 2)
    integ = integrators.get(name, dt=period / nsteps)
    q, p = members(q0, p0)
    res = integ.advance(sys_, q, p, nsteps)
    assert res.ok
    half = res.q[nsteps // 2 - 1, 0]  # state after step nsteps/2
    np.testing.assert_allclose(half[2:] - half[:2], -(q0[2:] - q0[:2]), atol=0.05 * 1.3)
    err = max(np.max(np.abs(q[0] - q0)) / 1.3, np.max(np.abs(p[0] - p0)) / np.max(np.abs(p0)))
    bound = 2.0 * (2 * math.pi / nsteps) ** integ.order * 2 * math.pi + 1e-11
    assert err <= bound, f"{name}: {err:.2e} > {bound:.2e}"


def _crossings(t, y, ydot, direction):
    """Times where ``y`` crosses zero in ``direction`` (+1 up, -1 down), by Newton on the cubic
    Hermite interpolant of (y, ydot) over the step (error O(dt^4))."""
    idx = np.nonzero((direction * y[:-1] < 0) & (direction * y[1:] >= 0))[0]
    times = []
    for k in idx:
        h = t[k + 1] - t[k]
        y0, y1, d0, d1 = y[k], y[k + 1], ydot[k] * h, ydot[k + 1] * h
        s = y0 / (y0 - y1)
        for _ in range(30):
            f = (2 * s**3 - 3 * s**2 + 1) * y0 + (s**3 - 2 * s**2 + s) * d0 + (-2 * s**3 + 3 * s**2) * y1 + (s**3 - s**2) * d1
            df = (6 * s**2 - 6 * s) * y0 + (3 * s**2 - 4 * s + 1) * d0 + (-6 * s**2 + 6 * s) * y1 + (3 * s**2 - 2 * s) * d1
            s -= f / df
        times.append(t[k] + s * h)
    return np.array(times)


HIGH_ORDER = [n for n in INTEGRATORS if probe(n).order >= 4]


@pytest.mark.parametrize("name", [n for n in HIGH_ORDER if compatible(n, "two-body")])
def test_eccentric_orbit_period_obeys_kepler(name):
    """Start at periapsis with 1.2 times the circular speed (e = 0.44). The period measured
    from the trajectory (upward crossings of the periapsis direction) over 3 orbits matches
    Kepler's third law T = 2 pi sqrt(a^3 / (G M)), with a from the vis-viva equation,
    to 1e-8 (order >= 4 at 4000 steps per orbit)."""
    sys_ = _two_body()
    GM = sys_.G * (sys_.m1 + sys_.m2)
    q0, p0 = (x.reshape(-1) for x in sys_.circular_orbit(1.0))
    p0 = 1.2 * p0
    r = np.linalg.norm(q0[2:] - q0[:2])
    v = np.linalg.norm(p0[2:] / sys_.m2 - p0[:2] / sys_.m1)
    a = 1.0 / (2.0 / r - v**2 / GM)
    kepler = 2 * math.pi * math.sqrt(a**3 / GM)
    assert a > 1.5 * r, "setup: the orbit is not eccentric"
    integ = make(name, kepler / 4000)
    nsteps = math.ceil(3.3 * kepler / integ.dt)
    q, p = members(q0, p0)
    res = integ.advance(sys_, q, p, nsteps)
    assert res.ok
    t = np.concatenate([[0.0], res.steps * integ.dt])
    Q = np.concatenate([q0[None], res.q[:, 0]])
    P = np.concatenate([p0[None], res.p[:, 0]])
    y_rel = Q[:, 3] - Q[:, 1]
    vy_rel = P[:, 3] / sys_.m2 - P[:, 1] / sys_.m1
    times = _crossings(t, y_rel, vy_rel, +1)
    assert times.size == 3, times
    measured = np.diff(np.concatenate([[0.0], times]))
    np.testing.assert_allclose(measured, kepler, rtol=1e-8)
    assert sys_.period(q0, p0) == pytest.approx(kepler, rel=1e-12)


@pytest.mark.parametrize("name", [n for n in HIGH_ORDER if compatible(n, "pendulum")])
def test_pendulum_period_matches_elliptic_integral(name):
    """Released from rest at amplitude 2.5 rad (period 1.6 times the small-angle one),
    the time between downward zero crossings of the angle matches ``Pendulum.period`` to
    1e-8 (order >= 4, omega*dt = 0.005)."""
    sys_ = systems.get("pendulum", mass=0.7, length=1.5, g=9.81)
    amplitude = 2.5
    period = sys_.period(amplitude)
    w = math.sqrt(sys_.g / sys_.length)
    assert period > 1.5 * 2 * math.pi / w, "setup: the amplitude is not in the nonlinear regime"
    integ = make(name, 0.005 / w)
    nsteps = math.ceil(3.5 * period / integ.dt)
    q, p = members([amplitude], [0.0])
    res = integ.advance(sys_, q, p, nsteps)
    assert res.ok
    t = res.steps * integ.dt
    angle = res.q[:, 0, 0]
    speed = res.p[:, 0, 0] / (sys_.mass * sys_.length**2)
    times = _crossings(t, angle, speed, -1)
    assert times.size == 4, times
    np.testing.assert_allclose(np.diff(times), period, rtol=1e-8)


# -- kernels against the naive reference -------------------------------------------

@pytest.mark.parametrize("name,kwargs,sname", _variant_pairs(SYSTEMS))
def test_kernel_matches_naive_reference(name, kwargs, sname):
    """Every state of 40 steps forward, then 20 with backward=True, agrees with the plain
    NumPy reference in tests/naive.py to 1e-13 relative (round-off of a few operations per
    step, summed over the steps)."""
    integ = make(name, 0.1 / rate(sname), **kwargs)
    q0, p0 = start_state(sname)
    scale = state_scale(q0, p0)
    q, p = members(q0, p0)
    aux = integ.init_aux(q, p)
    fwd = integ.advance(system(sname), q, p, 40, aux=aux)
    bwd = integ.advance(system(sname), q, p, 20, aux=aux, backward=True)
    assert fwd.ok and bwd.ok
    Qf, Pf, aux_f = naive.run(integ, system(sname), q0, p0, 40)
    Qb, Pb, _ = naive.run(integ, system(sname), Qf[-1], Pf[-1], 20, aux=aux_f, backward=True)
    for kernel, ref in ((fwd.q[:, 0], Qf), (fwd.p[:, 0], Pf), (bwd.q[:, 0], Qb), (bwd.p[:, 0], Pb)):
        err = np.max(np.abs(kernel - ref)) / scale
        assert err < 1e-13, f"{name}{kwargs} on {sname}: kernel and naive differ by {err:.2e}"


def test_implicit_midpoint_solves_its_equation():
    """Each accepted implicit-midpoint step satisfies y1 = y0 + h f((y0 + y1)/2) to
    round-off (the iteration ran to convergence, not a fixed small number of times)."""
    if "implicit-midpoint" not in INTEGRATORS:
        pytest.skip("implicit-midpoint not registered")
    sname = "double-pendulum"
    sys_ = system(sname)
    integ = integrators.get("implicit-midpoint", dt=0.3 / rate(sname))
    q0, p0 = start_state(sname)
    _, _, res = run(integ, sname, q0, p0, 30)
    Q = np.concatenate([q0[None], res.q[:, 0]])
    P = np.concatenate([p0[None], res.p[:, 0]])
    gq, gp = sys_.gradients(0.5 * (Q[1:] + Q[:-1]), 0.5 * (P[1:] + P[:-1]))
    rq = Q[1:] - Q[:-1] - integ.dt * gp
    rp = P[1:] - P[:-1] + integ.dt * gq
    assert max(np.max(np.abs(rq)), np.max(np.abs(rp))) < 16 * EPS * state_scale(Q, P)


# -- ensembles, frames and continuation ---------------------------------------

@pytest.mark.parametrize("name,sname", pairs())
def test_ensemble_equals_separate_members(name, sname):
    """B members in one call equal B single-member calls bit for bit (states, frames, aux)."""
    integ = make(name, 0.1 / rate(sname))
    states = [start_state(sname, seed=s) for s in range(5)]
    q = np.ascontiguousarray(np.stack([s[0] for s in states]))
    p = np.ascontiguousarray(np.stack([s[1] for s in states]))
    aux = integ.init_aux(q, p)
    res = integ.advance(system(sname), q, p, 25, aux=aux, every=5)
    assert res.ok
    for b, (q0, p0) in enumerate(states):
        qb, pb = members(q0, p0)
        auxb = integ.init_aux(qb, pb)
        rb = integ.advance(system(sname), qb, pb, 25, aux=auxb, every=5)
        assert np.array_equal(qb[0], q[b]) and np.array_equal(pb[0], p[b])
        assert np.array_equal(rb.q[:, 0], res.q[:, b]) and np.array_equal(rb.p[:, 0], res.p[:, b])
        assert np.array_equal(auxb[0], aux[b])


@pytest.mark.parametrize("name,sname", pairs())
def test_continuation_is_bit_identical(name, sname):
    """20 steps in one call == 7 + 6 + 7 steps with step0 and aux carried, bit for bit,
    frames (every=3) included; and each frame is the state after its global step."""
    integ = make(name, 0.1 / rate(sname))
    q0, p0 = start_state(sname)
    qa, pa = members(q0, p0)
    aux_a = integ.init_aux(qa, pa)
    whole = integ.advance(system(sname), qa, pa, 20, aux=aux_a, every=3)
    qb, pb = members(q0, p0)
    aux_b = integ.init_aux(qb, pb)
    parts, step = [], 0
    for n in (7, 6, 7):
        parts.append(integ.advance(system(sname), qb, pb, n, aux=aux_b, step0=step, every=3))
        step += n
    assert whole.ok and all(r.ok for r in parts)
    assert np.array_equal(whole.steps, np.arange(3, 21, 3))
    assert np.array_equal(np.concatenate([r.steps for r in parts]), whole.steps)
    assert np.array_equal(np.concatenate([r.q for r in parts]), whole.q)
    assert np.array_equal(np.concatenate([r.p for r in parts]), whole.p)
    assert np.array_equal(qa, qb) and np.array_equal(pa, pb) and np.array_equal(aux_a, aux_b)
    # frames are the states after their steps: one step per call
    qc, pc = members(q0, p0)
    aux_c = integ.init_aux(qc, pc)
    for k in range(18):
        integ.advance(system(sname), qc, pc, 1, aux=aux_c, step0=k)
        if (k + 1) % 3 == 0:
            i = (k + 1) // 3 - 1
            assert np.array_equal(whole.q[i, 0], qc[0]) and np.array_equal(whole.p[i, 0], pc[0])


def test_kernels_are_compiled_without_fastmath():
    """fastmath re-associates and contracts to FMA, breaking bit-reproducibility."""
    import importlib
    import pkgutil

    import numba

    found = 0
    for package in (integrators, systems):
        for mod in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{mod.name}")
            for obj in vars(module).values():
                if isinstance(obj, numba.core.registry.CPUDispatcher):
                    found += 1
                    assert not obj.targetoptions.get("fastmath", False), f"{module.__name__}.{obj.py_func.__name__}"
    assert found > 0


# -- registry and argument validation --------------------------------------------

@pytest.mark.parametrize("registry", [integrators.registry, systems.registry], ids=["integrators", "systems"])
def test_registry_rejects_duplicates(registry):
    name = registry.available()[0]
    factory = registry.factory(name)
    for spelling in (name, name.upper(), name.replace("-", "_")):
        with pytest.raises(ValueError, match=r"already registered.*replace=True"):
            registry.register(spelling, factory)
    assert registry.factory(name) is factory


def test_registry_register_and_lookup_fresh():
    reg = Registry("widget")
    reg.register("Big_Widget", dict)
    assert reg.available() == ["big-widget"] and "big widget" in reg and reg.get("BIG-WIDGET", a=1) == {"a": 1}
    with pytest.raises(TypeError, match="must be callable"):
        reg.register("other", 3)
    with pytest.raises(TypeError, match="non-empty string"):
        reg.register("  ", dict)


@pytest.mark.parametrize("module,typo,meant", [(integrators, "leapfrg", "leapfrog"),
                                               (integrators, "yoshida-4", "yoshida4"),
                                               (systems, "pendulm", "pendulum"),
                                               (systems, "henon_heils", "henon-heiles")])
def test_unknown_name_suggests_the_closest(module, typo, meant):
    if meant not in module.available():
        pytest.skip(f"{meant} not registered")
    with pytest.raises(KeyError, match=rf"unknown .*Did you mean .*'{re.escape(meant)}'"):
        module.get(typo)
    with pytest.raises(KeyError, match=r"Available: "):
        module.get("zzzzzz")


@pytest.mark.parametrize("name,sname", [pytest.param(i, s, id=f"{i}-{s}") for i in INTEGRATORS for s in SYSTEMS
                                        if not compatible(i, s)])
def test_explicit_methods_refuse_non_separable(name, sname):
    """The message names every integrator that does handle a general H."""
    general = [n for n in INTEGRATORS if not probe(n).requires_separable]
    assert {"implicit-midpoint", "tao", "rk4"} <= set(general)
    q0, p0 = start_state(sname)
    q, p = members(q0, p0)
    pattern = r"not separable.*" + "".join(rf"(?=.*\b{re.escape(n)}\b)" for n in general)
    with pytest.raises(integrators.IncompatibleSystemError, match=pattern):
        integrators.get(name, dt=0.01).advance(system(sname), q, p, 5)
    assert np.array_equal(q[0], q0) and np.array_equal(p[0], p0), "state touched before the refusal"
    assert issubclass(integrators.IncompatibleSystemError, ValueError)


@pytest.mark.parametrize("name", INTEGRATORS)
@pytest.mark.parametrize("dt,exc,message", [
    (0, ValueError, r"dt must be finite and > 0, got 0\.0"),
    (-1, ValueError, r"dt must be finite and > 0, got -1\.0"),
    (float("nan"), ValueError, r"dt must be finite and > 0, got nan"),
    (float("inf"), ValueError, r"dt must be finite and > 0, got inf"),
    ("x", TypeError, r"dt must be a positive number, got 'x' \(str\)"),
    (None, TypeError, r"dt must be a positive number, got None"),
], ids=["zero", "negative", "nan", "inf", "str", "none"])
def test_bad_dt_rejected(name, dt, exc, message):
    with pytest.raises(exc, match=message):
        integrators.get(name, dt=dt)


def test_method_parameters_validated():
    if "tao" in INTEGRATORS:
        for omega in (0, -1.0, float("nan"), "20"):
            with pytest.raises(ValueError, match=r"omega must be a finite number > 0"):
                integrators.get("tao", dt=0.01, omega=omega)
        with pytest.raises(ValueError, match=r"order must be 2, 4 or 6, got 3"):
            integrators.get("tao", dt=0.01, order=3)
        assert integrators.get("tao", dt=0.01, order=6).order == 6
    if "implicit-midpoint" in INTEGRATORS:
        for bad in (0, 2.5):
            with pytest.raises(ValueError, match=r"max_iter must be a positive integer"):
                integrators.get("implicit-midpoint", dt=0.01, max_iter=bad)


@pytest.mark.parametrize("name", INTEGRATORS)
def test_advance_validates_arrays(name):
    sname = next(s for s in SYSTEMS if compatible(name, s))
    integ = integrators.get(name, dt=0.01)
    q0, p0 = start_state(sname)
    q, p = members(q0, p0)
    with pytest.raises(TypeError, match=r"q must be a C-contiguous float64 array"):
        integ.advance(system(sname), q.astype(np.float32), p, 1)
    strided = np.zeros((3, 2 * q.shape[1]))[:, ::2]
    with pytest.raises(TypeError, match=r"q must be a C-contiguous float64 array"):
        integ.advance(system(sname), strided, np.zeros((3, q.shape[1])), 1)
    with pytest.raises(TypeError, match=r"p must be a C-contiguous float64 array of shape \(1, \d+\)"):
        integ.advance(system(sname), q, np.tile(p, (2, 1)), 1)
    with pytest.raises(ValueError, match=r"need nsteps >= 0, step0 >= 0, every >= 1; got -1"):
        integ.advance(system(sname), q, p, -1)
    with pytest.raises(ValueError, match=r"every >= 1; got 1, 0, 0"):
        integ.advance(system(sname), q, p, 1, every=0)
    assert np.array_equal(q[0], q0) and np.array_equal(p[0], p0)
    if integ.n_aux:
        with pytest.raises(ValueError, match=r"needs aux of shape \(1, 2, \d+\)"):
            integ.advance(system(sname), q, p, 1, aux=np.zeros((1, 1, q.shape[1])))


# -- divergence -------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in INTEGRATORS if compatible(n, "harmonic-oscillator")])
def test_divergence_reports_status_and_step(name):
    """dt = 10 on the oscillator (omega = 1) is far outside every method's stability region:
    the member stops with code 1 (non-finite) at the first non-finite step, found here by
    stepping one at a time, or, for an implicit method, with code 2 (not converged) or 1,
    left at its last accepted state. Never a silent 'success'."""
    sname = "harmonic-oscillator"
    integ = integrators.get(name, dt=10.0)
    q0, p0 = np.array([1.0]), np.array([0.0])
    q, p = members(q0, p0)
    res = integ.advance(system(sname), q, p, 5000, aux=integ.init_aux(q, p), step0=100)
    assert not res.ok
    code, step = res.status[0]
    assert code in (1, 2)
    # replay step by step from the start, finite states only
    qs, ps = members(q0, p0)
    aux = integ.init_aux(qs, ps)
    last_q, last_p = qs.copy(), ps.copy()
    for k in range(1, 5001):
        r = integ.advance(system(sname), qs, ps, 1, aux=aux, step0=100 + k - 1)
        if not r.ok:
            break
        assert np.all(np.isfinite(qs)) and np.all(np.isfinite(ps)), f"non-finite state reported as ok at step {k}"
        last_q, last_p = qs.copy(), ps.copy()
    assert step == 100 + k, f"status step {step}, replay fails at global step {100 + k}"
    assert r.status[0, 0] == code
    if code == 1:
        assert not (np.all(np.isfinite(q)) and np.all(np.isfinite(p)))
    else:  # not converged: left at the last accepted state
        assert np.array_equal(q, last_q) and np.array_equal(p, last_p)


@pytest.mark.parametrize("name", [n for n in INTEGRATORS if compatible(n, "henon-heiles")])
def test_diverging_member_leaves_the_others_alone(name):
    """Henon-Heiles above the escape energy 1/6 runs off to infinity in finite time. In an
    ensemble only that member is stopped (code 1, or 2 for an implicit solve); the bound
    members finish, bit identical to a run without it."""
    sname = "henon-heiles"
    integ = make(name, 0.05)
    q0 = np.array([[0.1, 0.0], [0.0, 0.0], [0.0, 0.2]])
    p0 = np.array([[0.0, 0.3], [1.0, 1.0], [0.2, 0.0]])  # member 1: E = 1 > 1/6
    q, p = q0.copy(), p0.copy()
    nsteps = math.ceil(50.0 / integ.dt)
    res = integ.advance(system(sname), q, p, nsteps, aux=integ.init_aux(q, p))
    assert res.status[1, 0] in (1, 2) and 1 <= res.status[1, 1] <= nsteps, res.status
    assert res.status[0, 0] == 0 and res.status[2, 0] == 0
    q2 = np.ascontiguousarray(q0[[0, 2]])
    p2 = np.ascontiguousarray(p0[[0, 2]])
    ref = integ.advance(system(sname), q2, p2, nsteps, aux=integ.init_aux(q2, p2))
    assert ref.ok
    assert np.array_equal(q[[0, 2]], q2) and np.array_equal(p[[0, 2]], p2)
    assert np.array_equal(res.q[:, [0, 2]], ref.q) and np.array_equal(res.p[:, [0, 2]], ref.p)


# regression: the round-off tolerance once scaled with the (diverging) iterate, and max()
# dropped NaN increments, so unsolved and NaN steps were accepted with status 0
_FAR_TOO_LARGE = [pytest.param(s, c, id=f"{s}-{c}") for s in SYSTEMS for c in (5.0, 50.0)]


@pytest.mark.skipif("implicit-midpoint" not in INTEGRATORS, reason="implicit-midpoint not registered")
@pytest.mark.parametrize("sname,c", _FAR_TOO_LARGE)
def test_implicit_midpoint_never_accepts_an_unsolved_step(sname, c):
    """With omega*dt = 5 or 50, (h/2) Lip(f) >> 1: the fixed-point iteration diverges. Every
    step the kernel accepts must still solve y1 = y0 + h f((y0 + y1)/2) to round-off (a
    far-off root of the implicit equation is a legitimate, if useless, answer); a step it
    cannot solve stops the member with code 2 (or 1) and leaves it at the last accepted state."""
    sys_ = system(sname)
    integ = integrators.get("implicit-midpoint", dt=c / rate(sname), max_iter=50)
    q0, p0 = start_state(sname)
    q, p = members(q0, p0)
    res = integ.advance(sys_, q, p, 10)
    code, step = res.status[0]
    accepted = 10 if code == 0 else step - 1
    assert code in (0, 1, 2) and (code == 0 or step >= 1)
    Q = np.concatenate([q0[None], res.q[:accepted, 0]])
    P = np.concatenate([p0[None], res.p[:accepted, 0]])
    assert np.all(np.isfinite(Q)) and np.all(np.isfinite(P)), "a non-finite state was accepted"
    gq, gp = sys_.gradients(0.5 * (Q[1:] + Q[:-1]), 0.5 * (P[1:] + P[:-1]))
    residual = np.concatenate([Q[1:] - Q[:-1] - integ.dt * gp, P[1:] - P[:-1] + integ.dt * gq], axis=1)
    if accepted:
        assert np.max(np.abs(residual)) < 16 * EPS * state_scale(Q, P), "an unsolved step was accepted"
    assert np.array_equal(q[0], Q[-1]) and np.array_equal(p[0], P[-1])


@pytest.mark.parametrize("name", [n for n in INTEGRATORS if compatible(n, "two-body")])
def test_collision_reports_non_finite(name):
    """Two bodies at rest on top of each other: the force is 0/0 = NaN (NumPy error model),
    whatever the order of drifts and kicks, so the member stops at step 1 with code 1 and
    nothing is reported as a success."""
    sys_ = system("two-body")
    q = np.zeros((1, 4))
    p = np.zeros((1, 4))
    res = integrators.get(name, dt=0.01).advance(sys_, q, p, 10)
    assert tuple(res.status[0]) == (1, 1), res.status


def test_booleans_and_strings_are_not_numbers():
    """dt=True, dt="0.01" and a boolean mass used to be taken as 1.0 / 0.01 silently."""
    for bad in (True, np.bool_(True), "0.01", None, [0.01]):
        with pytest.raises(TypeError, match=r"dt must be a positive number"):
            integrators.Leapfrog(dt=bad)
    for bad in (True, "2.0"):
        with pytest.raises(TypeError, match=r"Pendulum parameter length must be a number"):
            systems.Pendulum(length=bad)
    assert integrators.Leapfrog(dt=1).dt == 1.0 and integrators.Leapfrog(dt=np.float32(0.5)).dt == 0.5
    assert systems.Pendulum(length=np.int64(2)).length == 2.0
