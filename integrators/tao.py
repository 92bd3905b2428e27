r"""Tao's explicit symplectic method for non-separable Hamiltonians.

The phase space is doubled with copies :math:`(x, y)` of :math:`(q, p)` and the augmented
Hamiltonian

.. math:: \bar H(q, p, x, y) = H(q, y) + H(x, p) + \tfrac{\omega}{2}\left(|q - x|^2 + |p - y|^2\right)

is split into three exactly solvable flows: :math:`\phi_A` of :math:`H(q, y)`,
:math:`\phi_B` of :math:`H(x, p)` and the rotation :math:`\phi_C` of the binding term.
The order-2 step is :math:`\phi_A^{h/2}\phi_B^{h/2}\phi_C^{h}\phi_B^{h/2}\phi_A^{h/2}`;
order 4 (and 6) follow by triple jumps. The copies are part of the state: a checkpoint
keeps them (``aux``), so a restarted run is bit-identical. Choose ``h`` well below
:math:`\omega^{-1/\mathrm{order}}`.

Reference: M. Tao, Phys. Rev. E 94, 043303 (2016), arXiv:1609.02212.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from . import batched
from .base import Integrator, compile_kernel, first_countdown, record, step_failed
from .errors import InputError


def _make_tao_kernel(gradient):
    """The kernel source with both gradients at a state from ``gradient(f1, f2, ...)``
    (:mod:`integrators.batched`: the two member functions, or the system's fused one)."""

    @nb.njit(error_model="numpy")
    def _tao_order2(dHdq, dHdp, params, iw, fw, q, p, x, y, d, omega, grad, vel):
        n = q.shape[0]
        # phi_A(d/2): flow of H(q, y): p -= d/2 dH/dq(q, y), x += d/2 dH/dp(q, y)
        gradient(dHdq, dHdp, q, y, params, iw, fw, grad, vel)
        for i in range(n):
            p[i] -= 0.5 * d * grad[i]
            x[i] += 0.5 * d * vel[i]
        # phi_B(d/2): flow of H(x, p): q += d/2 dH/dp(x, p), y -= d/2 dH/dq(x, p)
        gradient(dHdq, dHdp, x, p, params, iw, fw, grad, vel)
        for i in range(n):
            q[i] += 0.5 * d * vel[i]
            y[i] -= 0.5 * d * grad[i]
        # phi_C(d): rotation of the binding term
        c = math.cos(2.0 * omega * d)
        s = math.sin(2.0 * omega * d)
        for i in range(n):
            sq = q[i] + x[i]
            dq = q[i] - x[i]
            sp = p[i] + y[i]
            dp = p[i] - y[i]
            q[i] = 0.5 * (sq + c * dq + s * dp)
            p[i] = 0.5 * (sp - s * dq + c * dp)
            x[i] = 0.5 * (sq - c * dq - s * dp)
            y[i] = 0.5 * (sp + s * dq - c * dp)
        gradient(dHdq, dHdp, x, p, params, iw, fw, grad, vel)
        for i in range(n):
            q[i] += 0.5 * d * vel[i]
            y[i] -= 0.5 * d * grad[i]
        gradient(dHdq, dHdp, q, y, params, iw, fw, grad, vel)
        for i in range(n):
            p[i] -= 0.5 * d * grad[i]
            x[i] += 0.5 * d * vel[i]


    def _tao_kernel(dHdq, dHdp, params, iwork, fwork, weights, omega, q, p, aux, dt, nsteps, step0, every, out_q, out_p, status):
        B, n = q.shape
        for b in nb.prange(B):
            qb = q[b]
            pb = p[b]
            iw = iwork[b]
            fw = fwork[b]
            xb = aux[b, 0]
            yb = aux[b, 1]
            grad = np.empty(n)
            vel = np.empty(n)
            frame = 0
            countdown = first_countdown(step0, every)
            for k in range(nsteps):
                for w in weights:
                    _tao_order2(dHdq, dHdp, params, iw, fw, qb, pb, xb, yb, w * dt, omega, grad, vel)
                step = step0 + k + 1
                if step_failed(qb, pb, step, b, status) or step_failed(xb, yb, step, b, status):
                    break
                countdown -= 1
                if countdown == 0:
                    countdown = every
                    frame = record(out_q, out_p, frame, b, qb, pb)

    return _tao_kernel


_tao_kernel_serial, _tao_kernel_parallel = compile_kernel(_make_tao_kernel(batched.separate_gradient))
_tao_fused_serial, _tao_fused_parallel = compile_kernel(_make_tao_kernel(batched.fused_call))


def _composition_weights(order: int) -> np.ndarray:
    """Weights of the order-2 step giving ``order`` by repeated triple jumps."""
    w = np.array([1.0])
    for p in range(2, order, 2):
        g1 = 1.0 / (2.0 - 2.0 ** (1.0 / (p + 1)))
        g2 = 1.0 - 2.0 * g1
        w = np.concatenate([g1 * w, g2 * w, g1 * w])
    return w


class Tao(Integrator):
    r"""Tao (2016) explicit symplectic integrator for non-separable H (extended phase space).

    Order 2: :math:`\phi_A^{h/2}\phi_B^{h/2}\phi_C^{h}\phi_B^{h/2}\phi_A^{h/2}`; order 4 and 6
    by triple jumps. Symplectic in the extended space, symmetric; 4 gradient pairs per
    order-2 stage.

    Parameters
    ----------
    dt : float
        Step size, > 0.
    omega : float
        Binding strength :math:`\omega > 0`; the error behaves well when
        ``dt << omega**(-1/order)``.
    order : {2, 4, 6}
        Order of accuracy.

    Reference: M. Tao, Phys. Rev. E 94, 043303 (2016).
    """

    name = "tao"
    order = 2
    symplectic = True
    n_aux = 2

    def __init__(self, dt: float, omega: float = 20.0, order: int = 2):
        super().__init__(dt)
        if not (isinstance(omega, (int, float)) and math.isfinite(omega) and omega > 0):
            raise InputError(f"omega must be a finite number > 0, got {omega!r}")
        if order not in (2, 4, 6):
            raise InputError(f"order must be 2, 4 or 6, got {order!r}")
        self.omega = float(omega)
        self.order = int(order)  # instance attribute shadows the class default
        self._weights = _composition_weights(self.order)

    def parameters(self):
        return {"dt": self.dt, "omega": self.omega, "order": self.order}

    def init_aux(self, q, p):
        """Extended copies start equal to the state: ``aux[:, 0] = q``, ``aux[:, 1] = p``."""
        return np.ascontiguousarray(np.stack([q, p], axis=1))

    def _run_kernel(self, fns, params, iwork, fwork, q, p, aux, dt, nsteps, step0, every, out_q, out_p, status):
        if aux.shape != (q.shape[0], 2, q.shape[1]) or aux.dtype != np.float64 or not aux.flags.c_contiguous:
            raise InputError(f"Tao needs aux of shape {(q.shape[0], 2, q.shape[1])} (the copies x, y), "
                             f"got {aux.shape}; start from init_aux(q, p)")
        grad = batched.fused_gradient(fns)
        if grad is not None:  # one call for dH/dq and dH/dp
            kernel = _tao_fused_parallel if q.shape[0] > 1 else _tao_fused_serial
            fns = (grad, fns[1])
        else:
            kernel = _tao_kernel_parallel if q.shape[0] > 1 else _tao_kernel_serial
        kernel(fns[0], fns[1], params, iwork, fwork, self._weights, self.omega, q, p, aux, dt,
               nsteps, step0, every, out_q, out_p, status)
