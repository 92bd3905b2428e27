r"""Classical 4th-order Runge–Kutta: the non-symplectic baseline.

.. math:: k_1 = f(y_n),\ k_2 = f(y_n + \tfrac{h}{2}k_1),\ k_3 = f(y_n + \tfrac{h}{2}k_2),\
          k_4 = f(y_n + h k_3),\quad y_{n+1} = y_n + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)

with :math:`f = J\nabla H`. Order 4, not symplectic: the energy error grows secularly,
roughly like :math:`t\,h^4`. Reference: Hairer, Nørsett & Wanner, *Solving ODEs I*, II.1.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import batched
from .base import NONFINITE, Integrator, compile_kernel, first_countdown, record, step_failed


def _make_rk4_kernel(gradient):
    """The kernel source with both gradients at a state from ``gradient(f1, f2, ...)``
    (:mod:`integrators.batched`: the two member functions, or the system's fused one)."""

    @nb.njit(error_model="numpy")
    def _rhs(dHdq, dHdp, params, iw, fw, q, p, fq, fp):
        gradient(dHdq, dHdp, q, p, params, iw, fw, fp, fq)
        for i in range(q.shape[0]):
            fp[i] = -fp[i]

    def _rk4_kernel(dHdq, dHdp, params, iwork, fwork, q, p, dt, nsteps, step0, every, out_q, out_p, status):
        B, n = q.shape
        for b in nb.prange(B):
            qb = q[b]
            pb = p[b]
            iw = iwork[b]
            fw = fwork[b]
            kq = np.empty((4, n))
            kp = np.empty((4, n))
            qs = np.empty(n)
            ps = np.empty(n)
            frame = 0
            countdown = first_countdown(step0, every)
            for k in range(nsteps):
                _rhs(dHdq, dHdp, params, iw, fw, qb, pb, kq[0], kp[0])
                for stage, a in ((1, 0.5), (2, 0.5), (3, 1.0)):
                    for i in range(n):
                        qs[i] = qb[i] + a * dt * kq[stage - 1, i]
                        ps[i] = pb[i] + a * dt * kp[stage - 1, i]
                    _rhs(dHdq, dHdp, params, iw, fw, qs, ps, kq[stage], kp[stage])
                for i in range(n):
                    qb[i] += dt / 6.0 * (kq[0, i] + 2.0 * kq[1, i] + 2.0 * kq[2, i] + kq[3, i])
                    pb[i] += dt / 6.0 * (kp[0, i] + 2.0 * kp[1, i] + 2.0 * kp[2, i] + kp[3, i])
                if step_failed(qb, pb, step0 + k + 1, b, status):
                    break
                countdown -= 1
                if countdown == 0:
                    countdown = every
                    frame = record(out_q, out_p, frame, b, qb, pb)

    return _rk4_kernel


_rk4_kernel_serial, _rk4_kernel_parallel = compile_kernel(_make_rk4_kernel(batched.separate_gradient))
_rk4_fused_serial, _rk4_fused_parallel = compile_kernel(_make_rk4_kernel(batched.fused_call))


def _rk4_block_kernel(grad_block, params, q, p, dt, nsteps, step0, every, width, nscratch, out_q, out_p, status):
    """The member kernel's arithmetic for blocks of up to ``width`` members (rows of
    ``[width, n]`` arrays), gradients by ``grad_block``: every member gets the bits, frames
    and status of its own run. The block holds its live members in its first ``cnt`` rows
    (``idx``: row -> member); a member whose state stops being finite is written back and
    its row taken by the last live one."""
    B, n = q.shape
    nblocks = (B + width - 1) // width
    for blk in nb.prange(nblocks):
        b0 = blk * width
        cnt = min(width, B - b0)
        Q = np.empty((width, n))
        P = np.empty((width, n))
        QS = np.empty((width, n))
        PS = np.empty((width, n))
        KQ = np.empty((4, width, n))
        KP = np.empty((4, width, n))
        buf = np.empty(nscratch)
        idx = np.empty(width, dtype=np.int64)
        for c in range(cnt):
            idx[c] = b0 + c
            for i in range(n):
                Q[c, i] = q[b0 + c, i]
                P[c, i] = p[b0 + c, i]
        frame = 0
        countdown = first_countdown(step0, every)
        for k in range(nsteps):
            grad_block(Q[:cnt], P[:cnt], params, KP[0, :cnt], KQ[0, :cnt], buf)
            for c in range(cnt):
                for i in range(n):
                    KP[0, c, i] = -KP[0, c, i]
            for stage, a in ((1, 0.5), (2, 0.5), (3, 1.0)):
                for c in range(cnt):
                    for i in range(n):
                        QS[c, i] = Q[c, i] + a * dt * KQ[stage - 1, c, i]
                        PS[c, i] = P[c, i] + a * dt * KP[stage - 1, c, i]
                grad_block(QS[:cnt], PS[:cnt], params, KP[stage, :cnt], KQ[stage, :cnt], buf)
                for c in range(cnt):
                    for i in range(n):
                        KP[stage, c, i] = -KP[stage, c, i]
            for c in range(cnt):
                for i in range(n):
                    Q[c, i] += dt / 6.0 * (KQ[0, c, i] + 2.0 * KQ[1, c, i] + 2.0 * KQ[2, c, i] + KQ[3, c, i])
                    P[c, i] += dt / 6.0 * (KP[0, c, i] + 2.0 * KP[1, c, i] + 2.0 * KP[2, c, i] + KP[3, c, i])
            step = step0 + k + 1
            c = 0
            while c < cnt:
                tot = 0.0  # the member kernel's finite check (base.nonfinite)
                for i in range(n):
                    tot += Q[c, i] + P[c, i]
                if np.isfinite(tot):
                    c += 1
                    continue
                b = idx[c]
                status[b, 0] = NONFINITE
                status[b, 1] = step
                for i in range(n):
                    q[b, i] = Q[c, i]
                    p[b, i] = P[c, i]
                cnt -= 1
                idx[c] = idx[cnt]
                for i in range(n):
                    Q[c, i] = Q[cnt, i]
                    P[c, i] = P[cnt, i]
            if cnt == 0:
                break
            countdown -= 1
            if countdown == 0:
                countdown = every
                for c in range(cnt):
                    for i in range(n):
                        out_q[frame, idx[c], i] = Q[c, i]
                        out_p[frame, idx[c], i] = P[c, i]
                frame += 1
        for c in range(cnt):
            for i in range(n):
                q[idx[c], i] = Q[c, i]
                p[idx[c], i] = P[c, i]


_rk4_block_serial, _rk4_block_parallel = compile_kernel(_rk4_block_kernel)


def rk4_step(f, y, h):
    """One classical RK4 step of :math:`y' = f(y)` (the formula above) for any vector field
    on NumPy arrays: the learned baseline (not a Hamiltonian), a damped pendulum. Hamiltonian
    systems use the compiled :class:`RK4` instead."""
    k1 = f(y)
    k2 = f(y + 0.5 * h * k1)
    k3 = f(y + 0.5 * h * k2)
    k4 = f(y + h * k3)
    return y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


class RK4(Integrator):
    """Classical Runge–Kutta 4 (any H): order 4, NOT symplectic; energy drifts secularly.

    Kept as the baseline that symplectic methods are compared with.
    """

    name = "rk4"
    order = 4
    symplectic = False

    def _run_kernel(self, fns, params, iwork, fwork, q, p, aux, dt, nsteps, step0, every, out_q, out_p, status):
        B = q.shape[0]
        block = batched.block_gradient(fns, iwork, fwork, B)
        if block is not None:  # blocks of members through the system's batched gradient
            grad_block, scratch = block
            width = batched.WIDTH
            kernel = _rk4_block_parallel if B > width else _rk4_block_serial
            kernel(grad_block, params, q, p, dt, nsteps, step0, every, width, scratch(params, width), out_q, out_p,
                   status)
            return
        grad = batched.fused_gradient(fns)
        if grad is not None:  # one call for dH/dq and dH/dp
            kernel = _rk4_fused_parallel if q.shape[0] > 1 else _rk4_fused_serial
            fns = (grad, fns[1])
        else:
            kernel = _rk4_kernel_parallel if q.shape[0] > 1 else _rk4_kernel_serial
        kernel(fns[0], fns[1], params, iwork, fwork, q, p, dt, nsteps, step0, every, out_q, out_p, status)
