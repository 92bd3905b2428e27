"""Fused (one forward + one backward pass) and batched (blocks of members) gradients of a
learned Hamiltonian, and the kernels that use them: values against central differences and
torch autograd, and bit-identity of every path (member dHdq/dHdp, fused grad, blocks of any
width and position, ensemble kernels against one-member runs)."""

from __future__ import annotations

import numpy as np
import pytest

import integrators
from integrators import batched
from integrators.implicit import _midpoint_kernel_serial
from integrators.runge_kutta import _rk4_kernel_serial
from integrators.tao import _tao_kernel_serial
from systems import LearnedSystem
from systems.network_batch import block_scratch, learned_grad_block
from systems.network_kernels import learned_dHdp, learned_dHdq, learned_grad, learned_H

NO_INT, NO_FLOAT = np.zeros(0, dtype=np.int64), np.zeros(0)


def make(n=1, hidden=(20, 17), separable=False, activation="tanh", seed=0):
    rng = np.random.default_rng(seed)

    def net(n_in):
        s = [n_in, *hidden, 1]
        return [(rng.normal(size=(s[k + 1], s[k])) / np.sqrt(s[k]), 0.1 * rng.normal(size=s[k + 1]))
                for k in range(len(s) - 1)]

    nets = {"T": net(n), "V": net(n)} if separable else {"H": net(2 * n)}
    return LearnedSystem(f"batch-test-{seed}", (n, 1), nets, activation=activation, separable=separable)


CASES = [dict(n=1), dict(n=3, hidden=(9, 14, 6)), dict(n=2, separable=True, activation="softplus"),
         dict(n=2, hidden=()), dict(n=1, hidden=(7,), activation="sin")]


def grad(system, q, p):
    gq, gp = np.empty(q.size), np.empty(q.size)
    learned_grad(q, p, system.params, NO_INT, NO_FLOAT, gq, gp)
    return gq, gp


@pytest.mark.parametrize("case", CASES)
def test_fused_gradient_is_the_member_functions_and_finite_differences(case):
    s = make(**case)
    rng = np.random.default_rng(1)
    n = s.params[3].astype(int)
    for _ in range(3):
        q, p = rng.normal(size=n), rng.normal(size=n)
        gq, gp = grad(s, q, p)
        a, b = np.empty(n), np.empty(n)
        learned_dHdq(q, p, s.params, NO_INT, NO_FLOAT, a)
        learned_dHdp(q, p, s.params, NO_INT, NO_FLOAT, b)
        assert np.array_equal(gq, a) and np.array_equal(gp, b)
        h = 1e-5
        x = np.concatenate([q, p])
        fd = np.empty(2 * n)
        for i in range(2 * n):
            e = np.zeros(2 * n)
            e[i] = h
            up, dn = x + e, x - e
            fd[i] = (learned_H(up[:n], up[n:], s.params, NO_INT, NO_FLOAT)
                     - learned_H(dn[:n], dn[n:], s.params, NO_INT, NO_FLOAT)) / (2 * h)
        np.testing.assert_allclose(np.concatenate([gq, gp]), fd, rtol=1e-6, atol=1e-8)


def test_fused_gradient_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    s = make(n=2, hidden=(30, 25))
    layers = s.networks["H"]
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 4))
    x = torch.tensor(X, requires_grad=True)
    a = x
    for k, (W, b) in enumerate(layers):
        a = a @ torch.tensor(W).T + torch.tensor(b)
        if k < len(layers) - 1:
            a = torch.tanh(a)
    (ref,) = torch.autograd.grad(a.sum(), x)
    ref = ref.numpy()
    for m in range(50):
        gq, gp = grad(s, X[m, :2].copy(), X[m, 2:].copy())
        np.testing.assert_allclose(np.concatenate([gq, gp]), ref[m], rtol=1e-12, atol=1e-13 * np.abs(ref).max())


@pytest.mark.parametrize("case", CASES)
def test_block_gradient_is_bit_identical_to_members_for_any_width_and_position(case):
    s = make(**case)
    n = int(s.params[3])
    rng = np.random.default_rng(3)
    Q, P = rng.normal(size=(37, n)), rng.normal(size=(37, n))
    ref = [grad(s, Q[m].copy(), P[m].copy()) for m in range(37)]
    for W, start in ((1, 5), (3, 0), (5, 2), (8, 29), (16, 10), (37, 0)):
        rows = [(start + j) % 37 for j in range(W)]
        GQ, GP = np.empty((W, n)), np.empty((W, n))
        learned_grad_block(np.ascontiguousarray(Q[rows]), np.ascontiguousarray(P[rows]), s.params, GQ, GP,
                           np.empty(block_scratch(s.params, W)))
        for j, m in enumerate(rows):
            assert np.array_equal(GQ[j], ref[m][0]) and np.array_equal(GP[j], ref[m][1]), (W, start, m)


def one_by_one(integ, s, q0, p0, nsteps, every):
    qs, ps, outs, stats = [], [], [], []
    for b in range(q0.shape[0]):
        q, p = q0[b:b + 1].copy(), p0[b:b + 1].copy()
        res = integ.advance(s, q, p, nsteps, every=every)
        qs.append(q[0]), ps.append(p[0]), outs.append((res.q[:, 0], res.p[:, 0])), stats.append(res.status[0])
    return np.array(qs), np.array(ps), outs, np.array(stats)


@pytest.mark.parametrize("method,width", [("implicit", 32), ("implicit", 5), ("rk4", 32), ("rk4", 5)])
def test_blocked_kernels_members_equal_their_single_runs(method, width, monkeypatch):
    monkeypatch.setattr(batched, "WIDTH", width)
    monkeypatch.setattr(batched, "MIN_MEMBERS", 2)
    s = make(n=2, hidden=(16, 12))
    rng = np.random.default_rng(4)
    B = 41
    q0, p0 = rng.normal(size=(B, 2)), rng.normal(size=(B, 2))
    q0[7, 0] = np.inf  # this member fails (non-finite) at its first step while the others go on
    integ = integrators.ImplicitMidpoint(dt=0.05, max_iter=30) if method == "implicit" else integrators.RK4(dt=0.05)
    q, p = q0.copy(), p0.copy()
    res = integ.advance(s, q, p, 23, every=4)
    rq, rp, outs, stats = one_by_one(integ, s, q0, p0, 23, 4)
    assert np.array_equal(res.status, stats)
    assert stats[7, 0] != 0 and np.all(stats[np.arange(B) != 7, 0] == 0)
    assert np.array_equal(q, rq) and np.array_equal(p, rp)
    for b in range(B):
        if stats[b, 0] == 0:
            assert np.array_equal(res.q[:, b], outs[b][0]) and np.array_equal(res.p[:, b], outs[b][1])


@pytest.mark.parametrize("name", ["implicit", "tao", "rk4"])
def test_fused_kernels_equal_the_separate_gradient_kernels(name):
    s = make(n=2, hidden=(10, 9), seed=5)
    rng = np.random.default_rng(6)
    q0, p0 = rng.normal(size=(3, 2)), 0.5 * rng.normal(size=(3, 2))
    integ = {"implicit": integrators.ImplicitMidpoint(dt=0.02), "tao": integrators.Tao(dt=0.01, order=4),
             "rk4": integrators.RK4(dt=0.02)}[name]
    for b in range(3):
        q, p = q0[b:b + 1].copy(), p0[b:b + 1].copy()
        res = integ.advance(s, q, p, 17, every=17)  # fused (B = 1)
        q2, p2 = q0[b:b + 1].copy(), p0[b:b + 1].copy()
        out_q, out_p = np.empty((1, 1, 2)), np.empty((1, 1, 2))
        status = np.zeros((1, 2), dtype=np.int64)
        W0, F0 = np.zeros((1, 0), dtype=np.int64), np.zeros((1, 0))
        if name == "implicit":
            _midpoint_kernel_serial(learned_dHdq, learned_dHdp, s.params, W0, F0, q2, p2, 0.02, 17, 0, 17, 100,
                                    out_q, out_p, status)
        elif name == "tao":
            aux = integ.init_aux(q2, p2)
            _tao_kernel_serial(learned_dHdq, learned_dHdp, s.params, W0, F0, integ._weights, integ.omega, q2, p2,
                               aux, 0.01, 17, 0, 17, out_q, out_p, status)
        else:
            _rk4_kernel_serial(learned_dHdq, learned_dHdp, s.params, W0, F0, q2, p2, 0.02, 17, 0, 17,
                               out_q, out_p, status)
        assert res.ok and status[0, 0] == 0
        assert np.array_equal(q, q2) and np.array_equal(p, p2)
