"""Slow, obviously correct NumPy references for every integrator in ``integrators``.

Each method is written straight from its textbook formula, one state ``q, p`` (flat
float64 arrays of length ``ndof``) at a time, with the gradients taken from
``system.gradients`` (itself checked against finite differences of the energy in
``test_systems.py``). Nothing here is shared with the numba kernels: the coefficients are
recomputed from their defining formulas or copied from the papers, so a wrong table,
a skipped stage or a mis-ordered sub-flow in a kernel shows up as a disagreement.

Sources: Hairer, Lubich & Wanner, *Geometric Numerical Integration* (2006);
Yoshida, Phys. Lett. A 150, 262 (1990); Omelyan, Mryglod & Folk, Comput. Phys.
Commun. 146, 188 (2002); Tao, Phys. Rev. E 94, 043303 (2016).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import numpy as np

Array = np.ndarray


def _grads(system, q: Array, p: Array) -> Tuple[Array, Array]:
    gq, gp = system.gradients(q, p)
    return np.asarray(gq, dtype=np.float64), np.asarray(gp, dtype=np.float64)


def dV(system, q: Array, p: Array) -> Array:
    """dH/dq (for a separable H this is V'(q))."""
    return _grads(system, q, p)[0]


def dT(system, q: Array, p: Array) -> Array:
    """dH/dp (for a separable H this is T'(p))."""
    return _grads(system, q, p)[1]


# -- explicit splitting methods (separable H) ------------------------------------------

def symplectic_euler(system, q, p, h):
    """Symplectic Euler, kick then drift: p1 = p - h V'(q); q1 = q + h T'(p1)."""
    p = p - h * dV(system, q, p)
    q = q + h * dT(system, q, p)
    return q, p


def leapfrog(system, q, p, h):
    """Velocity Verlet (kick-drift-kick)."""
    p = p - 0.5 * h * dV(system, q, p)
    q = q + h * dT(system, q, p)
    p = p - 0.5 * h * dV(system, q, p)
    return q, p


def stormer_verlet(system, q, p, h):
    """Störmer–Verlet, position form (drift-kick-drift)."""
    q = q + 0.5 * h * dT(system, q, p)
    p = p - h * dV(system, q, p)
    q = q + 0.5 * h * dT(system, q, p)
    return q, p


def compose(base: Callable, weights):
    """The composition base(w_m h) o ... o base(w_1 h) (applied w_1 first)."""

    def step(system, q, p, h):
        for w in weights:
            q, p = base(system, q, p, w * h)
        return q, p

    return step


def triple_jump_weights(p: int) -> Tuple[float, float, float]:
    """gamma1, gamma2, gamma1 raising a symmetric method of even order p to order p + 2."""
    g1 = 1.0 / (2.0 - 2.0 ** (1.0 / (p + 1)))
    return g1, 1.0 - 2.0 * g1, g1


#: Yoshida (1990), Table 1, solution A: w1, w2, w3; w0 = 1 - 2 (w1 + w2 + w3).
_Y6_W1, _Y6_W2, _Y6_W3 = -1.17767998417887, 0.235573213359357, 0.784513610477560
_Y6_W0 = 1.0 - 2.0 * (_Y6_W1 + _Y6_W2 + _Y6_W3)
YOSHIDA6 = (_Y6_W3, _Y6_W2, _Y6_W1, _Y6_W0, _Y6_W1, _Y6_W2, _Y6_W3)

yoshida4 = compose(stormer_verlet, triple_jump_weights(2))
yoshida6 = compose(stormer_verlet, YOSHIDA6)


def pefrl(system, q, p, h):
    """Omelyan, Mryglod & Folk (2002), eq. (20): position-extended Forest–Ruth-like."""
    xi, lam, chi = 0.1786178958448091, -0.2123418310626054, -0.06626458266981849
    q = q + xi * h * dT(system, q, p)
    p = p - (1.0 - 2.0 * lam) / 2.0 * h * dV(system, q, p)
    q = q + chi * h * dT(system, q, p)
    p = p - lam * h * dV(system, q, p)
    q = q + (1.0 - 2.0 * (chi + xi)) * h * dT(system, q, p)
    p = p - lam * h * dV(system, q, p)
    q = q + chi * h * dT(system, q, p)
    p = p - (1.0 - 2.0 * lam) / 2.0 * h * dV(system, q, p)
    q = q + xi * h * dT(system, q, p)
    return q, p


# -- methods for any H ----------------------------------------------------------------

def rk4(system, q, p, h):
    """Classical Runge–Kutta 4 on f(q, p) = (dH/dp, -dH/dq)."""

    def f(q, p):
        gq, gp = _grads(system, q, p)
        return gp, -gq

    k1q, k1p = f(q, p)
    k2q, k2p = f(q + h / 2 * k1q, p + h / 2 * k1p)
    k3q, k3p = f(q + h / 2 * k2q, p + h / 2 * k2p)
    k4q, k4p = f(q + h * k3q, p + h * k3p)
    return q + h / 6 * (k1q + 2 * k2q + 2 * k3q + k4q), p + h / 6 * (k1p + 2 * k2p + 2 * k3p + k4p)


def implicit_midpoint(system, q, p, h, max_iter: int = 500):
    """y1 = y0 + h f((y0 + y1)/2), fixed-point iteration run until the iterate stops changing."""
    q1, p1 = q.copy(), p.copy()
    for _ in range(max_iter):
        gq, gp = _grads(system, 0.5 * (q + q1), 0.5 * (p + p1))
        qn, pn = q + h * gp, p - h * gq
        if np.array_equal(qn, q1) and np.array_equal(pn, p1):
            break
        change = max(np.max(np.abs(qn - q1)), np.max(np.abs(pn - p1)))
        q1, p1 = qn, pn
        if change <= 2.0 * np.finfo(float).eps * max(1.0, np.max(np.abs(q1)), np.max(np.abs(p1))):
            break
    else:  # pragma: no cover - a reference that does not converge is a test-setup error
        raise RuntimeError("naive implicit midpoint did not converge; reduce h")
    return q1, p1


def tao_order2(system, q, p, x, y, h, omega):
    """Tao (2016) order-2 step A(h/2) B(h/2) C(h) B(h/2) A(h/2) on (q, p, x, y)."""

    def flow_a(q, p, x, y, d):  # flow of H(q, y)
        gq, gp = _grads(system, q, y)
        return q, p - d * gq, x + d * gp, y

    def flow_b(q, p, x, y, d):  # flow of H(x, p)
        gq, gp = _grads(system, x, p)
        return q + d * gp, p, x, y - d * gq

    def flow_c(q, p, x, y, d):  # exact rotation of omega (|q-x|^2 + |p-y|^2)/2
        c, s = math.cos(2.0 * omega * d), math.sin(2.0 * omega * d)
        u, v = q - x, p - y  # the differences rotate, the sums are conserved
        u, v = c * u + s * v, -s * u + c * v
        return (q + x + u) / 2, (p + y + v) / 2, (q + x - u) / 2, (p + y - v) / 2

    state = (q, p, x, y)
    state = flow_a(*state, h / 2)
    state = flow_b(*state, h / 2)
    state = flow_c(*state, h)
    state = flow_b(*state, h / 2)
    state = flow_a(*state, h / 2)
    return state


def tao_weights(order: int):
    """Weights of the order-2 Tao step composed by repeated triple jumps to ``order``."""
    weights = [1.0]
    for p in range(2, order, 2):
        g1, g2, _ = triple_jump_weights(p)
        weights = [g1 * w for w in weights] + [g2 * w for w in weights] + [g1 * w for w in weights]
    return weights


# -- driver -------------------------------------------------------------------------

_SIMPLE: Dict[str, Callable] = {
    "symplectic-euler": symplectic_euler,
    "leapfrog": leapfrog,
    "stormer-verlet": stormer_verlet,
    "yoshida4": yoshida4,
    "yoshida6": yoshida6,
    "pefrl": pefrl,
    "rk4": rk4,
    "implicit-midpoint": implicit_midpoint,
}

KNOWN = tuple(_SIMPLE) + ("tao",)


def run(integrator, system, q: Array, p: Array, nsteps: int, aux: Optional[Array] = None,
        backward: bool = False):
    """Take ``nsteps`` steps of ``integrator``'s method (by registry name) from one member.

    Returns the trajectory ``(Q, P)`` of shape ``[nsteps, ndof]`` (states after each step)
    and, for Tao, the final copies ``(x, y)``.
    """
    name = integrator.name
    h = -integrator.dt if backward else integrator.dt
    q = np.array(q, dtype=np.float64).reshape(-1)
    p = np.array(p, dtype=np.float64).reshape(-1)
    Q, P = [], []
    if name == "tao":
        omega = integrator.omega
        weights = tao_weights(integrator.order)
        x, y = (q.copy(), p.copy()) if aux is None else (np.array(aux[0]), np.array(aux[1]))
        for _ in range(nsteps):
            for w in weights:
                q, p, x, y = tao_order2(system, q, p, x, y, w * h, omega)
            Q.append(q)
            P.append(p)
        return np.array(Q), np.array(P), (x, y)
    if name not in _SIMPLE:
        raise NotImplementedError(
            f"tests/naive.py has no reference for integrator {name!r}; write one from its defining "
            "formula (do not copy the kernel's table)"
        )
    step = _SIMPLE[name]
    for _ in range(nsteps):
        q, p = step(system, q, p, h)
        Q.append(q)
        P.append(p)
    return np.array(Q), np.array(P), None
