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

from . import batched
from .base import Integrator, NONFINITE, NOT_CONVERGED, compile_kernel, first_countdown, record, step_failed
from .errors import InputError

_EPS = np.finfo(np.float64).eps


def _make_midpoint_kernel(gradient):
    """The member kernel source, calling ``gradient(f1, f2, q, p, params, iw, fw, gq, gp)`` for both
    gradients at a state: :func:`integrators.batched.separate_gradient` (``f1, f2 = dHdq, dHdp``)
    or :func:`~integrators.batched.fused_call` (``f1`` = the system's fused ``grad``)."""

    def kernel(dHdq, dHdp, params, iwork, fwork, q, p, dt, nsteps, step0, every, max_iter, out_q, out_p, status):
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
                gradient(dHdq, dHdp, qb, pb, params, iw, fw, grad, vel)
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
                    gradient(dHdq, dHdp, qm, pm, params, iw, fw, grad, vel)
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

    return kernel


_midpoint_kernel = _make_midpoint_kernel(batched.separate_gradient)
_midpoint_kernel_serial, _midpoint_kernel_parallel = compile_kernel(_midpoint_kernel)
_midpoint_fused_serial, _midpoint_fused_parallel = compile_kernel(_make_midpoint_kernel(batched.fused_call))


def _midpoint_block_kernel(grad_block, params, q, p, dt, nsteps, step0, every, max_iter, width, nscratch, out_q,
                           out_p, status):
    """The member kernel's arithmetic for blocks of ``width`` members (``[width, n]``, a row
    per member), gradients by ``grad_block``; each member's fixed-point iteration runs
    and stops on its own (a per-member mask), so every member gets the bits, frames and
    status of its own member-kernel run. Each gradient call evaluates only the members that
    need it (live, still iterating), gathered into the first rows of the block (a member's
    gradient depends neither on its row nor on the row count): the last, partial block needs
    no padding, and converged or stopped members cost nothing. A member that stops is
    written back at once."""
    B, n = q.shape
    nblocks = (B + width - 1) // width
    for blk in nb.prange(nblocks):
        b0 = blk * width
        live = min(width, B - b0)
        Q = np.empty((width, n))
        P = np.empty((width, n))
        Q1 = np.empty((width, n))
        P1 = np.empty((width, n))
        QM = np.empty((width, n))
        PM = np.empty((width, n))
        GQ = np.empty((width, n))
        GP = np.empty((width, n))
        buf = np.empty(nscratch)
        idx = np.empty(width, dtype=np.int64)
        alive = np.zeros(width, dtype=np.bool_)
        done = np.zeros(width, dtype=np.bool_)
        conv = np.zeros(width, dtype=np.bool_)
        prev = np.empty(width)
        scale = np.empty(width)
        for m in range(width):
            src = b0 + m if m < live else b0  # rows past the last member stay unused
            alive[m] = m < live
            for i in range(n):
                Q[m, i] = q[src, i]
                P[m, i] = p[src, i]
        frame = 0
        countdown = first_countdown(step0, every)
        for k in range(nsteps):
            step = step0 + k + 1
            # explicit Euler predictor, for the live members only (gathered into the first rows)
            cnt = 0
            for m in range(width):
                if alive[m]:
                    idx[cnt] = m
                    for i in range(n):
                        QM[cnt, i] = Q[m, i]
                        PM[cnt, i] = P[m, i]
                    cnt += 1
            grad_block(QM[:cnt], PM[:cnt], params, GQ[:cnt], GP[:cnt], buf)
            for c in range(cnt):
                m = idx[c]
                for i in range(n):
                    Q1[m, i] = Q[m, i] + dt * GP[c, i]
                    P1[m, i] = P[m, i] - dt * GQ[c, i]
            for m in range(width):
                s = 1.0
                for i in range(n):
                    s = max(s, abs(Q[m, i]), abs(P[m, i]))
                scale[m] = s
                done[m] = not alive[m]
                conv[m] = False
                prev[m] = np.inf
            for it in range(max_iter):
                # the members still iterating, gathered into the first rows: a member's
                # gradient does not depend on its row or the row count, and converged ones
                # cost nothing
                cnt = 0
                for m in range(width):
                    if not done[m]:
                        idx[cnt] = m
                        for i in range(n):
                            QM[cnt, i] = 0.5 * (Q[m, i] + Q1[m, i])
                            PM[cnt, i] = 0.5 * (P[m, i] + P1[m, i])
                        cnt += 1
                if cnt == 0:
                    break
                grad_block(QM[:cnt], PM[:cnt], params, GQ[:cnt], GP[:cnt], buf)
                for c in range(cnt):
                    m = idx[c]
                    delta = 0.0
                    for i in range(n):
                        qn = Q[m, i] + dt * GP[c, i]
                        pn = P[m, i] - dt * GQ[c, i]
                        dq = abs(qn - Q1[m, i])
                        dp = abs(pn - P1[m, i])
                        if not dq <= delta:
                            delta = dq
                        if not dp <= delta:
                            delta = dp
                        Q1[m, i] = qn
                        P1[m, i] = pn
                    if not np.isfinite(delta):
                        done[m] = True
                    elif delta == 0.0 or (delta >= prev[m] and prev[m] <= 1e3 * _EPS * scale[m]):
                        done[m] = True
                        conv[m] = True
                    else:
                        prev[m] = delta
            stopped = False
            for m in range(width):
                if not alive[m]:
                    continue
                b = b0 + m
                if not conv[m]:
                    finite = True
                    for i in range(n):
                        if not (np.isfinite(Q1[m, i]) and np.isfinite(P1[m, i])):
                            finite = False
                    status[b, 0] = NOT_CONVERGED if finite else NONFINITE
                    status[b, 1] = step
                    alive[m] = False
                else:
                    tot = 0.0
                    for i in range(n):
                        Q[m, i] = Q1[m, i]
                        P[m, i] = P1[m, i]
                        tot += Q[m, i] + P[m, i]
                    if not np.isfinite(tot):
                        status[b, 0] = NONFINITE
                        status[b, 1] = step
                        alive[m] = False
                if not alive[m]:
                    stopped = True
                    for i in range(n):  # its state where its member run stops
                        q[b, i] = Q[m, i]
                        p[b, i] = P[m, i]
            if stopped:  # stopped members are never evaluated again; stop when none is left
                left = False
                for m in range(width):
                    if alive[m]:
                        left = True
                if not left:
                    break
            countdown -= 1
            if countdown == 0:
                countdown = every
                for m in range(width):
                    if alive[m]:
                        for i in range(n):
                            out_q[frame, b0 + m, i] = Q[m, i]
                            out_p[frame, b0 + m, i] = P[m, i]
                frame += 1
        for m in range(width):
            if alive[m]:
                for i in range(n):
                    q[b0 + m, i] = Q[m, i]
                    p[b0 + m, i] = P[m, i]


_midpoint_block_serial, _midpoint_block_parallel = compile_kernel(_midpoint_block_kernel)


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
        B = q.shape[0]
        block = batched.block_gradient(fns, iwork, fwork, B)
        if block is not None:  # blocks of members through the system's batched gradient
            width = batched.WIDTH
            kernel = _midpoint_block_parallel if B > width else _midpoint_block_serial
            grad_block, scratch = block
            kernel(grad_block, params, q, p, dt, nsteps, step0, every, self.max_iter, width, scratch(params, width),
                   out_q, out_p, status)
            return
        grad = batched.fused_gradient(fns)
        if grad is not None:  # one call for dH/dq and dH/dp
            kernel = _midpoint_fused_parallel if B > 1 else _midpoint_fused_serial
            f1, f2 = grad, fns[1]
        else:
            kernel = _midpoint_kernel_parallel if B > 1 else _midpoint_kernel_serial
            f1, f2 = fns[0], fns[1]
        kernel(f1, f2, params, iwork, fwork, q, p, dt, nsteps, step0, every, self.max_iter, out_q, out_p, status)
