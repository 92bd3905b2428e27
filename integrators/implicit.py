r"""Implicit midpoint rule: symplectic and symmetric for any Hamiltonian.

.. math:: y_{n+1} = y_n + h\, J\nabla H\!\left(\tfrac{y_n + y_{n+1}}{2}\right),
          \qquad y = (q, p),\quad J = \begin{pmatrix} 0 & I \\ -I & 0 \end{pmatrix}

The nonlinear equation is solved by fixed-point iteration (contracting when
:math:`\tfrac{h}{2}\,\mathrm{Lip}(J\nabla H) < 1`) until the iterate stops changing, or its
increments stop decreasing once they are at round-off level (relative to the accepted state,
so a diverging iteration never qualifies). Stopping earlier, at a fixed tolerance, leaves a
small secular energy drift. A step whose iteration does not converge stops
the member with status ``NOT_CONVERGED`` and leaves it at the last accepted state: an
unconverged solve is neither symplectic nor symmetric, so it is never returned silently.

Reference: Hairer, Lubich & Wanner, *Geometric Numerical Integration* (2006), sec. II.1.1
and VIII.6 (fixed-point iteration and round-off).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .base import Integrator, NONFINITE, NOT_CONVERGED, compile_kernel, first_countdown, record, step_failed
from .errors import InputError

_EPS = np.finfo(np.float64).eps


def _midpoint_kernel(dHdq, dHdp, params, iwork, fwork, q, p, dt, nsteps, step0, every, max_iter, out_q, out_p, status):
    B, n = q.shape
    for b in nb.prange(B):
        qb = q[b]
        pb = p[b]
        iw = iwork[b]
        fw = fwork[b]
        q1 = np.empty(n)
        p1 = np.empty(n)
        qm = np.empty(n)
        pm = np.empty(n)
        vel = np.empty(n)
        grad = np.empty(n)
        frame = 0
        countdown = first_countdown(step0, every)
        for k in range(nsteps):
            step = step0 + k + 1
            # explicit Euler predictor
            dHdp(qb, pb, params, iw, fw, vel)
            dHdq(qb, pb, params, iw, fw, grad)
            for i in range(n):
                q1[i] = qb[i] + dt * vel[i]
                p1[i] = pb[i] - dt * grad[i]
            # round-off scale of this step, from the accepted state (never from the iterate,
            # whose size grows with a diverging iteration)
            scale = 1.0
            for i in range(n):
                scale = max(scale, abs(qb[i]), abs(pb[i]))
            converged = False
            prev = np.inf
            for it in range(max_iter):
                for i in range(n):
                    qm[i] = 0.5 * (qb[i] + q1[i])
                    pm[i] = 0.5 * (pb[i] + p1[i])
                dHdp(qm, pm, params, iw, fw, vel)
                dHdq(qm, pm, params, iw, fw, grad)
                delta = 0.0
                for i in range(n):
                    qn = qb[i] + dt * vel[i]
                    pn = pb[i] - dt * grad[i]
                    dq = abs(qn - q1[i])
                    dp = abs(pn - p1[i])
                    # written so that a NaN increment propagates (max() would drop it)
                    if not dq <= delta:
                        delta = dq
                    if not dp <= delta:
                        delta = dp
                    q1[i] = qn
                    p1[i] = pn
                if not np.isfinite(delta):
                    break
                if delta == 0.0 or (delta >= prev and prev <= 1e3 * _EPS * scale):
                    # the iterate stopped changing, or stopped improving at round-off level
                    converged = True
                    break
                prev = delta
            if not converged:
                finite = True
                for i in range(n):
                    if not (np.isfinite(q1[i]) and np.isfinite(p1[i])):
                        finite = False
                status[b, 0] = NOT_CONVERGED if finite else NONFINITE
                status[b, 1] = step
                break
            for i in range(n):
                qb[i] = q1[i]
                pb[i] = p1[i]
            if step_failed(qb, pb, step, b, status):
                break
            countdown -= 1
            if countdown == 0:
                countdown = every
                frame = record(out_q, out_p, frame, b, qb, pb)


_midpoint_kernel_serial, _midpoint_kernel_parallel = compile_kernel(_midpoint_kernel)


class ImplicitMidpoint(Integrator):
    r"""Implicit midpoint rule (1-stage Gauss collocation), order 2, symplectic and
    symmetric for any Hamiltonian, separable or not.

    Parameters
    ----------
    dt : float
        Step size, > 0.
    max_iter : int
        Fixed-point iterations allowed per step before the step fails with
        :class:`~integrators.ConvergenceError` (reduce ``dt`` if it does).
    """

    name = "implicit-midpoint"
    order = 2
    symplectic = True

    def __init__(self, dt: float, max_iter: int = 100):
        super().__init__(dt)
        if int(max_iter) != max_iter or max_iter < 1:
            raise InputError(f"max_iter must be a positive integer, got {max_iter!r}")
        self.max_iter = int(max_iter)

    def parameters(self):
        return {"dt": self.dt, "max_iter": self.max_iter}

    def _run_kernel(self, fns, params, iwork, fwork, q, p, aux, dt, nsteps, step0, every, out_q, out_p, status):
        kernel = _midpoint_kernel_parallel if q.shape[0] > 1 else _midpoint_kernel_serial
        kernel(fns[0], fns[1], params, iwork, fwork, q, p, dt, nsteps, step0, every,
               self.max_iter, out_q, out_p, status)
