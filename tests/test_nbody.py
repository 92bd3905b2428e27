"""Tests of :class:`systems.nbody.NBodyGravity`: forces against a plain double loop over
pairs, gradients against finite differences, serial/parallel bit-identity, conservation
laws under the splitting kernels, the two-body limit, states and input validation.

The generic suites (``test_systems.py``, ``test_integrators.py``) cover it too once it is
registered in ``systems/__init__.py``; here it is registered per test where the registry
is needed (the ``_restore_registry`` fixture of ``conftest.py`` removes it again).
"""

from __future__ import annotations

import json
import math

import numba
import numpy as np
import pytest

import integrators
import systems
from conftest import EPS
from integrators.errors import InputError, InputTypeError
from systems.nbody import DEFAULT_MASSES, NBodyGravity


@pytest.fixture
def registered():
    systems.register(NBodyGravity.name, NBodyGravity, replace=True)
    return NBodyGravity.name


def random_cluster(n, dim, seed, spread=1.0):
    """Unequal masses in [0.5, 2], positions in a cube, momenta O(1); ``q, p`` of shape (n, dim)."""
    rng = np.random.default_rng([seed, n, dim])
    masses = rng.uniform(0.5, 2.0, n)
    q = rng.uniform(-spread, spread, (n, dim))
    p = rng.standard_normal((n, dim))
    return masses, q, p


def reference_gradient(masses, q, G, eps):
    """dH/dq by the obvious double loop over pairs i < j; also, per entry, the sum of the
    magnitudes of the terms added (the scale of its round-off)."""
    n, dim = q.shape
    grad = np.zeros((n, dim))
    scale = np.zeros((n, dim))
    for i in range(n):
        for j in range(i + 1, n):
            d = q[i] - q[j]
            r = math.sqrt(float(d @ d) + eps * eps)
            f = G * masses[i] * masses[j] * d / r ** 3  # dV/dq_i from this pair
            grad[i] += f
            grad[j] -= f
            scale[i] += np.abs(f)
            scale[j] += np.abs(f)
    return grad, scale


def call(fn, sys_, q, p=None):
    out = np.full(sys_.ndof, np.nan)
    work = sys_.workspace(1)
    p = np.zeros(sys_.ndof) if p is None else np.ascontiguousarray(p, dtype=np.float64).reshape(-1)
    fn(np.ascontiguousarray(q, dtype=np.float64).reshape(-1), p, sys_.params, work.iwork[0], work.fwork[0], out)
    return out


# -- forces and energy --------------------------------------------------------------

@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("eps", [0.0, 0.07])
@pytest.mark.parametrize("n", [2, 5, 13, 37, 300])
def test_forces_match_double_loop_reference(n, dim, eps):
    """Every pair once, in both bodies, against the reference to round-off: the summation
    error of an entry is at most ~ N EPS times the sum of the magnitudes of its terms.
    N = 2, 5, 13, 37 cover the vector part and the one-by-one remainder of a row; N = 300
    has two blocks. Serial and threaded functions alike."""
    masses, q, p = random_cluster(n, dim, seed=1)
    sys_ = NBodyGravity(masses=masses, dim=dim, G=0.7, softening=eps)
    ref, scale = reference_gradient(masses, q, 0.7, eps)
    for parallel in (False, True):
        got = call(sys_.kernel_functions(parallel)[0], sys_, q).reshape(n, dim)
        assert np.all(np.abs(got - ref) <= 4 * n * EPS * scale), np.max(np.abs(got - ref) / scale)
    gq, gp = sys_.gradients(q, p)
    assert np.array_equal(gq, call(sys_.dHdq, sys_, q).reshape(n, dim))
    assert np.array_equal(gp, p / masses[:, None])
    # energy: kinetic + the same double loop
    V = sum(-0.7 * masses[i] * masses[j] / math.sqrt(float((q[i] - q[j]) @ (q[i] - q[j])) + eps * eps)
            for i in range(n) for j in range(i + 1, n))
    T = 0.5 * float(np.sum(p * p / masses[:, None]))
    assert sys_.energy(q, p) == pytest.approx(T + V, rel=1e-13)
    assert sys_.split_energy(q, p)[1] == pytest.approx(V, rel=1e-13)


@pytest.mark.parametrize("dim,eps", [(2, 0.0), (3, 0.0), (3, 0.3)])
def test_gradient_is_finite_difference_of_energy(dim, eps):
    """dH/dq against central differences of ``energy``, h = 1e-6: error ~ h^2 + EPS |H| / h."""
    masses, q, p = random_cluster(9, dim, seed=4)
    sys_ = NBodyGravity(masses=masses, dim=dim, G=1.3, softening=eps)
    gq, _ = sys_.gradients(q, p)
    x = q.reshape(-1)
    fd = np.empty_like(x)
    for k in range(x.size):
        h = 1e-6 * max(1.0, abs(x[k]))
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        fd[k] = (sys_.energy(xp, p.reshape(-1)) - sys_.energy(xm, p.reshape(-1))) / (2 * h)
    assert np.max(np.abs(gq.reshape(-1) - fd)) < 1e-6 * max(1.0, np.max(np.abs(gq)))


def test_two_bodies_in_the_plane_are_the_two_body_system():
    tb = systems.TwoBody(m1=1.3, m2=0.4, G=2.5)
    nb2 = NBodyGravity(masses=[1.3, 0.4], dim=2, G=2.5)
    assert nb2.shape == tb.shape == (2, 2)
    rng = np.random.default_rng(3)
    Q = rng.uniform(-2, 2, (20, 4))
    P = rng.standard_normal((20, 4))
    np.testing.assert_allclose(nb2.energy(Q, P), tb.energy(Q, P), rtol=4 * EPS)
    for a, b in zip(nb2.gradients(Q, P), tb.gradients(Q, P)):
        np.testing.assert_allclose(a, b, rtol=4 * EPS, atol=0)
    q, p = tb.circular_orbit(1.0)
    integ = integrators.Leapfrog(0.01)
    q1, p1 = q.reshape(1, -1).copy(), p.reshape(1, -1).copy()
    q2, p2 = q1.copy(), p1.copy()
    assert integ.advance(tb, q1, p1, 500).ok and integ.advance(nb2, q2, p2, 500).ok
    np.testing.assert_allclose(q2, q1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p2, p1, rtol=0, atol=1e-12)


# -- serial / parallel bit-identity ----------------------------------------------------

@pytest.mark.parametrize("n,dim", [(1024, 3), (777, 3), (513, 2)])
def test_parallel_forces_bit_identical_to_serial(n, dim):
    """Several blocks (K = 8, 6, 4): the threaded forces equal the serial ones bit for bit,
    with 1 thread and with all threads, and a fresh workspace gives the same again."""
    sys_ = NBodyGravity(n_bodies=n, dim=dim, softening=0.01)
    q, _ = sys_.plummer_state(seed=2)
    serial = call(sys_.kernel_functions(False)[0], sys_, q)
    threads = numba.get_num_threads()
    try:
        for t in sorted({1, threads}):
            numba.set_num_threads(t)
            assert np.array_equal(call(sys_.kernel_functions(True)[0], sys_, q), serial)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(call(sys_.kernel_functions(False)[0], sys_, q), serial)
    assert np.all(np.isfinite(serial))


@pytest.mark.parametrize("position", [0, 1, 2])
def test_single_member_run_equals_the_same_member_in_an_ensemble(position):
    """B = 1 runs the parallel forces, B = 3 the serial ones inside the ensemble kernel:
    states and frames agree bit for bit, wherever the member sits."""
    sys_ = NBodyGravity(n_bodies=300, softening=0.02)
    assert sys_.kernel_functions(True)[0] is not sys_.kernel_functions(False)[0]
    states = [sys_.plummer_state(seed=s) for s in (5, 6, 7)]
    q3 = np.stack([s[0].reshape(-1) for s in states])
    p3 = np.stack([s[1].reshape(-1) for s in states])
    q3[[0, position]] = q3[[position, 0]]
    p3[[0, position]] = p3[[position, 0]]
    integ = integrators.Leapfrog(1e-3)
    ens = integ.advance(sys_, q3, p3, 12, every=4)
    q1 = np.ascontiguousarray(states[0][0].reshape(1, -1))
    p1 = np.ascontiguousarray(states[0][1].reshape(1, -1))
    one = integ.advance(sys_, q1, p1, 12, every=4)
    assert ens.ok and one.ok
    assert np.array_equal(q1[0], q3[position]) and np.array_equal(p1[0], p3[position])
    assert np.array_equal(one.q[:, 0], ens.q[:, position]) and np.array_equal(one.p[:, 0], ens.p[:, position])


def test_row_sweep_is_explicit_vector_code():
    """The j-loop is written with 4-lane vectors (independent of what the loop vectoriser
    does): the compiled force function holds packed square roots and divisions."""
    from systems import nbody

    sys_ = NBodyGravity(n_bodies=8)
    call(sys_.kernel_functions(True)[0], sys_, sys_.default_state()[0])
    fresh = numba.njit(error_model="numpy")(nbody._gravity)  # not disk-cached: inspectable
    w = sys_.workspace(1)
    fresh(sys_.default_state()[0].reshape(-1), sys_.params, w.iwork[0], w.fwork[0], np.empty(sys_.ndof))
    llvm = "".join(fresh.inspect_llvm().values())
    assert "llvm.sqrt.v4f64" in llvm and "fdiv <4 x double>" in llvm


# -- conservation under the splitting kernels ----------------------------------------

def _momenta(sys_, res):
    obs = sys_.extra_observables(res.q[:, 0], res.p[:, 0])
    return obs["momentum"], obs["angular_momentum"]


@pytest.mark.parametrize("dim", [2, 3])
def test_momentum_and_angular_momentum_conserved_to_round_off(dim):
    """Equal, opposite, central pair forces: the kicks change the total momentum only by
    rounding (dH/dq_k = -G m_k A_k is rounded per body), the drifts not at all, and
    leapfrog keeps L = sum q x p exactly but for rounding. 1000 steps; the change stays
    below 100 EPS times the natural scale (sum |p_i|, sum |q_i||p_i|), a tenth of what
    1000 roundings in a row would give (measured: 4-8 EPS)."""
    sys_ = NBodyGravity(masses=[3.0, 1.0, 0.5, 2.0, 0.7, 1.5, 1.1], dim=dim, softening=0.05)
    q0, p0 = sys_.plummer_state(seed=3)
    p0 = p0 + 0.3  # a moving centre of mass: P != 0
    q, p = q0.reshape(1, -1).copy(), p0.reshape(1, -1).copy()
    res = integrators.Leapfrog(2e-3).advance(sys_, q, p, 1000, every=10)
    assert res.ok
    P, L = _momenta(sys_, res)
    start = sys_.extra_observables(q0.reshape(1, -1), p0.reshape(1, -1))
    P0, L0 = start["momentum"][0], start["angular_momentum"][0]
    p_scale = float(np.sum(np.linalg.norm(p0, axis=1)))
    l_scale = float(np.sum(np.linalg.norm(q0, axis=1) * np.linalg.norm(p0, axis=1)))
    moved = float(np.max(np.abs(res.q[-1, 0] - q0.reshape(-1))))
    assert moved > 0.1, "setup: the bodies did not move"
    assert np.max(np.abs(P - P0)) < 100 * EPS * p_scale
    assert np.max(np.abs(L - L0)) < 100 * EPS * l_scale


@pytest.mark.parametrize("name", ["yoshida4", "pefrl"])
def test_higher_order_splittings_conserve_momenta(name):
    sys_ = NBodyGravity(masses=[1000.0, 0.05, 0.1, 0.2, 0.15, 0.1, 0.08, 0.12], dim=3)
    q0, p0 = sys_.planetary_state()
    q, p = q0.reshape(1, -1).copy(), p0.reshape(1, -1).copy()
    res = integrators.get(name, dt=2e-3).advance(sys_, q, p, 500, every=50)
    assert res.ok
    P, L = _momenta(sys_, res)
    p_scale = float(np.sum(np.linalg.norm(p0, axis=1)))
    l_scale = float(np.sum(np.linalg.norm(q0, axis=1) * np.linalg.norm(p0, axis=1)))
    assert np.max(np.abs(P)) < 100 * EPS * p_scale  # P(0) = 0 by construction
    L0 = np.sum(np.cross(q0, p0), axis=0)
    assert np.max(np.abs(L - L0)) < 100 * EPS * l_scale


@pytest.mark.parametrize("name", ["leapfrog", "yoshida4"])
def test_energy_error_bounded_over_a_long_run(name):
    """The default quadruple, 20000 steps of 1/90 of a binary's period (~220 binary periods,
    ~30 orbits of the binaries about each other): the energy error oscillates, it does not grow (max over
    the run <= 2 x the max over its first fifth) and the fitted trend over the run is small
    against the amplitude."""
    sys_ = NBodyGravity()
    q0, p0 = sys_.default_state()
    q, p = q0.reshape(1, -1).copy(), p0.reshape(1, -1).copy()
    dt = 2 * math.pi * math.sqrt(1.3 ** 3 / (sys_.G * 6.0)) / 90
    res = integrators.get(name, dt=dt).advance(sys_, q, p, 20000, every=10)
    assert res.ok
    E0 = float(sys_.energy(q0, p0))
    dE = sys_.energy(res.q[:, 0], res.p[:, 0]) - E0
    worst, early = np.max(np.abs(dE)), np.max(np.abs(dE[: dE.size // 5]))
    t = res.steps * dt
    trend = abs(np.polyfit(t, dE, 1)[0] * t[-1])
    assert 0 < worst < 1e-3 * abs(E0)
    assert worst <= 2.0 * early
    assert trend <= 0.1 * worst


# -- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [2, 3])
def test_coincident_bodies_report_non_finite(dim):
    """Two bodies at the same place without softening: 0/0 in the force, the member stops
    at step 1 with code 1 (never silent numbers). With softening the same state is fine."""
    masses = [1.0, 2.0, 0.5, 1.0, 1.0]
    q = np.random.default_rng(0).uniform(-1, 1, (5, dim))
    q[3] = q[1]
    for parallel_size in (1, 2):  # B = 1: parallel functions; B = 2: serial
        sys_ = NBodyGravity(masses=masses, dim=dim)
        Q = np.repeat(q.reshape(1, -1), parallel_size, axis=0)
        P = np.zeros_like(Q)
        res = integrators.Leapfrog(0.01).advance(sys_, Q, P, 10)
        assert np.all(res.status[:, 0] == 1) and np.all(res.status[:, 1] == 1), res.status
    soft = NBodyGravity(masses=masses, dim=dim, softening=0.1)
    Q, P = q.reshape(1, -1).copy(), np.zeros((1, q.size))
    assert integrators.Leapfrog(0.01).advance(soft, Q, P, 10).ok
    assert np.all(np.isfinite(call(soft.dHdq, soft, q)))
    hard = NBodyGravity(masses=masses, dim=dim)
    assert np.all(np.isnan(call(hard.dHdq, hard, q).reshape(5, dim)[[1, 3]]))
    assert hard.energy(q, np.zeros_like(q)) == -np.inf


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"masses": [[1.0, 2.0], [3.0, 4.0]]}, InputError,
     r"masses must be a flat list of at least 2 masses, got shape \(2, 2\)"),
    ({"masses": [1.0]}, InputError,
     r"masses must be a flat list of at least 2 masses, got 1 mass; pass one mass per body"),
    ({"masses": []}, InputError, r"at least 2 masses, got 0 masses"),
    ({"masses": [1.0, -2.0, 3.0]}, InputError, r"masses must be > 0, got -2.0 \(body 1\)"),
    ({"masses": [1.0, 0.0]}, InputError, r"masses must be > 0, got 0.0 \(body 1\)"),
    ({"masses": [1.0, float("nan")]}, InputError, r"masses must be finite, got nan \(body 1\)"),
    ({"masses": [1.0, float("inf")]}, InputError, r"masses must be finite, got inf"),
    ({"masses": "heavy"}, InputTypeError, r"NBodyGravity parameter masses must be a number, got 'heavy', for each "
                                          r"body: a list of masses; pass one mass per body"),
    ({"masses": {"sun": 1.0}}, InputTypeError, r"masses must be a number, got \{'sun': 1.0\}; pass one mass"),
    ({"masses": [1.0, "heavy"]}, InputTypeError, r"masses must be a number, got 'heavy' for body 1; pass one"),
    ({"masses": [1.0, None]}, InputTypeError, r"masses must be a number, got None for body 1"),
    ({"masses": [2.0, True]}, InputTypeError, r"masses must be a number, got True for body 1"),
    ({"masses": 3.0}, InputError, r"masses must be a flat list of at least 2 masses, got shape \(\)"),
    ({"bogus": 1.0}, InputTypeError, r"NBodyGravity got unknown parameter\(s\) bogus; it takes masses="),
    ({"dim": 4}, InputError, r"NBodyGravity parameter dim must be 2 or 3 \(bodies in the plane or in space\), got 4"),
    ({"dim": 1}, InputError, r"dim must be 2 or 3"),
    ({"dim": 2.5}, InputError, r"dim must be 2 or 3"),
    ({"dim": "3"}, InputTypeError, r"dim must be a number, got '3'"),
    ({"dim": True}, InputTypeError, r"dim must be a number, got True"),
    ({"G": 0.0}, InputError, r"NBodyGravity parameter G must be > 0, got 0.0"),
    ({"G": float("nan")}, InputError, r"NBodyGravity parameter G must be finite, got nan"),
    ({"softening": -0.1}, InputError, r"NBodyGravity parameter softening must be >= 0 .*got -0.1"),
    ({"softening": "0.1"}, InputTypeError, r"NBodyGravity parameter softening must be a number, got '0.1'"),
    ({"n_bodies": 1}, InputTypeError, r"n_bodies must be a whole number >= 2, got 1"),
    ({"n_bodies": 4.0}, InputTypeError, r"n_bodies must be a whole number >= 2, got 4.0"),
    ({"n_bodies": 4, "masses": [1.0, 1.0]}, InputError, r"takes masses or n_bodies, not both"),
])
def test_bad_parameters_rejected(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        NBodyGravity(**kwargs)


def test_wrong_state_shape_rejected():
    sys_ = NBodyGravity(n_bodies=5, dim=2)
    message = r"nbody states must have shape \(\.\.\., 5, 2\) or \(\.\.\., 10\); got \(5, 3\)"
    with pytest.raises(InputError, match=message):
        sys_.energy(np.zeros((5, 3)), np.zeros((5, 3)))


# -- description, states, observables -------------------------------------------------

def test_description_round_trip(registered):
    for sys_ in (NBodyGravity(), NBodyGravity(masses=[2.0, 1.0, 0.25], dim=2, G=0.5, softening=0.1),
                 NBodyGravity(n_bodies=40, softening=0.01)):
        desc = json.loads(json.dumps(sys_.describe()))
        assert desc["name"] == "nbody"
        assert desc["parameters"]["masses"] == sys_.masses().tolist()
        rebuilt = systems.from_description(desc)
        assert rebuilt == sys_ and np.array_equal(rebuilt.params, sys_.params)
        assert rebuilt.shape == sys_.shape
        n, dim = sys_.shape
        assert list(sys_.params) == [dim, sys_.G, sys_.softening, *sys_.masses()]
    assert NBodyGravity() != NBodyGravity(softening=0.01)
    assert NBodyGravity(n_bodies=4) == NBodyGravity(masses=[0.25] * 4)
    assert systems.get("nbody") == NBodyGravity()
    expected = "NBodyGravity(masses=[2.0, 1.0], dim=2, G=1.0, softening=0.0)"
    assert repr(NBodyGravity(masses=[2.0, 1.0], dim=2)) == expected
    assert "(40 bodies)" in repr(NBodyGravity(n_bodies=40))


@pytest.mark.parametrize("dim", [2, 3])
def test_default_state_is_two_binaries(dim):
    """Two circular binaries (separation 1.3) whose centres orbit each other 6 apart, at rest
    as a whole; O(1) numbers for the generic suites (the 0.05 noise they add is small)."""
    sys_ = NBodyGravity(dim=dim)
    assert sys_.shape == (4, dim) and sys_.masses().tolist() == list(DEFAULT_MASSES)
    q, p = sys_.default_state()
    q2, p2 = sys_.default_state()
    assert np.array_equal(q, q2) and np.array_equal(p, p2)  # deterministic
    m = sys_.masses()
    np.testing.assert_allclose(np.sum(p, axis=0), 0.0, atol=1e-14)
    np.testing.assert_allclose(m @ q, 0.0, atol=1e-14)
    v = p / m[:, None]
    for i, j in ((0, 1), (2, 3)):
        d, u = q[j] - q[i], v[j] - v[i]
        assert np.linalg.norm(d) == pytest.approx(1.3, rel=1e-14)
        assert abs(d @ u) < 1e-14 and np.linalg.norm(u) == pytest.approx(math.sqrt((m[i] + m[j]) / 1.3), rel=1e-14)
    ca, cb = (m[:2] @ q[:2]) / m[:2].sum(), (m[2:] @ q[2:]) / m[2:].sum()
    assert np.linalg.norm(cb - ca) == pytest.approx(6.0, rel=1e-14)
    if dim == 3:
        L = np.cross(q[1] - q[0], v[1] - v[0])
        assert math.degrees(math.acos(L[2] / np.linalg.norm(L))) == pytest.approx(2.0, rel=1e-9)
    assert float(sys_.energy(q, p)) < 0
    assert np.min(np.linalg.norm(p, axis=1)) > 1.5 and np.max(np.abs(q)) < 3.5
    with pytest.raises(InputError, match="binaries_state needs 4 bodies"):
        NBodyGravity(n_bodies=5).binaries_state()


def test_planetary_state():
    sys_ = NBodyGravity(masses=[1000.0, 0.05, 0.1, 0.2, 0.15, 0.1, 0.08, 0.12])
    q, p = sys_.planetary_state()
    m = sys_.masses()
    np.testing.assert_allclose(np.sum(p, axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(m @ q / m.sum(), 0.0, atol=1e-13)
    r = np.linalg.norm(q[1:] - q[0], axis=1)
    np.testing.assert_allclose(r, 1.45 ** np.arange(7), rtol=1e-14)
    # each planet's relative orbit is nearly circular: specific energy ~ -G M / (2 r)
    v = p / m[:, None]
    eps_k = 0.5 * np.sum((v[1:] - v[0]) ** 2, axis=1) - m[0] / r
    np.testing.assert_allclose(eps_k, -m[0] / (2 * r), rtol=0.02)
    z = np.abs(q[1:, 2] - q[0, 2])
    assert np.all(z < math.sin(math.radians(3.5)) * r) and np.all(z > 0)  # inclined by 1-3 degrees
    assert sys_.default_state()[0].shape == (8, 3)  # 8 bodies: a Plummer sphere


@pytest.mark.parametrize("dim", [2, 3])
def test_plummer_state_is_virialised(dim):
    sys_ = NBodyGravity(n_bodies=200, dim=dim, G=2.0, softening=0.05)
    q, p = sys_.plummer_state(seed=7)
    assert q.shape == p.shape == (200, dim)
    T, V = sys_.split_energy(q, p)
    assert 2 * T == pytest.approx(-V, rel=1e-12)
    m = sys_.masses()
    np.testing.assert_allclose(np.sum(p, axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(m @ q, 0.0, atol=1e-12)
    assert np.array_equal(sys_.plummer_state(seed=7)[0], q)
    assert not np.array_equal(sys_.plummer_state(seed=8)[0], q)
    # equal masses: the default state is the seed-0 sphere
    assert np.array_equal(sys_.default_state()[0], sys_.plummer_state(seed=0)[0])
    r = np.linalg.norm(q, axis=1)
    assert 0.3 < np.median(r) < 2.0 and r.max() < 10


@pytest.mark.parametrize("dim", [2, 3])
def test_extra_observables(dim):
    masses, q, p = random_cluster(6, dim, seed=9)
    sys_ = NBodyGravity(masses=masses, dim=dim)
    Q = np.stack([q.reshape(-1), 2 * q.reshape(-1)])
    P = np.stack([p.reshape(-1), -p.reshape(-1)])
    obs = sys_.extra_observables(Q, P)
    np.testing.assert_allclose(obs["momentum"], [p.sum(axis=0), -p.sum(axis=0)])
    np.testing.assert_allclose(obs["centre_of_mass"], [masses @ q / masses.sum(), 2 * masses @ q / masses.sum()])
    if dim == 3:
        L = sum(np.cross(q[k], p[k]) for k in range(6))
        assert obs["angular_momentum"].shape == (2, 3)
    else:
        L = np.array([sum(q[k, 0] * p[k, 1] - q[k, 1] * p[k, 0] for k in range(6))])
        assert obs["angular_momentum"].shape == (2, 1)
    np.testing.assert_allclose(obs["angular_momentum"], [L, -2 * L])
    assert obs["momentum"].shape == obs["centre_of_mass"].shape == (2, dim)


def test_any_workspace_gives_the_same_forces():
    """The force functions rewrite all the scratch they read, and allocate their own when the
    workspace is too small (e.g. the base class's empty one): same bits either way."""
    sys_ = NBodyGravity(n_bodies=300, dim=2, softening=0.01)
    q, _ = sys_.plummer_state(seed=4)
    q = q.reshape(-1)
    ref = call(sys_.dHdq, sys_, q)
    for parallel in (False, True):
        fn = sys_.kernel_functions(parallel)[0]
        for iw, fw in ((np.zeros(0, dtype=np.int64), np.zeros(0)),
                       (np.full(50, -7, dtype=np.int64), np.full(10000, np.nan))):
            out = np.empty(sys_.ndof)
            fn(q, np.zeros_like(q), sys_.params, iw, fw, out)
            assert np.array_equal(out, ref)
