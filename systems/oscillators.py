"""One-degree-of-freedom oscillators: the mass-spring and the ideal pendulum.

Both have a *lane* view (``integrators.lanes``): ``dHdq_lanes(Q, P, params, out)`` and
``dHdp_lanes`` over blocks ``[1, W]`` of ensemble members, registered with
:func:`integrators.lanes.register_lanes`, so that large ensembles run as SIMD lanes. Each lane
performs exactly its member function's operations. The pendulum's ``sin`` and ``cos`` are
``vector_math.sin_fast`` and ``cos_fast`` in every view (< 1 ulp; a vectorisable Cody-Waite
path for ``|q| < 2^20`` and the exact reduction beyond), so a member's bits never depend on
the view or on its neighbours.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from integrators.lanes import register_lanes

from . import vector_math as vm
from .base import System


@nb.njit(cache=True, error_model="numpy")
def _spring_dHdq(q, p, params, iw, fw, out):
    out[0] = params[1] * q[0]


@nb.njit(cache=True, error_model="numpy")
def _spring_dHdp(q, p, params, iw, fw, out):
    out[0] = p[0] / params[0]


@nb.njit(cache=True, error_model="numpy")
def _spring_H(q, p, params, iw, fw):
    return 0.5 * p[0] * p[0] / params[0] + 0.5 * params[1] * q[0] * q[0]


@nb.njit(cache=True, error_model="numpy")
def _spring_dHdq_lanes(Q, P, params, out):
    k = params[1]
    for l in range(Q.shape[1]):
        out[0, l] = k * Q[0, l]


@nb.njit(cache=True, error_model="numpy")
def _spring_dHdp_lanes(Q, P, params, out):
    m = params[0]
    for l in range(Q.shape[1]):
        out[0, l] = P[0, l] / m


register_lanes(_spring_dHdq, _spring_dHdp, _spring_dHdq_lanes, _spring_dHdp_lanes)


class _OneDegree(System):
    """A single coordinate with a mass parameter; state shape ``(1, 1)``, default q = 1, p = 0."""

    def state_shape(self):
        return (1, 1)

    def masses(self):
        return np.array([self.mass])

    def default_state(self):
        return np.array([[1.0]]), np.array([[0.0]])


class HarmonicOscillator(_OneDegree):
    r"""Mass on a linear spring (the HNN paper's mass-spring task).

    .. math:: H(q, p) = \frac{p^2}{2m} + \frac{k q^2}{2}

    State shape ``(1, 1)``. Separable. Exact solution with :math:`\omega = \sqrt{k/m}`:
    :math:`q(t) = q_0\cos\omega t + \frac{p_0}{m\omega}\sin\omega t`,
    :math:`p(t) = p_0\cos\omega t - m\omega q_0\sin\omega t` (:meth:`exact`).

    Parameters
    ----------
    mass : float
        Mass :math:`m > 0`.
    k : float
        Spring constant :math:`k > 0`.
    """

    name = "harmonic-oscillator"
    separable = True
    defaults = {"mass": 1.0, "k": 1.0}
    positive = ("mass", "k")
    dHdq = staticmethod(_spring_dHdq)
    dHdp = staticmethod(_spring_dHdp)
    hamiltonian = staticmethod(_spring_H)

    @property
    def omega(self) -> float:
        """Angular frequency :math:`\\sqrt{k/m}`."""
        return math.sqrt(self.k / self.mass)

    def exact(self, q0: float, p0: float, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form ``(q(t), p(t))`` from ``(q0, p0)`` at times ``t`` (any shape)."""
        w, m = self.omega, self.mass
        t = np.asarray(t, dtype=np.float64)
        c, s = np.cos(w * t), np.sin(w * t)
        return q0 * c + p0 / (m * w) * s, p0 * c - m * w * q0 * s


@nb.njit(cache=True, error_model="numpy")
def _pendulum_dHdq(q, p, params, iw, fw, out):
    out[0] = params[0] * params[2] * params[1] * vm.sin_fast(q[0])


@nb.njit(cache=True, error_model="numpy")
def _pendulum_dHdp(q, p, params, iw, fw, out):
    out[0] = p[0] / (params[0] * params[1] * params[1])


@nb.njit(cache=True, error_model="numpy")
def _pendulum_H(q, p, params, iw, fw):
    m, l, g = params[0], params[1], params[2]
    return 0.5 * p[0] * p[0] / (m * l * l) + m * g * l * (1.0 - vm.cos_fast(q[0]))


@nb.njit(cache=True, error_model="numpy")
def _pendulum_dHdq_lanes(Q, P, params, out):
    """``out[0, l] = m g l sin_fast(Q[0, l])``: the Cody-Waite path for the whole block
    (vectorised), then, only if some ``|q| >= 2^20`` or non-finite, those lanes again."""
    k = params[0] * params[2] * params[1]
    w = Q.shape[1]
    beyond = 0
    for l in range(w):
        x = Q[0, l]
        out[0, l] = k * vm.sin_fast_core(x)
        beyond |= vm.beyond_fast(x)
    if beyond:
        for l in range(w):
            x = Q[0, l]
            if vm.beyond_fast(x):
                out[0, l] = k * vm.sin_fast(x)


@nb.njit(cache=True, error_model="numpy")
def _pendulum_dHdp_lanes(Q, P, params, out):
    d = params[0] * params[1] * params[1]
    for l in range(Q.shape[1]):
        out[0, l] = P[0, l] / d


register_lanes(_pendulum_dHdq, _pendulum_dHdp, _pendulum_dHdq_lanes, _pendulum_dHdp_lanes)


class Pendulum(_OneDegree):
    r"""Ideal plane pendulum; q is the angle from the downward vertical, p the angular momentum.

    .. math:: H(q, p) = \frac{p^2}{2 m l^2} + m g l\,(1 - \cos q)

    State shape ``(1, 1)``. Separable. Small-amplitude period :math:`2\pi\sqrt{l/g}`; the
    exact period at amplitude :math:`q_0` (from rest) is :math:`4\sqrt{l/g}\,K(\sin^2(q_0/2))`
    (:meth:`period`).

    Parameters
    ----------
    mass : float
        Bob mass :math:`m > 0`.
    length : float
        Rod length :math:`l > 0`.
    g : float
        Gravitational acceleration :math:`g > 0`.
    """

    name = "pendulum"
    separable = True
    defaults = {"mass": 1.0, "length": 1.0, "g": 9.81}
    positive = ("mass", "length", "g")
    dHdq = staticmethod(_pendulum_dHdq)
    dHdp = staticmethod(_pendulum_dHdp)
    hamiltonian = staticmethod(_pendulum_H)

    def period(self, amplitude: float) -> float:
        """Exact period of a libration released from rest at angle ``amplitude`` (< pi)."""
        from scipy.special import ellipk

        return 4.0 * math.sqrt(self.length / self.g) * float(ellipk(math.sin(amplitude / 2.0) ** 2))
