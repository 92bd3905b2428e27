r"""Lennard-Jones particles in an orthorhombic periodic box (reduced units, :math:`k_B = 1`).

.. math::
    H = \sum_i \frac{|p_i|^2}{2m} + \sum_{i<j} u(r_{ij}), \qquad
    u(r) = 4\varepsilon\left[(\sigma/r)^{12} - (\sigma/r)^6\right] - u_c(r), \quad r < r_c

with the minimum-image distance :math:`r_{ij}` and, beyond the cutoff :math:`r_c`,
:math:`u = 0`. ``shift="energy"`` (default) is LAMMPS's ``pair_style lj/cut`` with
``pair_modify shift yes``: :math:`u_c = u_{LJ}(r_c)`, continuous energy, a small jump of
the force at :math:`r_c`. ``shift="force"`` is the shifted-force potential,
:math:`u_c(r) = u_{LJ}(r_c) + (r - r_c)\,u_{LJ}'(r_c)`, continuous force (no energy drift
from pairs crossing the cutoff; Toxvaerd & Dyre, J. Chem. Phys. 134, 081102 (2011)).

Forces come from a full Verlet list with a skin, built from a cell list and kept in the
per-member workspace (:mod:`systems.neighbours`); the list is checked at every force call
and rebuilt inside the kernel when a particle has moved half the skin. Positions are
integrated and written **unwrapped** (continuous trajectories: reversal, symplecticity and
resume need no image bookkeeping); the box is applied through the minimum image, which
the list holds for each pair: each entry names the periodic image of the neighbour nearest
to the particle, kept up to date as particles cross the faces of the box.

References: J. E. Lennard-Jones, Proc. R. Soc. A 106, 463 (1924); M. P. Allen &
D. J. Tildesley, *Computer Simulation of Liquids*, 2nd ed. (2017), ch. 1, 2 and 5.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Tuple

import numba as nb
import numpy as np

from integrators.base import Workspace
from integrators.errors import InputError, InputTypeError

from .base import System
from .neighbours import (HEADER, IMAGE_MASK, IMAGE_SHIFT, MAX_PARTICLES, OVERFLOW, cell_grid, claim, ensure_list,
                         half_pairs, image_shifts, lists, workspace_sizes, wrapped)

# params layout
_EPS, _SIG, _RC, _SKIN, _MASS, _LX, _LY, _LZ, _UC, _FC, _FSHIFT, _NCX, _NCY, _NCZ, _SPAN = range(15)

#: fcc basis in units of the cubic lattice constant (LAMMPS's ``lattice fcc``)
FCC_BASIS = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])


#: particles per chunk of the force loop (its threads claim chunks until none is left)
_CHUNK = 64


@nb.njit(inline="always", error_model="numpy")
def _pair_terms(xi, yi, zi, gx, gy, gz, c, rc2, sig2, eps24, fc):
    """Overwrite ``g[:c]`` (neighbour positions, at their images) with the force terms
    ``(|F|/r) d`` on particle i: no reduction and no gather in the loop, so LLVM vectorises
    it; pairs beyond the cutoff (the skin) give exact zeros. ``fc != 0`` adds the
    shifted-force term."""
    for k in range(c):
        dx = xi - gx[k]
        dy = yi - gy[k]
        dz = zi - gz[k]
        r2 = dx * dx + dy * dy + dz * dz
        ir2 = 1.0 / r2
        sr2 = sig2 * ir2
        sr6 = sr2 * sr2 * sr2
        f = eps24 * sr6 * (2.0 * sr6 - 1.0) * ir2
        if fc != 0.0:
            f -= fc / math.sqrt(r2)
        f = f if r2 < rc2 else 0.0
        gx[k] = f * dx
        gy[k] = f * dy
        gz[k] = f * dz


def _lj_pair_forces(params, iw, fw, n, out, tasks):
    """out = dV/dq from the list in ``iw`` and the wrapped positions in ``fw``.

    Per particle: gather its neighbours' positions, each at the image its list entry
    names, into contiguous buffers (the separation is then a plain difference), compute
    every pair term in one vectorised loop, then sum the terms in list order. Lists are
    sorted and skin pairs add exact zeros, so the sum visits the same nonzero terms in the
    same order whatever list holds them (forces independent of the list's history).
    ``tasks`` threads (``prange``) claim chunks of ``_CHUNK`` particles until none is left
    (:func:`~systems.neighbours.claim`); no two write the same entry, and the arithmetic per
    particle does not depend on the thread count or on which thread takes it.
    """
    eps24 = 24.0 * params[_EPS]
    sig2 = params[_SIG] * params[_SIG]
    rc2 = params[_RC] * params[_RC]
    fc = params[_FC]
    cap = iw[1]
    nbr, _ = lists(iw, n)
    sx, sy, sz = image_shifts(params[_LX:_LZ + 1])
    w = wrapped(fw, n)
    chunks = (n + _CHUNK - 1) // _CHUNK
    next_chunk = np.zeros(1, dtype=np.int64)
    for _ in nb.prange(tasks):
        gx = np.empty(cap)
        gy = np.empty(cap)
        gz = np.empty(cap)
        while True:
            chunk = claim(next_chunk)
            if chunk >= chunks:
                break
            for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
                base = i * cap
                c = iw[HEADER + i]
                for k in range(c):
                    e = nbr[base + k]
                    j = e >> IMAGE_SHIFT
                    s = e & IMAGE_MASK
                    j4 = j << np.uint32(2)
                    gx[k] = w[j4] + sx[s]
                    gy[k] = w[j4 + np.uint32(1)] + sy[s]
                    gz[k] = w[j4 + np.uint32(2)] + sz[s]
                if fc != 0.0:
                    _pair_terms(w[4 * i], w[4 * i + 1], w[4 * i + 2], gx, gy, gz, c, rc2, sig2, eps24, fc)
                else:
                    _pair_terms(w[4 * i], w[4 * i + 1], w[4 * i + 2], gx, gy, gz, c, rc2, sig2, eps24, 0.0)
                fx = 0.0
                fy = 0.0
                fz = 0.0
                for k in range(c):
                    fx += gx[k]
                    fy += gy[k]
                    fz += gz[k]
                out[3 * i] = -fx
                out[3 * i + 1] = -fy
                out[3 * i + 2] = -fz


_forces_serial = nb.njit(error_model="numpy", cache=True)(_lj_pair_forces)
_forces_parallel = nb.njit(error_model="numpy", parallel=True)(_lj_pair_forces)


@nb.njit(inline="always", error_model="numpy")
def _list(q, params, iw, fw, n, tasks):
    reach = params[_RC] + params[_SKIN]
    edges = params[_LX:_LZ + 1]
    grid = params[_NCX:_SPAN + 1].astype(np.int64)
    return ensure_list(q, edges, reach * reach, 0.25 * params[_SKIN] * params[_SKIN], grid, iw, fw, n, tasks)


@nb.njit(error_model="numpy", cache=True)
def _lj_dHdq(q, p, params, iw, fw, out):
    n = q.shape[0] // 3
    if not _list(q, params, iw, fw, n, 1):
        out[:] = np.nan  # the list overflowed: never a force from a truncated list
        return
    _forces_serial(params, iw, fw, n, out, 1)


@nb.njit(error_model="numpy")
def _lj_dHdq_parallel(q, p, params, iw, fw, out):
    n = q.shape[0] // 3
    tasks = nb.get_num_threads()
    if not _list(q, params, iw, fw, n, tasks):
        out[:] = np.nan
        return
    _forces_parallel(params, iw, fw, n, out, tasks)


@nb.njit(error_model="numpy", cache=True)
def _lj_dHdp(q, p, params, iw, fw, out):
    inv_m = 1.0 / params[_MASS]
    for i in range(q.shape[0]):
        out[i] = p[i] * inv_m


@nb.njit(error_model="numpy", cache=True)
def _lj_potential_virial(q, params, iw, fw):
    """``(V, W)``: potential energy and pair virial :math:`W = \\sum_{i<j} r_{ij} \\cdot F_{ij}`
    (each pair once: half the full-list sums, accumulated per particle in index order)."""
    n = q.shape[0] // 3
    if not _list(q, params, iw, fw, n, 1):
        return np.nan, np.nan
    eps4 = 4.0 * params[_EPS]
    sig2 = params[_SIG] * params[_SIG]
    rc = params[_RC]
    rc2 = rc * rc
    uc, fc = params[_UC], params[_FC]
    fshift = params[_FSHIFT] != 0.0
    sx, sy, sz = image_shifts(params[_LX:_LZ + 1])
    cap = iw[1]
    nbr, _ = lists(iw, n)
    w4 = wrapped(fw, n)
    energy = 0.0
    virial = 0.0
    for i in range(n):
        e = 0.0
        w = 0.0
        for k in range(iw[HEADER + i]):
            entry = nbr[i * cap + k]
            j = entry >> IMAGE_SHIFT
            s = entry & IMAGE_MASK
            dx = w4[4 * i] - (w4[4 * j] + sx[s])
            dy = w4[4 * i + 1] - (w4[4 * j + 1] + sy[s])
            dz = w4[4 * i + 2] - (w4[4 * j + 2] + sz[s])
            r2 = dx * dx + dy * dy + dz * dz
            if r2 < rc2:
                sr2 = sig2 / r2
                sr6 = sr2 * sr2 * sr2
                e += eps4 * sr6 * (sr6 - 1.0) - uc
                rf = 6.0 * eps4 * sr6 * (2.0 * sr6 - 1.0)  # r * |F|
                if fshift:
                    r = math.sqrt(r2)
                    e += (r - rc) * fc
                    rf -= fc * r
                w += rf
        energy += 0.5 * e
        virial += 0.5 * w
    return energy, virial


@nb.njit(error_model="numpy", cache=True)
def _lj_H(q, p, params, iw, fw):
    kinetic = 0.0
    for i in range(p.shape[0]):
        kinetic += p[i] * p[i]
    return 0.5 * kinetic / params[_MASS] + _lj_potential_virial(q, params, iw, fw)[0]


@nb.njit(error_model="numpy", cache=True)
def _batch_virial(params, iw, fw, Q, out):
    for m in range(Q.shape[0]):
        out[m] = _lj_potential_virial(Q[m], params, iw, fw)[1]


def _lj_energy_at(r: float, epsilon: float, sigma: float) -> Tuple[float, float]:
    """Unshifted ``u(r)`` and ``-du/dr`` (the pair force)."""
    sr6 = (sigma / r) ** 6
    return 4.0 * epsilon * sr6 * (sr6 - 1.0), 24.0 * epsilon * sr6 * (2.0 * sr6 - 1.0) / r


class LennardJones(System):
    r"""Lennard-Jones atoms in a periodic orthorhombic box, truncated and shifted at a cutoff.

    .. math:: H = \sum_i \frac{|p_i|^2}{2m} + \sum_{i<j,\ r_{ij} < r_c} \left(4\varepsilon
              \left[(\sigma/r_{ij})^{12} - (\sigma/r_{ij})^6\right] - u_c\right)

    State shape ``(N, 3)``, positions unwrapped. Separable. By default the box is an fcc
    lattice of ``n_cells``:sup:`3` cubic cells (``N = 4 n_cells``:sup:`3`) at number
    density ``density``; give ``n_atoms`` and ``box`` for any other box. Observables
    beyond the energies: ``temperature`` :math:`T = 2K/(3N - 3)` (zero total momentum,
    LAMMPS's convention) and ``pressure`` :math:`P = (2K + W)/(3V)` with the pair virial
    :math:`W = \sum_{i<j} r_{ij}\cdot F_{ij}`.

    Parameters
    ----------
    n_cells : int
        fcc cells per side (ignored when ``box`` is given).
    density : float
        Number density :math:`N/V` of the lattice (ignored when ``box`` is given).
    epsilon, sigma : float
        Well depth and diameter, > 0.
    cutoff : float
        :math:`r_c > 0`; the box must be at least :math:`2(r_c + \text{skin})` wide.
    skin : float
        Verlet-list skin, > 0: the list holds pairs within :math:`r_c + \text{skin}` and is
        rebuilt when a particle has moved half of it.
    mass : float
        Particle mass, > 0.
    shift : {"energy", "force"}
        Energy-shifted (LAMMPS ``shift yes``) or shifted-force potential.
    n_atoms : int, optional
        Number of atoms, with ``box``.
    box : sequence of 3 floats, optional
        Box edges.

    Examples
    --------
    >>> lj = LennardJones(n_cells=6, density=0.8442)      # 864 atoms, the classic benchmark
    >>> q0, p0 = lj.lattice_state(temperature=0.72, seed=1)
    """

    name = "lennard-jones"
    separable = True
    defaults = {"n_cells": 6, "density": 0.8442, "epsilon": 1.0, "sigma": 1.0, "cutoff": 2.5, "skin": 0.3,
                "mass": 1.0}
    positive = ("n_cells", "density", "epsilon", "sigma", "cutoff", "skin", "mass")
    structural = ("n_cells", "density", "sigma", "cutoff", "skin")  # sigma: the length scale against the box
    smooth = False  # C0 (shift energy) or C1 (shift force) at the cutoff
    dHdq = staticmethod(_lj_dHdq)
    dHdp = staticmethod(_lj_dHdp)
    hamiltonian = staticmethod(_lj_H)

    def __init__(self, *, shift: str = "energy", n_atoms: Optional[int] = None, box: Any = None,
                 **parameters: float):
        super().__init__(**parameters)
        n_cells = self._values["n_cells"]
        if n_cells != int(n_cells):
            raise InputError(f"LennardJones n_cells must be a whole number of fcc cells per side, got {n_cells!r}")
        if shift not in ("energy", "force"):
            raise InputError(f"LennardJones shift must be 'energy' (LAMMPS shift yes) or 'force' "
                             f"(shifted force), got {shift!r}")
        self.shift = shift
        if (n_atoms is None) != (box is None):
            raise InputError("give both n_atoms and box (a box of your own), or neither (an fcc lattice of "
                             "n_cells^3 cells at the given density)")
        if box is None:
            self.n_atoms = 4 * int(n_cells) ** 3
            edge = int(n_cells) * (4.0 / self._values["density"]) ** (1.0 / 3.0)
            self.box = np.full(3, edge)
            self._custom_box = False
        else:
            if isinstance(n_atoms, (bool, np.bool_)) or not isinstance(n_atoms, numbers.Integral) or n_atoms < 2:
                raise InputTypeError(f"LennardJones n_atoms must be an integer >= 2, got {n_atoms!r}")
            edges = np.asarray(box, dtype=np.float64).reshape(-1)
            if edges.shape == (1,):
                edges = np.repeat(edges, 3)
            if edges.shape != (3,) or not np.all(np.isfinite(edges)) or np.any(edges <= 0):
                raise InputError(f"LennardJones box must be 3 finite edges > 0 (or one for a cube), got {box!r}")
            self.n_atoms = int(n_atoms)
            self.box = edges
            self._custom_box = True
        if self.n_atoms > MAX_PARTICLES:
            raise InputError(f"LennardJones holds at most {MAX_PARTICLES} atoms (the neighbour list's 32-bit "
                             f"entries), got {self.n_atoms}")
        rc, skin, eps, sig = (self._values[k] for k in ("cutoff", "skin", "epsilon", "sigma"))
        need = 2.0 * (rc + skin)
        if np.any(self.box < need):
            raise InputError(
                f"the box {np.round(self.box, 6).tolist()} is shorter than twice the cutoff plus skin "
                f"(2 * ({rc} + {skin}) = {need}): a particle would meet two images of another. Use more "
                "atoms (n_cells), a lower density, or a shorter cutoff or skin")
        u_rc, f_rc = _lj_energy_at(rc, eps, sig)
        grid = cell_grid(self.box, rc + skin, self.n_atoms)
        extra = [u_rc, f_rc if shift == "force" else 0.0, 1.0 if shift == "force" else 0.0]
        self.params = np.concatenate([self.params[2:], self.box, extra, grid.astype(np.float64)])
        # params: epsilon, sigma, cutoff, skin, mass (the defaults after n_cells, density), box, shift terms, cells
        assert self.params.shape == (15,)

    # -- description ---------------------------------------------------------------
    @property
    def parameters(self) -> Dict[str, Any]:
        out: Dict[str, Any] = dict(self._values)
        out["n_cells"] = int(out["n_cells"])
        if self.shift != "energy":
            out["shift"] = self.shift
        if self._custom_box:
            for key in ("n_cells", "density"):
                out.pop(key)
            out["n_atoms"] = self.n_atoms
            out["box"] = self.box.tolist()
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.parameters.items())})"

    def state_shape(self):
        return (self.n_atoms, 3)

    def masses(self):
        return np.full(self.n_atoms, self._values["mass"])

    @property
    def volume(self) -> float:
        return float(np.prod(self.box))

    # -- the kernels' view ----------------------------------------------------------
    def kernel_functions(self, parallel: bool = False):
        return (_lj_dHdq_parallel if parallel else _lj_dHdq), _lj_dHdp

    def _capacity(self) -> int:
        """Neighbours per atom a new list holds: 1.5 x the ideal-gas count within r_c + skin, + 16."""
        reach = self._values["cutoff"] + self._values["skin"]
        expected = 4.0 / 3.0 * math.pi * reach ** 3 * self.n_atoms / self.volume
        return int(min(self.n_atoms - 1, 1.5 * expected + 16))

    def workspace(self, members: int, capacity: Optional[int] = None) -> Workspace:
        cap = self._capacity() if capacity is None else int(capacity)
        ncell = int(np.prod(self.params[_NCX:_NCZ + 1]))
        ni, nf = workspace_sizes(self.n_atoms, cap, ncell)
        iwork = np.zeros((members, ni), dtype=np.int64)
        iwork[:, 1] = cap
        return Workspace(iwork, np.full((members, nf), np.nan))

    def grow_workspace(self, work: Workspace) -> bool:
        over = work.iwork[:, 0] == OVERFLOW
        if not np.any(over):
            return False
        need = int(work.iwork[over, 2].max())
        grown = self.workspace(work.members, capacity=min(self.n_atoms - 1, need + need // 4 + 8))
        work.iwork, work.fwork = grown.iwork, grown.fwork
        return True

    # -- states ---------------------------------------------------------------------
    def lattice_positions(self) -> np.ndarray:
        """fcc lattice sites filling the box, shape ``(N, 3)`` (needs the lattice constructor,
        or a cubic box holding ``4 k^3`` atoms)."""
        k = round((self.n_atoms / 4) ** (1.0 / 3.0))
        if 4 * k ** 3 != self.n_atoms or not np.allclose(self.box, self.box[0]):
            raise InputError(
                f"{self.n_atoms} atoms in the box {self.box.tolist()} do not fill an fcc lattice: it needs a cube "
                f"and N = 4 k^3 (32, 108, 256, 500, 864, ...); pass your own positions as q0 instead")
        a = self.box[0] / k
        cells = np.stack(np.meshgrid(np.arange(k), np.arange(k), np.arange(k), indexing="ij"), axis=-1).reshape(-1, 3)
        return ((cells[:, None, :] + FCC_BASIS[None, :, :]) * a).reshape(-1, 3)

    def thermal_momenta(self, temperature: float, seed: Any = None) -> np.ndarray:
        """Maxwell-Boltzmann momenta with zero total momentum, scaled so that the
        temperature :math:`2K/(3N-3)` is exactly ``temperature``; shape ``(N, 3)``."""
        t = float(temperature)
        if not math.isfinite(t) or t < 0:
            raise InputError(f"temperature must be finite and >= 0, got {temperature!r}")
        m = self._values["mass"]
        rng = np.random.default_rng(seed)
        v = rng.standard_normal((self.n_atoms, 3))
        v -= v.mean(axis=0)
        now = m * np.sum(v * v) / (3 * self.n_atoms - 3)
        return m * v * math.sqrt(t / now) if now > 0 else np.zeros_like(v)

    def lattice_state(self, temperature: float = 0.72, seed: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        """fcc positions and Maxwell-Boltzmann momenta at ``temperature`` (zero total momentum)."""
        return self.lattice_positions(), self.thermal_momenta(temperature, seed)

    def default_state(self):
        return self.lattice_state(0.72, seed=0)

    def check_state(self, q: np.ndarray) -> None:
        """Refuse overlapping atoms (r = 0: infinite force) in flat states ``[M, 3N]``."""
        for m, x in enumerate(np.asarray(q, dtype=np.float64).reshape(-1, self.n_atoms, 3)):
            close = self.neighbour_pairs(x, cutoff=1e-3 * self._values["sigma"])
            if close.size:
                i, j = close[0]
                member = f" of member {m}" if q.shape[0] > 1 else ""
                raise InputError(f"atoms {i} and {j}{member} overlap (distance < 1e-3 sigma): the Lennard-Jones force "
                                 "is infinite there; separate them (e.g. start from lattice_state())")

    # -- analysis -------------------------------------------------------------------
    def neighbour_pairs(self, points: Any, cutoff: float) -> np.ndarray:
        """Pairs ``i < j`` closer than ``cutoff`` (minimum image in this box), sorted, ``[M, 2]``."""
        x = np.ascontiguousarray(points, dtype=np.float64).reshape(-1)
        n = x.size // 3
        if x.size != 3 * n or n < 1:
            raise InputError(f"points must have shape (N, 3), got {np.shape(points)}")
        cutoff = float(cutoff)
        if not 0 < cutoff <= 0.5 * self.box.min():
            raise InputError(f"cutoff must be > 0 and at most half the shortest box edge "
                             f"({0.5 * self.box.min()}), got {cutoff}")
        grid = cell_grid(self.box, cutoff, n)
        cap = max(16, min(n - 1, int(2.0 * 4.0 / 3.0 * math.pi * cutoff ** 3 * n / self.volume) + 16))
        while True:
            ni, nf = workspace_sizes(n, cap, int(np.prod(grid[:3])))
            iw = np.zeros(ni, dtype=np.int64)
            iw[1] = cap
            fw = np.full(nf, np.nan)
            ensure_list(x, self.box, cutoff * cutoff, 0.0, grid, iw, fw, n)
            if iw[0] == 0:
                return half_pairs(iw, n)
            cap = int(iw[2])

    def extra_observables(self, Q: np.ndarray, P: np.ndarray) -> Dict[str, np.ndarray]:
        Q = np.ascontiguousarray(Q, dtype=np.float64)
        P = np.ascontiguousarray(P, dtype=np.float64)
        virial = np.empty(Q.shape[0])
        self._with_workspace(lambda iw, fw: _batch_virial(self.params, iw, fw, Q, virial))
        kinetic = 0.5 * np.einsum("ij,ij->i", P, P) / self._values["mass"]
        return {"temperature": 2.0 * kinetic / (3 * self.n_atoms - 3),
                "pressure": (2.0 * kinetic + virial) / (3.0 * self.volume)}
