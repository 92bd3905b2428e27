r"""Classical 4th-order Runge–Kutta: the non-symplectic baseline.

.. math:: k_1 = f(y_n),\ k_2 = f(y_n + \tfrac{h}{2}k_1),\ k_3 = f(y_n + \tfrac{h}{2}k_2),\
          k_4 = f(y_n + h k_3),\quad y_{n+1} = y_n + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)

with :math:`f = J\nabla H`. Order 4, not symplectic: the energy error grows secularly,
roughly like :math:`t\,h^4`. Reference: Hairer, Nørsett & Wanner, *Solving ODEs I*, II.1.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .base import Integrator, compile_kernel, first_countdown, record, step_failed


@nb.njit(error_model="numpy")
def _rhs(dHdq, dHdp, params, iw, fw, q, p, fq, fp):
    dHdp(q, p, params, iw, fw, fq)
    dHdq(q, p, params, iw, fw, fp)
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


_rk4_kernel_serial, _rk4_kernel_parallel = compile_kernel(_rk4_kernel)


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
        kernel = _rk4_kernel_parallel if q.shape[0] > 1 else _rk4_kernel_serial
        kernel(fns[0], fns[1], params, iwork, fwork, q, p, dt, nsteps, step0, every, out_q, out_p, status)
