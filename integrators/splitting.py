r"""Explicit symplectic splitting methods for separable Hamiltonians.

For :math:`H(q, p) = T(p) + V(q)` the flows of :math:`T` (drift,
:math:`q \leftarrow q + c\,h\,\partial T/\partial p`) and of :math:`V` (kick,
:math:`p \leftarrow p - d\,h\,\partial V/\partial q`) are exact and symplectic, so any
composition of them is symplectic. Each method here is nothing but its table of
(kind, coefficient) operations; one kernel, :func:`_splitting_kernel`, runs every table.
A kick reuses the last gradient when no drift happened since (first-same-as-last), so
kick-drift-kick leapfrog costs one force evaluation per step.

Ensembles of a system that registers *lane* functions (``integrators.lanes``: members as the
SIMD lanes of blocks, the step loop inside a block) run the lane kernel
:func:`integrators.lanes.run_splitting` instead, when there is no workspace and
``B >= lanes.MIN_MEMBERS``; it gives every member the bits of the member kernel.

References
----------
E. Hairer, C. Lubich, G. Wanner, *Geometric Numerical Integration*, 2nd ed., Springer (2006).
H. Yoshida, Phys. Lett. A 150, 262 (1990).
I. P. Omelyan, I. M. Mryglod, R. Folk, Comput. Phys. Commun. 146, 188 (2002).
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numba as nb
import numpy as np

from . import lanes
from .base import Integrator, compile_kernel, first_countdown, record, step_failed
from .lanes import DRIFT, KICK


def _splitting_kernel(dHdq, dHdp, params, iwork, fwork, kinds, coefs, q, p, dt, nsteps, step0, every, out_q, out_p, status):
    """Run the operation table ``kinds, coefs`` ``nsteps`` times on every member of ``q, p``."""
    B, n = q.shape
    nops = kinds.shape[0]
    scaled = coefs * dt
    for b in nb.prange(B):
        qb = q[b]
        pb = p[b]
        iw = iwork[b]
        fw = fwork[b]
        grad = np.empty(n)
        vel = np.empty(n)
        grad_valid = False
        frame = 0
        countdown = first_countdown(step0, every)
        for k in range(nsteps):
            for op in range(nops):
                c = scaled[op]
                if kinds[op] == DRIFT:
                    dHdp(qb, pb, params, iw, fw, vel)
                    for i in range(n):
                        qb[i] += c * vel[i]
                    grad_valid = False
                else:
                    if not grad_valid:
                        dHdq(qb, pb, params, iw, fw, grad)
                        grad_valid = True
                    for i in range(n):
                        pb[i] -= c * grad[i]
            if step_failed(qb, pb, step0 + k + 1, b, status):
                break
            countdown -= 1
            if countdown == 0:
                countdown = every
                frame = record(out_q, out_p, frame, b, qb, pb)


_splitting_kernel_serial, _splitting_kernel_parallel = compile_kernel(_splitting_kernel)


def verlet_composition(weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r"""Operation table of the composition :math:`\Phi_{w_m h} \circ \dots \circ \Phi_{w_1 h}`
    of drift-kick-drift Störmer–Verlet steps, adjacent drifts merged.

    Returns ``(kinds, coefs)``: drift :math:`w_1/2`, kick :math:`w_1`, drift
    :math:`(w_1 + w_2)/2`, ..., kick :math:`w_m`, drift :math:`w_m/2`.
    """
    w = [float(x) for x in weights]
    kinds, coefs = [DRIFT], [w[0] / 2]
    for i, wi in enumerate(w):
        kinds.append(KICK)
        coefs.append(wi)
        kinds.append(DRIFT)
        coefs.append((wi + w[i + 1]) / 2 if i + 1 < len(w) else wi / 2)
    return np.array(kinds, dtype=np.int64), np.array(coefs, dtype=np.float64)


def triple_jump(order: int) -> tuple[float, float]:
    r"""Triple-jump weights raising a symmetric method of even ``order`` by two:
    :math:`\gamma_1 = 1/(2 - 2^{1/(p+1)})`, :math:`\gamma_2 = 1 - 2\gamma_1`."""
    g1 = 1.0 / (2.0 - 2.0 ** (1.0 / (order + 1)))
    return g1, 1.0 - 2.0 * g1


class Splitting(Integrator):
    """Base of the table-driven explicit methods (separable H only)."""

    requires_separable = True
    symplectic = True
    kinds: ClassVar[np.ndarray]
    coefs: ClassVar[np.ndarray]

    def _run_kernel(self, fns, params, iwork, fwork, q, p, aux, dt, nsteps, step0, every, out_q, out_p, status):
        lane_fns = lanes.lane_functions(fns, iwork, fwork, q.shape[0])
        if lane_fns is not None:
            lanes.run_splitting(lane_fns, params, self.kinds, self.coefs, q, p, dt, nsteps, step0, every,
                                out_q, out_p, status)
            return
        kernel = _splitting_kernel_parallel if q.shape[0] > 1 else _splitting_kernel_serial
        kernel(fns[0], fns[1], params, iwork, fwork, self.kinds, self.coefs,
               q, p, dt, nsteps, step0, every, out_q, out_p, status)

    @classmethod
    def force_evaluations(cls) -> int:
        """Gradient evaluations of V per step in a long run (first-same-as-last kicks shared)."""
        ops = list(cls.kinds)
        n = sum(1 for i, k in enumerate(ops) if k == KICK and not (i > 0 and ops[i - 1] == KICK))
        if ops[0] == KICK and ops[-1] == KICK:
            n -= 1
        return n


def _table(*ops: tuple[int, float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([k for k, _ in ops], dtype=np.int64), np.array([c for _, c in ops], dtype=np.float64)


class SymplecticEuler(Splitting):
    r"""Symplectic Euler (kick then drift), order 1.

    .. math:: p_{n+1} = p_n - h\,\nabla V(q_n), \qquad q_{n+1} = q_n + h\,\nabla T(p_{n+1})

    Symplectic, not time-symmetric. Hairer, Lubich & Wanner (2006), Thm. VI.3.3.
    """

    name = "symplectic-euler"
    order = 1
    kinds, coefs = _table((KICK, 1.0), (DRIFT, 1.0))


class Leapfrog(Splitting):
    r"""Leapfrog / velocity Verlet (kick-drift-kick), order 2, symplectic and time-symmetric.

    .. math::
        p_{1/2} = p_n - \tfrac{h}{2}\nabla V(q_n),\quad
        q_{n+1} = q_n + h\,\nabla T(p_{1/2}),\quad
        p_{n+1} = p_{1/2} - \tfrac{h}{2}\nabla V(q_{n+1})

    One force evaluation per step (the last kick's force is reused by the next step).
    Reported states are synchronised (q and p at the same time).
    Hairer, Lubich & Wanner, Acta Numerica 12, 399 (2003).
    """

    name = "leapfrog"
    order = 2
    kinds, coefs = _table((KICK, 0.5), (DRIFT, 1.0), (KICK, 0.5))


class StormerVerlet(Splitting):
    r"""Störmer–Verlet in position form (drift-kick-drift), order 2, symplectic, time-symmetric.

    .. math::
        q_{1/2} = q_n + \tfrac{h}{2}\nabla T(p_n),\quad
        p_{n+1} = p_n - h\,\nabla V(q_{1/2}),\quad
        q_{n+1} = q_{1/2} + \tfrac{h}{2}\nabla T(p_{n+1})

    Hairer, Lubich & Wanner, Acta Numerica 12, 399 (2003).
    """

    name = "stormer-verlet"
    order = 2
    kinds, coefs = verlet_composition([1.0])


class Yoshida4(Splitting):
    r"""Yoshida / Forest–Ruth 4th-order method: the triple jump
    :math:`\Phi_{w_1 h}\Phi_{w_0 h}\Phi_{w_1 h}` of Störmer–Verlet,
    :math:`w_1 = 1/(2 - 2^{1/3})`, :math:`w_0 = 1 - 2 w_1`. Symplectic, symmetric, 3 forces/step.

    Yoshida, Phys. Lett. A 150, 262 (1990); Forest & Ruth, Physica D 43, 105 (1990).
    """

    name = "yoshida4"
    order = 4
    kinds, coefs = verlet_composition([triple_jump(2)[0], triple_jump(2)[1], triple_jump(2)[0]])


#: Yoshida (1990) 6th-order solution A, weights on Störmer–Verlet.
YOSHIDA6_WEIGHTS = (0.784513610477560, 0.235573213359357, -1.17767998417887, 1.31518632068391,
                    -1.17767998417887, 0.235573213359357, 0.784513610477560)


class Yoshida6(Splitting):
    r"""Yoshida's 6th-order method (solution A): a 7-stage symmetric composition of
    Störmer–Verlet. Symplectic, symmetric, 7 forces/step.

    Yoshida, Phys. Lett. A 150, 262 (1990), Table 1, solution A.
    """

    name = "yoshida6"
    order = 6
    kinds, coefs = verlet_composition(YOSHIDA6_WEIGHTS)


_XI, _LAM, _CHI = 0.1786178958448091, -0.2123418310626054, -0.06626458266981849


class PEFRL(Splitting):
    r"""Position-extended Forest–Ruth-like method of Omelyan, Mryglod & Folk, order 4.

    Drift :math:`\xi`, kick :math:`(1-2\lambda)/2`, drift :math:`\chi`, kick :math:`\lambda`,
    drift :math:`1 - 2(\chi+\xi)`, kick :math:`\lambda`, drift :math:`\chi`, kick
    :math:`(1-2\lambda)/2`, drift :math:`\xi`. Symplectic, symmetric, 4 forces/step, about
    ten times smaller error constant than Yoshida 4.

    Omelyan, Mryglod & Folk, Comput. Phys. Commun. 146, 188 (2002), eq. (20).
    """

    name = "pefrl"
    order = 4
    kinds, coefs = _table((DRIFT, _XI), (KICK, (1 - 2 * _LAM) / 2), (DRIFT, _CHI), (KICK, _LAM),
                          (DRIFT, 1 - 2 * (_CHI + _XI)), (KICK, _LAM), (DRIFT, _CHI),
                          (KICK, (1 - 2 * _LAM) / 2), (DRIFT, _XI))
