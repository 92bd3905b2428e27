"""Lane kernels (``integrators.lanes``) and the fast ``sin``/``cos`` of ``systems.vector_math``.

* ``sin_fast``/``cos_fast``: accuracy on >= 10^7 points against libm's long-double functions
  and on the hard reductions against ``mpmath`` (same measures as ``test_vector_math.py``),
  special values, equality with ``vector_math.sin`` where neither reduces, one element equal
  to a vector lane, packed AVX2 code.
* The lane kernel against the member kernel, bit for bit: a member of a B = 1000 or 1037
  ensemble (several positions, the padded tail included; 1 and 2 threads) equals its single
  run (B = 1, the member kernel) in its final state and every frame (``every``, ``step0``);
  every splitting integrator of the registry on the pendulum and the harmonic oscillator; a
  member that blows up stops with the member kernel's status while the others go on;
  continuation; members beyond the fast path's range; the dispatch rules.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import integrators
import systems
import test_vector_math as tvm
from integrators import lanes
from systems import oscillators
from systems import vector_math as vm

SPLITTING = [name for name in integrators.available()
             if issubclass(type(integrators.get(name, dt=0.1)), integrators.splitting.Splitting)]
THREADS = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})


@pytest.fixture
def threads():
    """Restore numba's thread count after a test that changes it."""
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


# ------------------------------------------------------------------------------------------
# sin_fast / cos_fast
# ------------------------------------------------------------------------------------------


@numba.njit(error_model="numpy")
def _loop_sin_fast(x, out):
    """The documented lane pattern: the branch-free core for all, then the rare exact ones."""
    beyond = 0
    for i in range(x.size):
        out[i] = vm.sin_fast_core(x[i])
        beyond |= vm.beyond_fast(x[i])
    if beyond:
        for i in range(x.size):
            if vm.beyond_fast(x[i]):
                out[i] = vm.sin_fast(x[i])


@numba.njit(error_model="numpy")
def _loop_cos_fast(x, out):
    beyond = 0
    for i in range(x.size):
        out[i] = vm.cos_fast_core(x[i])
        beyond |= vm.beyond_fast(x[i])
    if beyond:
        for i in range(x.size):
            if vm.beyond_fast(x[i]):
                out[i] = vm.cos_fast(x[i])


@numba.njit(error_model="numpy")
def _loop_core(x, out):  # the core alone, for the assembly check
    for i in range(x.size):
        out[i] = vm.sin_fast_core(x[i])


LOOPS = {"sin": _loop_sin_fast, "cos": _loop_cos_fast}
SCALAR = {"sin": vm.sin_fast, "cos": vm.cos_fast}


def fast(name, x):
    out = np.empty_like(x)
    LOOPS[name](x, out)
    return out


def _closest_to_multiples_of_pio2(emax: int) -> np.ndarray:
    """The doubles closest to multiples of pi/2 in the binades up to ``2^emax`` (from the
    continued fraction of ``2^(e-52) 2/pi``, as ``test_vector_math`` finds them)."""
    h = tvm.HARD_PIO2
    return h[np.abs(h) < 2.0**(emax + 1)]


def _points_fast() -> np.ndarray:
    """10^7 points, weighted to the fast path's range (|x| < 2^20) and its edges."""
    rng = np.random.default_rng(20260501)
    pio2 = tvm.LD(np.pi) / 2 + tvm.LD(6.123233995736766e-17)
    bound = vm.FAST_BOUND
    hard = _closest_to_multiples_of_pio2(21)
    return tvm._fill(
        [
            rng.uniform(-2.0, 2.0, 2_000_000),  # the pendulum's range
            rng.uniform(-2 * np.pi, 2 * np.pi, 1_000_000),
            rng.uniform(-bound, bound, 2_000_000),
            tvm._log_uniform(rng, 2_000_000, -30, 20),
            tvm._log_uniform(rng, 500_000, 20, 1023),  # beyond the bound: the exact path
            tvm._near_multiples(pio2, int(bound / 1.5), 100_000, rng, 3),  # 0.7e6 points
            tvm._near_multiples(pio2 / 2, int(bound / 0.7), 100_000, rng, 3),  # quadrant edges
            tvm._around(np.concatenate([hard, -hard]), 2),
            tvm._around([bound, -bound, np.pi / 4, -np.pi / 4, 2.0**-27, tvm.TINY, 0.0], 500),
        ],
        tvm.N_POINTS, rng, -100.0, 100.0,
    )


_points: dict = {}
_worst: dict = {}


def points() -> np.ndarray:
    if "x" not in _points:
        _points["x"] = _points_fast()
    return _points["x"]


@pytest.mark.skipif(not tvm.EXTENDED, reason="needs an extended-precision long double reference")
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_fast_bulk_accuracy(name):
    """>= 10^7 points: < 0.9 ulp against long-double libm, <= 2 ulp from libm (float64)
    wherever libm itself is within 1 ulp."""
    x = points()
    assert x.size >= tvm.N_POINTS - 10
    max_err, argmax = 0.0, None
    worst_x, worst_e = [], []
    for lo in range(0, x.size, tvm.CHUNK):
        xc = x[lo:lo + tvm.CHUNK]
        y = fast(name, xc)
        with np.errstate(all="ignore"):
            libm = tvm.NUMPY[name](xc)
            ref = tvm.NUMPY[name](xc.astype(tvm.LD))
        err = tvm.ulp_error(y, ref)
        j = int(np.argmax(err))
        if err[j] > max_err:
            max_err, argmax = float(err[j]), xc[j]
        top = np.argpartition(err, -500)[-500:]
        worst_x.append(xc[top])
        worst_e.append(err[top])
        dist = tvm.ulp_distance(y, libm)
        far = np.flatnonzero(dist > 1)
        dist[far[tvm.ulp_error(libm[far], ref[far]) > 1.0]] = 0
        assert dist.max() <= 2, (name, xc[int(np.argmax(dist))])
    wx, we = np.concatenate(worst_x), np.concatenate(worst_e)
    _worst[name] = wx[np.argsort(we)[::-1][:600]]
    print(f"\n{name}_fast: {x.size} points, max error {max_err:.4f} ulp at {argmax!r}")
    assert max_err <= tvm.MAX_ULP_ERROR, (name, argmax, max_err)


@pytest.mark.skipif(tvm.mpmath is None, reason="mpmath is not installed")
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_fast_against_mpmath(name):
    """The hard reductions of the fast path (the doubles closest to multiples of pi/2 up to
    2^21, both signs, and points next to odd multiples of pi/4 near the bound, where N may
    round either way) and the bulk run's worst points, against an exact reference."""
    mp = tvm.mpmath
    rng = np.random.default_rng(3)
    hard = _closest_to_multiples_of_pio2(21)
    k = rng.integers(int(vm.FAST_BOUND / 1.6), int(vm.FAST_BOUND / 0.8), 200)
    edges = np.array([float((2 * mp.mpf(int(j)) + 1) * mp.pi / 4) for j in k])
    x = np.concatenate([hard, -hard, tvm._around(edges, 1), _worst.get(name, np.array([]))])
    y = fast(name, x)
    f = getattr(mp.mp, name)
    worst, worst_x = 0.0, None
    with mp.mp.workprec(300):
        for xi, yi in zip(x.tolist(), y.tolist()):
            exact = f(mp.mpf(xi))
            _, e = mp.frexp(exact)
            err = float(abs(mp.mpf(yi) - exact) / mp.mpf(2) ** (max(e - 1, -1022) - 52))
            if err > worst:
                worst, worst_x = err, xi
    print(f"\n{name}_fast: max error against mpmath {worst:.4f} ulp at {worst_x!r} ({x.size} points)")
    assert worst <= tvm.MAX_ULP_ERROR, (name, worst_x, worst)


@pytest.mark.skipif(tvm.mpmath is None, reason="mpmath is not installed")
def test_fast_constants():
    with tvm.mpmath.mp.workprec(400):
        pio2 = tvm.mpmath.pi / 2
        assert vm._PIO2_LO2 == float(pio2 - vm._PIO2_HI - vm._PIO2_LO)
        assert vm._TWO_OVER_PI == float(2 / tvm.mpmath.pi)


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_fast_special_values(name):
    cases = tvm.SPECIAL[name]
    x = np.array([c[0] for c in cases])
    looped = fast(name, x)
    for (xi, expected), yl in zip(cases, looped):
        if xi == tvm.WORST_SIN:  # beyond the bound: the exact function, checked by test_vector_math
            expected = float(getattr(vm, name)(xi))
        assert tvm._same(SCALAR[name](xi), expected), (name, xi)
        assert tvm._same(float(yl), expected), (name, xi, yl)


def test_fast_equals_sin_where_neither_reduces_and_beyond_the_bound():
    """|x| < pi/4: the same kernel call as ``vector_math.sin`` (bit for bit); |x| >= 2^20:
    ``vector_math.sin`` itself."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-np.pi / 4, np.pi / 4, 300_000), tvm._log_uniform(rng, 100_000, -1074, -2),
                        tvm._log_uniform(rng, 50_000, 20, 1023), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    x = x[(np.abs(x) < vm._PIO4) | ~(np.abs(x) < vm.FAST_BOUND)]
    for name in ("sin", "cos"):
        assert np.array_equal(fast(name, x).view(np.int64), tvm.ours(name, x).view(np.int64)), name


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_fast_lane_equals_single_element(name):
    """A vector lane, the scalar remainder, the scalar (branching) function and the core
    give the same bits; the exact redo of out-of-range elements does not touch the others."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-10, 10, 400), rng.uniform(-vm.FAST_BOUND, vm.FAST_BOUND, 300),
                        tvm._log_uniform(rng, 200, -40, 1023), rng.choice(_closest_to_multiples_of_pio2(21), 89),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, tvm.TINY, vm.FAST_BOUND, -vm.FAST_BOUND,
                         np.nextafter(vm.FAST_BOUND, 0.0), tvm.WORST_SIN]])
    assert x.size % 4 != 0
    full = fast(name, x).view(np.int64)
    single = np.array([SCALAR[name](v) for v in x.tolist()]).view(np.int64)
    assert np.array_equal(full, single)
    inside = np.abs(x) < vm.FAST_BOUND
    core = vm.sin_fast_core if name == "sin" else vm.cos_fast_core
    assert np.array_equal(np.array([core(v) for v in x[inside].tolist()]).view(np.int64), full[inside])
    for shift in (1, 2, 3):
        assert np.array_equal(fast(name, x[shift:]).view(np.int64), full[shift:])
    assert np.array_equal(fast(name, x[inside]).view(np.int64), full[inside])


@pytest.mark.skipif(not tvm._has_avx2_fma(), reason="needs a host with AVX2 and FMA")
def test_fast_core_and_pendulum_lanes_are_vectorised():
    x = np.linspace(-3, 3, 11)
    for loop in (_loop_core, _loop_sin_fast, numba.njit(error_model="numpy")(oscillators._pendulum_dHdq_lanes.py_func)):
        args = (x.reshape(1, -1), x.reshape(1, -1), systems.get("pendulum").params, np.empty((1, 11))) \
            if loop.py_func.__name__ == "_pendulum_dHdq_lanes" else (x, np.empty_like(x))
        loop(*args)
        asm = loop.inspect_asm(loop.signatures[0])
        packed, fmas = len(tvm._PACKED.findall(asm)), len(tvm._PACKED_FMA.findall(asm))
        assert packed >= 30 and fmas >= 8, (loop.py_func.__name__, packed, fmas)
        assert "vroundpd" in asm
        # no libm call in the vectorised path (the exact fallback of sin_fast has none either)
        assert not tvm._LIBM.search(asm), loop.py_func.__name__


# ------------------------------------------------------------------------------------------
# the pendulum's two views
# ------------------------------------------------------------------------------------------


def _special_angles(rng, size):
    return np.concatenate([rng.uniform(-3, 3, size), rng.uniform(-3e6, 3e6, 40),
                           [0.0, -0.0, np.inf, -np.inf, np.nan, tvm.TINY, 1e300, -1e300, vm.FAST_BOUND]])


@pytest.mark.parametrize("sname", ["pendulum", "harmonic-oscillator"])
def test_lane_functions_equal_member_functions(sname):
    sys_ = systems.get(sname, **({"mass": 1.3, "length": 0.7, "g": 9.1} if sname == "pendulum"
                                 else {"mass": 1.7, "k": 2.3}))
    lane_fns = lanes.lane_functions((sys_.dHdq, sys_.dHdp), np.zeros((1, 0), np.int64), np.zeros((1, 0)), 10**6)
    assert lane_fns is not None
    rng = np.random.default_rng(2)
    q = _special_angles(rng, 200)
    p = rng.permutation(q)
    Q, P = q.reshape(1, -1).copy(), p.reshape(1, -1).copy()
    gq, gp = np.empty_like(Q), np.empty_like(P)
    lane_fns[0](Q, P, sys_.params, gq)
    lane_fns[1](Q, P, sys_.params, gp)
    iw, fw = np.zeros(0, np.int64), np.zeros(0)
    one = np.empty(1)
    for j in range(q.size):
        sys_.dHdq(q[j:j + 1], p[j:j + 1], sys_.params, iw, fw, one)
        assert one.view(np.int64)[0] == gq[0, j:j + 1].view(np.int64)[0], (sname, q[j])
        sys_.dHdp(q[j:j + 1], p[j:j + 1], sys_.params, iw, fw, one)
        assert one.view(np.int64)[0] == gp[0, j:j + 1].view(np.int64)[0], (sname, p[j])


def test_pendulum_uses_the_fast_sin_in_every_view():
    pend = systems.get("pendulum")
    q = np.array([0.3, 2.0, -1.9, 1e7])
    mgl = pend.mass * pend.g * pend.length
    assert np.array_equal(pend.energy(q.reshape(-1, 1), np.zeros((4, 1))),
                          np.array([mgl * (1.0 - vm.cos_fast(v)) for v in q]))
    force = np.empty(1)
    for v in q:
        pend.dHdq(np.array([v]), np.zeros(1), pend.params, np.zeros(0, np.int64), np.zeros(0), force)
        assert force[0] == pend.params[0] * pend.params[2] * pend.params[1] * vm.sin_fast(v)


# ------------------------------------------------------------------------------------------
# lane kernel == member kernel
# ------------------------------------------------------------------------------------------

def _ensemble(sname, B, seed=0):
    rng = np.random.default_rng(seed)
    if sname == "pendulum":
        q = rng.uniform(-2.0, 2.0, (B, 1))
        p = rng.uniform(-3.0, 3.0, (B, 1))  # some members rotate
    else:
        q = rng.uniform(-1.0, 1.0, (B, 1))
        p = rng.uniform(-1.0, 1.0, (B, 1))
    return q, p


def _single(integ, sys_, q0, p0, b, nsteps, **kw):
    qb, pb = q0[b:b + 1].copy(), p0[b:b + 1].copy()
    res = integ.advance(sys_, qb, pb, nsteps, **kw)
    return qb, pb, res


def _same(a, b):
    return np.array_equal(np.asarray(a).view(np.int64), np.asarray(b).view(np.int64))


def _count_lane_runs(monkeypatch):
    calls = []
    original = lanes.run_splitting

    def counting(*args, **kwargs):
        calls.append(args[5].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(lanes, "run_splitting", counting)
    return calls


@pytest.mark.parametrize("B", [1000, 1037])
@pytest.mark.parametrize("nthreads", THREADS)
def test_member_of_ensemble_equals_single_run(B, nthreads, threads, monkeypatch):
    """Member b of a lane run (every position class: first, inside a block, last of a
    block, the padded tail) equals its own B = 1 run of the member kernel: final state,
    frames (``every = 7`` from ``step0 = 3``) and status."""
    calls = _count_lane_runs(monkeypatch)
    numba.set_num_threads(nthreads)
    pend = systems.get("pendulum")
    integ = integrators.get("leapfrog", dt=0.01)
    q0, p0 = _ensemble("pendulum", B)
    q, p = q0.copy(), p0.copy()
    res = integ.advance(pend, q, p, 150, every=7, step0=3)
    assert calls == [B] and res.ok
    assert np.array_equal(res.steps, np.arange(7, 154, 7))
    w = lanes.block_width(B, nthreads)
    for b in sorted({0, 1, 17, w - 1, w, 500, 999, B - 1}):
        qb, pb, rb = _single(integ, pend, q0, p0, b, 150, every=7, step0=3)
        assert calls == [B]  # B = 1 ran the member kernel
        assert _same(qb[0], q[b]) and _same(pb[0], p[b]), b
        assert _same(rb.q[:, 0], res.q[:, b]) and _same(rb.p[:, 0], res.p[:, b]), b
        assert np.array_equal(rb.status[0], res.status[b])


def test_result_does_not_depend_on_threads_or_block_width(threads):
    """Thread counts change the block width of small ensembles and the blocks' threads."""
    pend = systems.get("pendulum")
    integ = integrators.get("yoshida4", dt=0.02)
    q0, p0 = _ensemble("pendulum", 131, seed=4)
    finals = []
    for nthreads in THREADS:
        numba.set_num_threads(nthreads)
        for B in (131, 10, 5):
            q, p = q0[:B].copy(), p0[:B].copy()
            res = integ.advance(pend, q, p, 60, every=20)
            finals.append((q[:5].copy(), p[:5].copy(), res.q[:, :5].copy()))
    for f in finals[1:]:
        assert all(_same(a, b) for a, b in zip(f, finals[0]))


@pytest.mark.parametrize("name", SPLITTING)
@pytest.mark.parametrize("sname", ["pendulum", "harmonic-oscillator"])
def test_every_splitting_method_equals_member_kernel(name, sname, monkeypatch):
    calls = _count_lane_runs(monkeypatch)
    sys_ = systems.get(sname)
    integ = integrators.get(name, dt=0.05)
    B = 70
    q0, p0 = _ensemble(sname, B, seed=1)
    q, p = q0.copy(), p0.copy()
    res = integ.advance(sys_, q, p, 40, every=3, step0=1)
    assert calls == [B] and res.ok
    for b in (0, 33, 63, 64, 69):
        qb, pb, rb = _single(integ, sys_, q0, p0, b, 40, every=3, step0=1)
        assert _same(qb[0], q[b]) and _same(pb[0], p[b]), (name, b)
        assert _same(rb.q[:, 0], res.q[:, b]) and _same(rb.p[:, 0], res.p[:, b]), (name, b)


@pytest.mark.parametrize("sname", ["pendulum", "harmonic-oscillator"])
def test_a_member_that_blows_up_stops_and_the_others_go_on(sname):
    """One member overflows; it gets the member kernel's status, final state and frames up
    to its failure, the others (in its block and elsewhere) are untouched by it."""
    if sname == "pendulum":  # p near the largest double: q + p overflows after one drift
        sys_, integ, bad, nsteps = systems.get("pendulum"), integrators.get("leapfrog", dt=0.01), 1.79e308, 30
        q0, p0 = _ensemble(sname, 100, seed=2)
        p0[37, 0] = bad
    else:  # omega dt = 3: unstable, every member grows 7x per step; one starts at 1e300
        sys_, integ, nsteps = systems.get("harmonic-oscillator"), integrators.get("leapfrog", dt=3.0), 30
        q0, p0 = _ensemble(sname, 100, seed=2)
        q0[37, 0] = 1e300
    q, p = q0.copy(), p0.copy()
    res = integ.advance(sys_, q, p, nsteps, every=1)
    qb, pb, rb = _single(integ, sys_, q0, p0, 37, nsteps, every=1)
    assert rb.status[0, 0] == integrators.base.NONFINITE
    assert np.array_equal(res.status[37], rb.status[0])
    failed = int(rb.status[0, 1])
    assert 1 <= failed < nsteps
    assert _same(q[37], qb[0]) and _same(p[37], pb[0])
    assert _same(res.q[:failed - 1, 37], rb.q[:failed - 1, 0])
    others = [b for b in range(100) if b != 37]
    assert np.all(res.status[others] == 0)
    for b in (0, 36, 38, 63, 64, 99):
        qo, po, ro = _single(integ, sys_, q0, p0, b, nsteps, every=1)
        assert _same(qo[0], q[b]) and _same(ro.q[:, 0], res.q[:, b]) and _same(ro.p[:, 0], res.p[:, b])


def test_all_members_of_a_block_failing():
    sys_, integ = systems.get("harmonic-oscillator"), integrators.get("leapfrog", dt=3.0)
    q0 = np.full((12, 1), 1e300)
    q0[5:] = 1.0  # these grow too, but do not overflow in 30 steps
    p0 = np.zeros_like(q0)
    q, p = q0.copy(), p0.copy()
    res = integ.advance(sys_, q, p, 30)
    for b in (0, 4, 5, 11):
        qb, pb, rb = _single(integ, sys_, q0, p0, b, 30)
        assert np.array_equal(res.status[b], rb.status[0]) and _same(q[b], qb[0]) and _same(p[b], pb[0])
    assert np.all(res.status[:5, 0] == integrators.base.NONFINITE) and np.all(res.status[5:, 0] == 0)


def test_members_beyond_the_fast_range():
    """Rotating pendulums with |q| around 2^20 take the exact sin inside the lane
    function; their neighbours keep the fast path; all equal their single runs."""
    pend = systems.get("pendulum")
    integ = integrators.get("leapfrog", dt=0.01)
    q0, p0 = _ensemble("pendulum", 40, seed=3)
    q0[[3, 20, 39], 0] = [vm.FAST_BOUND - 0.05, -vm.FAST_BOUND - 3.0, 1e9]
    p0[[3, 20], 0] = [40.0, 1.0]  # member 3 crosses the bound
    q, p = q0.copy(), p0.copy()
    res = integ.advance(pend, q, p, 50, every=5)
    assert res.ok
    for b in (2, 3, 4, 20, 39):
        qb, pb, rb = _single(integ, pend, q0, p0, b, 50, every=5)
        assert _same(qb[0], q[b]) and _same(rb.q[:, 0], res.q[:, b]) and _same(rb.p[:, 0], res.p[:, b])


@pytest.mark.parametrize("name", ["leapfrog", "pefrl"])
def test_continuation_is_bit_identical(name):
    """120 steps in one call == 50 + 1 + 69 with step0 carried (frames every 4)."""
    pend = systems.get("pendulum")
    integ = integrators.get(name, dt=0.02)
    q0, p0 = _ensemble("pendulum", 300, seed=6)
    qa, pa = q0.copy(), p0.copy()
    whole = integ.advance(pend, qa, pa, 120, every=4)
    qb, pb = q0.copy(), p0.copy()
    parts, step = [], 0
    for n in (50, 1, 69):
        parts.append(integ.advance(pend, qb, pb, n, step0=step, every=4))
        step += n
    assert _same(qa, qb) and _same(pa, pb)
    assert np.array_equal(np.concatenate([r.steps for r in parts]), whole.steps)
    assert _same(np.concatenate([r.q for r in parts]), whole.q)
    assert _same(np.concatenate([r.p for r in parts]), whole.p)


def test_dispatch_rules(monkeypatch):
    calls = _count_lane_runs(monkeypatch)
    pend = systems.get("pendulum")
    integ = integrators.get("leapfrog", dt=0.01)
    for B in (1, lanes.MIN_MEMBERS - 1, lanes.MIN_MEMBERS, 64):
        q0, p0 = _ensemble("pendulum", B)
        integ.advance(pend, q0, p0, 3)
    assert calls == [lanes.MIN_MEMBERS, 64]
    fns = (pend.dHdq, pend.dHdp)
    empty_i, empty_f = np.zeros((8, 0), np.int64), np.zeros((8, 0))
    assert lanes.lane_functions(fns, empty_i, empty_f, 8) is not None
    assert lanes.lane_functions(fns, np.zeros((8, 3), np.int64), empty_f, 8) is None  # a workspace
    assert lanes.lane_functions(fns, empty_i, np.zeros((8, 2)), 8) is None
    assert lanes.lane_functions((pend.dHdq, systems.get("harmonic-oscillator").dHdp), empty_i, empty_f, 8) is None
    dp = systems.get("double-pendulum")
    assert lanes.lane_functions((dp.dHdq, dp.dHdp), empty_i, empty_f, 8) is None  # none registered


def test_block_width():
    assert lanes.block_width(5, 2) == 4 and lanes.block_width(9, 2) == 8 and lanes.block_width(9, 1) == 12
    assert lanes.block_width(10_000, 2, ndof=4) <= lanes.WIDTH // 4
    for B in list(range(1, 600)) + [1037, 10_000, 10**5, 10**5 + 3]:
        for t in (1, 2, 3):
            w = lanes.block_width(B, t)
            blocks = -(-B // w)
            assert w % 4 == 0 and 4 <= w <= lanes.WIDTH
            assert blocks * w - B < 4 * blocks  # at most 3 pads per block
            assert -(-blocks // t) * w <= 1.1 * B / t + 4, (B, t, w)  # near-equal shares per thread


def test_lane_kernel_compiled_without_fastmath():
    for fn in (lanes._splitting_lanes, lanes._splitting_block, lanes._lane_nonfinite, oscillators._pendulum_dHdq_lanes):
        assert not fn.targetoptions.get("fastmath", False)
        assert fn.targetoptions.get("error_model") == "numpy"
