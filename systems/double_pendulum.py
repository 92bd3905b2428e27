"""The double pendulum in canonical coordinates: a non-separable Hamiltonian."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .base import System


@nb.njit(cache=True, error_model="numpy")
def _dp_parts(q, p, params):
    m1, m2, l1, l2 = params[0], params[1], params[2], params[3]
    delta = q[0] - q[1]
    c, s = math.cos(delta), math.sin(delta)
    den = m1 + m2 * s * s
    cc = 2.0 * m2 * l1 * l1 * l2 * l2
    num = m2 * l2 * l2 * p[0] * p[0] + (m1 + m2) * l1 * l1 * p[1] * p[1] - 2.0 * m2 * l1 * l2 * p[0] * p[1] * c
    return m1, m2, l1, l2, c, s, den, cc, num


@nb.njit(cache=True, error_model="numpy")
def _dp_dHdq(q, p, params, iw, fw, out):
    m1, m2, l1, l2, c, s, den, cc, num = _dp_parts(q, p, params)
    g = params[4]
    dnum = 2.0 * m2 * l1 * l2 * p[0] * p[1] * s
    dden = 2.0 * m2 * s * c
    dT = (dnum * den - num * dden) / (cc * den * den)
    out[0] = dT + (m1 + m2) * g * l1 * math.sin(q[0])
    out[1] = -dT + m2 * g * l2 * math.sin(q[1])


@nb.njit(cache=True, error_model="numpy")
def _dp_dHdp(q, p, params, iw, fw, out):
    m1, m2, l1, l2, c, s, den, cc, num = _dp_parts(q, p, params)
    out[0] = (2.0 * m2 * l2 * l2 * p[0] - 2.0 * m2 * l1 * l2 * p[1] * c) / (cc * den)
    out[1] = (2.0 * (m1 + m2) * l1 * l1 * p[1] - 2.0 * m2 * l1 * l2 * p[0] * c) / (cc * den)


@nb.njit(cache=True, error_model="numpy")
def _dp_H(q, p, params, iw, fw):
    m1, m2, l1, l2, c, s, den, cc, num = _dp_parts(q, p, params)
    g = params[4]
    return num / (cc * den) - (m1 + m2) * g * l1 * math.cos(q[0]) - m2 * g * l2 * math.cos(q[1])


class DoublePendulum(System):
    r"""Planar double pendulum; q = angles from the downward vertical, p = canonical momenta.

    With :math:`\Delta = \theta_1 - \theta_2`,

    .. math::
        H = \frac{m_2 l_2^2 p_1^2 + (m_1 + m_2) l_1^2 p_2^2 - 2 m_2 l_1 l_2 p_1 p_2 \cos\Delta}
                 {2 m_2 l_1^2 l_2^2 \left(m_1 + m_2 \sin^2\Delta\right)}
            - (m_1 + m_2) g l_1 \cos\theta_1 - m_2 g l_2 \cos\theta_2

    The kinetic term depends on q: H is **not separable**, so explicit splitting methods
    refuse it; use implicit midpoint, Tao or RK4. State shape ``(2, 1)``.

    Parameters
    ----------
    m1, m2 : float
        Bob masses, > 0.
    l1, l2 : float
        Rod lengths, > 0.
    g : float
        Gravitational acceleration, > 0.
    """

    name = "double-pendulum"
    separable = False
    defaults = {"m1": 1.0, "m2": 1.0, "l1": 1.0, "l2": 1.0, "g": 9.81}
    positive = ("m1", "m2", "l1", "l2", "g")
    dHdq = staticmethod(_dp_dHdq)
    dHdp = staticmethod(_dp_dHdp)
    hamiltonian = staticmethod(_dp_H)

    def state_shape(self):
        return (2, 1)

    def masses(self):
        return np.array([self.m1, self.m2])

    def default_state(self):
        return np.array([[1.0], [0.5]]), np.array([[0.0], [0.0]])
