"""The Hénon–Heiles potential: a chaotic two-degree-of-freedom benchmark."""

from __future__ import annotations

import numba as nb
import numpy as np

from .base import System


@nb.njit(cache=True, error_model="numpy")
def _hh_dHdq(q, p, params, iw, fw, out):
    lam = params[0]
    x, y = q[0], q[1]
    out[0] = x + 2.0 * lam * x * y
    out[1] = y + lam * (x * x - y * y)


@nb.njit(cache=True, error_model="numpy")
def _hh_dHdp(q, p, params, iw, fw, out):
    out[0] = p[0]
    out[1] = p[1]


@nb.njit(cache=True, error_model="numpy")
def _hh_H(q, p, params, iw, fw):
    lam = params[0]
    x, y = q[0], q[1]
    return 0.5 * (p[0] * p[0] + p[1] * p[1]) + 0.5 * (x * x + y * y) + lam * (x * x * y - y * y * y / 3.0)


class HenonHeiles(System):
    r"""Hénon–Heiles system (unit masses and frequencies).

    .. math:: H = \tfrac12(p_x^2 + p_y^2) + \tfrac12(x^2 + y^2) + \lambda\left(x^2 y - \tfrac{y^3}{3}\right)

    State shape ``(1, 2)``. Separable. Motion is bounded for :math:`E < 1/(6\lambda^2)`
    and largely chaotic near that energy.

    Parameters
    ----------
    lam : float
        Coupling :math:`\lambda` (1 in Hénon & Heiles, Astron. J. 69, 73 (1964)).
    """

    name = "henon-heiles"
    separable = True
    defaults = {"lam": 1.0}
    dHdq = staticmethod(_hh_dHdq)
    dHdp = staticmethod(_hh_dHdp)
    hamiltonian = staticmethod(_hh_H)

    def state_shape(self):
        return (1, 2)

    def masses(self):
        return np.array([1.0])

    def default_state(self):
        return np.array([[0.0, 0.1]]), np.array([[0.35, 0.0]])
