"""Two gravitating bodies in the plane (the HNN paper's two-body task)."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from integrators.errors import InputError

from .base import System


@nb.njit(cache=True, error_model="numpy")
def _twobody_dHdq(q, p, params, iw, fw, out):
    m1, m2, G = params[0], params[1], params[2]
    dx = q[0] - q[2]
    dy = q[1] - q[3]
    r2 = dx * dx + dy * dy
    f = G * m1 * m2 / (r2 * math.sqrt(r2))
    out[0] = f * dx
    out[1] = f * dy
    out[2] = -f * dx
    out[3] = -f * dy


@nb.njit(cache=True, error_model="numpy")
def _twobody_dHdp(q, p, params, iw, fw, out):
    out[0] = p[0] / params[0]
    out[1] = p[1] / params[0]
    out[2] = p[2] / params[1]
    out[3] = p[3] / params[1]


@nb.njit(cache=True, error_model="numpy")
def _twobody_H(q, p, params, iw, fw):
    m1, m2, G = params[0], params[1], params[2]
    dx = q[0] - q[2]
    dy = q[1] - q[3]
    kin = 0.5 * (p[0] * p[0] + p[1] * p[1]) / m1 + 0.5 * (p[2] * p[2] + p[3] * p[3]) / m2
    return kin - G * m1 * m2 / math.sqrt(dx * dx + dy * dy)


class TwoBody(System):
    r"""Two point masses attracting by Newtonian gravity, in the plane.

    .. math:: H = \frac{|p_1|^2}{2 m_1} + \frac{|p_2|^2}{2 m_2} - \frac{G m_1 m_2}{|q_1 - q_2|}

    State shape ``(2, 2)``: rows are the bodies, columns x and y; ``ndof = 4`` in the
    order ``(x1, y1, x2, y2)``. Separable. Bound orbits are Kepler ellipses with period
    :math:`T = 2\pi\sqrt{a^3 / (G(m_1 + m_2))}` (:meth:`period`).

    Parameters
    ----------
    m1, m2 : float
        Masses, > 0.
    G : float
        Gravitational constant, > 0.
    """

    name = "two-body"
    separable = True
    defaults = {"m1": 1.0, "m2": 1.0, "G": 1.0}
    positive = ("m1", "m2", "G")
    dHdq = staticmethod(_twobody_dHdq)
    dHdp = staticmethod(_twobody_dHdp)
    hamiltonian = staticmethod(_twobody_H)

    def state_shape(self):
        return (2, 2)

    def masses(self):
        return np.array([self.m1, self.m2])

    def circular_orbit(self, separation: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Circular orbit about the centre of mass at the origin, zero total momentum."""
        m1, m2, G = self.m1, self.m2, self.G
        M = m1 + m2
        v = math.sqrt(G * M / separation)  # relative speed
        q = np.array([[-m2 / M * separation, 0.0], [m1 / M * separation, 0.0]])
        p = np.array([[0.0, -m1 * m2 / M * v], [0.0, m1 * m2 / M * v]])
        return q, p

    def default_state(self):
        return self.circular_orbit(1.0)

    def semi_major_axis(self, q: np.ndarray, p: np.ndarray) -> float:
        r"""Semi-major axis :math:`a = -G m_1 m_2 / (2E)` of the relative orbit (zero total momentum)."""
        E = float(self.energy(q, p))
        if E >= 0:
            raise InputError(f"the orbit is unbound (E = {E} >= 0): no semi-major axis")
        return -self.G * self.m1 * self.m2 / (2.0 * E)

    def period(self, q: np.ndarray, p: np.ndarray) -> float:
        """Kepler period of the bound orbit through ``(q, p)`` (zero total momentum)."""
        a = self.semi_major_axis(q, p)
        return 2.0 * math.pi * math.sqrt(a ** 3 / (self.G * (self.m1 + self.m2)))
