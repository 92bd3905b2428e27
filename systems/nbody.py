r"""Newtonian gravity of N point masses, with optional Plummer softening.

.. math::
    H = \sum_i \frac{|p_i|^2}{2 m_i}
        - \sum_{i<j} \frac{G m_i m_j}{\sqrt{|q_i - q_j|^2 + \epsilon^2}}

State shape ``(N, D)``, ``D`` = 2 or 3 (in the plane the force is still the 3-D
:math:`1/r^2`), ``N >= 2``. Separable. ``params`` is ``[dim, G, softening, m_0, ..., m_{N-1}]``
(the scalar parameters in the order of :attr:`NBodyGravity.parameters`, then the masses).

The force loop
--------------
``dH/dq`` is the direct O(N^2) sum over pairs, each pair evaluated once (Newton's third
law): row ``i`` runs over the bodies ``j > i``, adds :math:`m_j d_{ij} / r^3` to body i and
subtracts :math:`m_i d_{ij} / r^3` from every body j (``d_ij = q_j - q_i``); at the end
``dH/dq_k = -G m_k A_k``. Positions and masses are first copied into the workspace as
structure-of-arrays rows, so the j-loop reads and writes contiguous memory.

The j-loop of a row is written out as explicit 4-lane vector code (:func:`_make_row_sweep`,
an ``@intrinsic``): four pairs per step with packed ``vsqrtpd``/``vdivpd`` (AVX2) and the
row's own sum kept in a 4-lane register, lane ``l`` adding the pairs ``j = i+1+l, i+5+l, ...``
in order; the lanes are summed as ``(l0 + l1) + (l2 + l3)`` and the last ``(N-i-1) mod 4``
pairs are added one by one. That order is part of the definition of the result, so it
does not depend on the machine's vector width or on any compiler decision. Why not a
plain loop: numba's loop vectoriser cannot vectorise the row's sum (a floating-point
reduction needs reassociation, i.e. ``fastmath``) and numba switches off LLVM's SLP
vectoriser. The plain-numba alternatives measured (N = 1024, AVX2, one core): a
vectorised loop storing the row's terms and a second pass summing them, 2.2 ns per pair;
every pair evaluated twice in a reduction-free "full" loop, 2.5 ns; this loop 1.5 ns
(a packed square root and division alone take 1.1 ns per pair there). No fast-math flag
is used anywhere.

Parallel forces (one ensemble member, ``kernel_functions(parallel=True)``): the rows are
split into ``K`` blocks of about equal pair counts, ``K`` a function of N only (1 below
256 bodies, then ``N // 128`` up to 16). Each block accumulates into its own buffer in
the workspace; the buffers are added in block order. The serial functions run the very
same blocks one after the other, so serial and parallel forces are bit-identical, for
any thread count.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Sequence, Tuple

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from integrators.base import Workspace
from integrators.errors import InputError, InputTypeError

from .base import System

# params layout: the scalars, then the masses
_DIM, _G, _EPS, _MASSES = 0, 1, 2, 3

#: rows per parallel block (a block has about equal pairs; N < 2 * this: one block, no threads)
_ROWS_PER_BLOCK = 128
#: most blocks (each needs a [D, N] buffer in the workspace)
_MAX_BLOCKS = 16

# -- the vectorised row sweep ---------------------------------------------------------------

_f64 = ir.DoubleType()
_i32 = ir.IntType(32)
_LANES = 4
_v4 = ir.VectorType(_f64, _LANES)


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(_v4, ir.Undefined), x, _i32(0))
    zeros = ir.Constant(ir.VectorType(_i32, _LANES), [0] * _LANES)
    return builder.shuffle_vector(v, ir.Constant(_v4, ir.Undefined), zeros)


def _vector_at(builder, row, k):
    return builder.bitcast(builder.gep(row, [k]), _v4.as_pointer())


def _make_row_sweep(dim: int):
    """An intrinsic ``sweep(S, A, i, eps2)`` for ``dim`` dimensions.

    ``S`` is the ``[dim + 1, N]`` C-contiguous array of the coordinates (rows 0..dim-1) and
    masses (row dim); ``A`` the ``[dim, N]`` accumulator. For every ``j > i`` it adds
    ``m_j d / r^3`` to ``A[:, i]`` and subtracts ``m_i d / r^3`` from ``A[:, j]``, with
    ``d = S[:dim, j] - S[:dim, i]``, ``r^2 = |d|^2 + eps2`` (summed x, y, z in that order),
    ``1/r^3 = 1 / (r^2 sqrt(r^2))`` (IEEE sqrt and division, correctly rounded). Four pairs
    per step in vector registers, the remainder one by one; see the module docstring for the
    summation order of ``A[:, i]``.
    """

    @intrinsic
    def sweep(typingctx, S, A, i, eps2):
        ok = all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" and a.dtype == types.float64
                 for a in (S, A))
        if not ok or not isinstance(i, types.Integer) or not isinstance(eps2, types.Float):
            return None
        sig = types.none(S, A, i, eps2)

        def codegen(context, builder, signature, args):
            S_v, A_v, i_v, eps_v = args
            intp = context.get_value_type(types.intp)
            i_v = context.cast(builder, i_v, signature.args[2], types.intp)
            eps_v = context.cast(builder, eps_v, signature.args[3], types.float64)
            s_arr = context.make_array(signature.args[0])(context, builder, S_v)
            a_arr = context.make_array(signature.args[1])(context, builder, A_v)
            n = cgutils.unpack_tuple(builder, s_arr.shape)[1]
            srow = [builder.gep(s_arr.data, [builder.mul(intp(d), n)]) for d in range(dim + 1)]
            arow = [builder.gep(a_arr.data, [builder.mul(intp(d), n)]) for d in range(dim)]
            sqrt_v = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_v4, [_v4]), "llvm.sqrt.v4f64")
            sqrt_s = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_f64, [_f64]), "llvm.sqrt.f64")

            qi = [builder.load(builder.gep(srow[d], [i_v])) for d in range(dim)]
            mi = builder.load(builder.gep(srow[dim], [i_v]))
            start = builder.add(i_v, intp(1))
            count = builder.sub(n, start)
            count = builder.select(builder.icmp_signed(">", count, intp(0)), count, intp(0))
            stop4 = builder.add(start, builder.and_(count, intp(-_LANES)))

            # four pairs per step, the row's sum in four lanes
            qiv = [_splat(builder, x) for x in qi]
            miv = _splat(builder, mi)
            epsv = _splat(builder, eps_v)
            one_v = ir.Constant(_v4, [1.0] * _LANES)
            lanes = [cgutils.alloca_once_value(builder, ir.Constant(_v4, [0.0] * _LANES)) for _ in range(dim)]
            with cgutils.for_range_slice(builder, start, stop4, intp(_LANES)) as (k, _):
                dv = [builder.fsub(builder.load(_vector_at(builder, srow[d], k), align=8), qiv[d]) for d in range(dim)]
                r2 = builder.fmul(dv[0], dv[0])
                for d in range(1, dim):
                    r2 = builder.fadd(r2, builder.fmul(dv[d], dv[d]))
                r2 = builder.fadd(r2, epsv)
                w = builder.fdiv(one_v, builder.fmul(r2, builder.call(sqrt_v, [r2])))
                a = builder.fmul(builder.load(_vector_at(builder, srow[dim], k), align=8), w)
                b = builder.fmul(miv, w)
                for d in range(dim):
                    builder.store(builder.fadd(builder.load(lanes[d]), builder.fmul(a, dv[d])), lanes[d])
                    ptr = _vector_at(builder, arow[d], k)
                    builder.store(builder.fsub(builder.load(ptr, align=8), builder.fmul(b, dv[d])), ptr, align=8)
            sums = []
            for d in range(dim):
                v = builder.load(lanes[d])
                e = [builder.extract_element(v, _i32(lane)) for lane in range(_LANES)]
                sums.append(cgutils.alloca_once_value(builder, builder.fadd(builder.fadd(e[0], e[1]),
                                                                            builder.fadd(e[2], e[3]))))

            # the remaining pairs one by one
            with cgutils.for_range_slice(builder, stop4, n, intp(1)) as (j, _):
                ds = [builder.fsub(builder.load(builder.gep(srow[d], [j])), qi[d]) for d in range(dim)]
                r2 = builder.fmul(ds[0], ds[0])
                for d in range(1, dim):
                    r2 = builder.fadd(r2, builder.fmul(ds[d], ds[d]))
                r2 = builder.fadd(r2, eps_v)
                w = builder.fdiv(_f64(1.0), builder.fmul(r2, builder.call(sqrt_s, [r2])))
                a = builder.fmul(builder.load(builder.gep(srow[dim], [j])), w)
                b = builder.fmul(mi, w)
                for d in range(dim):
                    builder.store(builder.fadd(builder.load(sums[d]), builder.fmul(a, ds[d])), sums[d])
                    ptr = builder.gep(arow[d], [j])
                    builder.store(builder.fsub(builder.load(ptr), builder.fmul(b, ds[d])), ptr)
            for d in range(dim):
                ptr = builder.gep(arow[d], [i_v])
                builder.store(builder.fadd(builder.load(ptr), builder.load(sums[d])), ptr)
            return context.get_dummy_value()

        return sig, codegen

    return sweep


_sweep2 = _make_row_sweep(2)
_sweep3 = _make_row_sweep(3)


# -- kernel functions ---------------------------------------------------------------------------

@nb.njit(inline="always", error_model="numpy")
def _n_blocks(n):
    return min(_MAX_BLOCKS, max(1, n // _ROWS_PER_BLOCK))


@nb.njit(inline="always", error_model="numpy")
def _block_starts(n, nblocks, starts):
    """``starts[b]``: first row of block b (``starts[nblocks] = n``), the rows cut where the
    running pair count first reaches ``b * total // nblocks`` (integer arithmetic only)."""
    total = n * (n - 1) // 2
    b = 1
    done = 0
    starts[0] = 0
    for i in range(n):
        while b < nblocks and done >= b * total // nblocks:
            starts[b] = i
            b += 1
        done += n - 1 - i
    while b <= nblocks:
        starts[b] = n
        b += 1


def _gravity(q, params, iw, fw, out):
    """``out = dH/dq``; the source of both the serial and the parallel (``prange``) build."""
    n = params.shape[0] - _MASSES
    dim = q.shape[0] // n
    G = params[_G]
    eps2 = params[_EPS] * params[_EPS]
    ms = params[_MASSES:]
    nblocks = _n_blocks(n)
    base = (dim + 1) * n
    size = dim * n
    if iw.shape[0] < nblocks + 1 or fw.shape[0] < base + nblocks * size:
        iw = np.empty(nblocks + 1, dtype=np.int64)  # not NBodyGravity.workspace(): scratch of our own
        fw = np.empty(base + nblocks * size)
    starts = iw[:nblocks + 1]
    _block_starts(n, nblocks, starts)
    S = fw[:base].reshape((dim + 1, n))
    for k in range(n):
        for d in range(dim):
            S[d, k] = q[k * dim + d]
        S[dim, k] = ms[k]
    for blk in nb.prange(nblocks):
        A = fw[base + blk * size:base + (blk + 1) * size].reshape((dim, n))
        first = starts[blk]
        for d in range(dim):
            for k in range(first, n):
                A[d, k] = 0.0
        for i in range(first, starts[blk + 1]):
            if dim == 3:
                _sweep3(S, A, i, eps2)
            else:
                _sweep2(S, A, i, eps2)
    for k in range(n):
        c = -G * ms[k]
        for d in range(dim):
            s = 0.0
            for blk in range(nblocks):
                if starts[blk] <= k:
                    s += fw[base + blk * size + d * n + k]
            out[k * dim + d] = c * s


_gravity_serial = nb.njit(error_model="numpy", cache=True)(_gravity)
_gravity_parallel = nb.njit(error_model="numpy", parallel=True)(_gravity)


@nb.njit(error_model="numpy", cache=True)
def _nbody_dHdq(q, p, params, iw, fw, out):
    _gravity_serial(q, params, iw, fw, out)


@nb.njit(error_model="numpy")
def _nbody_dHdq_parallel(q, p, params, iw, fw, out):
    if _n_blocks(params.shape[0] - _MASSES) > 1:
        _gravity_parallel(q, params, iw, fw, out)
    else:  # one block: the same arithmetic without starting threads
        _gravity_serial(q, params, iw, fw, out)


@nb.njit(error_model="numpy", cache=True)
def _nbody_dHdp(q, p, params, iw, fw, out):
    n = params.shape[0] - _MASSES
    dim = q.shape[0] // n
    for k in range(n):
        m = params[_MASSES + k]
        for d in range(dim):
            out[k * dim + d] = p[k * dim + d] / m


@nb.njit(error_model="numpy", cache=True)
def _potential(q, params):
    """``V = -G sum_i m_i sum_{j>i} m_j / sqrt(|q_i - q_j|^2 + eps^2)`` (rows in order)."""
    n = params.shape[0] - _MASSES
    dim = q.shape[0] // n
    eps2 = params[_EPS] * params[_EPS]
    total = 0.0
    for i in range(n):
        row = 0.0
        for j in range(i + 1, n):
            r2 = 0.0
            for d in range(dim):
                dd = q[j * dim + d] - q[i * dim + d]
                r2 += dd * dd
            row += params[_MASSES + j] / math.sqrt(r2 + eps2)
        total += params[_MASSES + i] * row
    return -params[_G] * total


@nb.njit(error_model="numpy", cache=True)
def _nbody_H(q, p, params, iw, fw):
    n = params.shape[0] - _MASSES
    dim = q.shape[0] // n
    kin = 0.0
    for k in range(n):
        s = 0.0
        for d in range(dim):
            s += p[k * dim + d] * p[k * dim + d]
        kin += 0.5 * s / params[_MASSES + k]
    return kin + _potential(q, params)


# -- the system -----------------------------------------------------------------------------------

#: the registry default: two binaries, masses 3 + 3 and 2.5 + 2.5 (:meth:`NBodyGravity.binaries_state`)
DEFAULT_MASSES = (3.0, 3.0, 2.5, 2.5)
#: ratio of successive orbit radii in :meth:`NBodyGravity.planetary_state`
PLANET_SPACING = 1.45
_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


class NBodyGravity(System):
    r"""N point masses under Newtonian gravity, in 2 or 3 dimensions.

    .. math:: H = \sum_i \frac{|p_i|^2}{2 m_i}
              - \sum_{i<j} \frac{G m_i m_j}{\sqrt{|q_i - q_j|^2 + \epsilon^2}}

    State shape ``(N, D)``; ``q`` positions, ``p = m v`` momenta. Separable. Total linear
    and angular momentum are conserved by the flow, and exactly (up to rounding) by every
    splitting method: the pair forces are equal, opposite and central.

    Parameters
    ----------
    masses : sequence of float, optional
        One mass per body, each finite and > 0, at least two. Default: two binaries of
        masses 3 + 3 and 2.5 + 2.5 (:data:`DEFAULT_MASSES`, see :meth:`default_state`).
    n_bodies : int, optional
        Instead of ``masses``: ``n_bodies`` equal masses ``1 / n_bodies`` (total mass 1).
    dim : int
        Spatial dimension, 2 or 3.
    G : float
        Gravitational constant, > 0.
    softening : float
        Plummer softening length :math:`\epsilon \ge 0`; 0 is exact Newtonian gravity
        (two bodies at the same place then give a non-finite force, which the kernels
        report as a non-finite state).

    Examples
    --------
    >>> quadruple = NBodyGravity()                                # the registry default, 4 bodies
    >>> cluster = NBodyGravity(n_bodies=1024, softening=0.01)
    >>> q0, p0 = cluster.plummer_state(seed=1)                    # a virialised Plummer sphere
    """

    name = "nbody"
    separable = True
    #: what ``NBodyGravity()`` builds (listed by the registry; validated in ``__init__``)
    defaults = {"masses": list(DEFAULT_MASSES), "dim": 3, "G": 1.0, "softening": 0.0}
    positive = ("masses", "G")
    #: masses and dim set the state shape (N, D); ``params`` is [dim, G, softening, masses]
    structural = ("masses", "dim")
    dHdq = staticmethod(_nbody_dHdq)
    dHdp = staticmethod(_nbody_dHdp)
    hamiltonian = staticmethod(_nbody_H)

    def __init__(self, masses: Optional[Sequence[float]] = None, *, n_bodies: Optional[int] = None, dim: int = 3,
                 G: float = 1.0, softening: float = 0.0, **unknown: Any):
        cls = type(self).__name__
        if unknown:
            raise InputTypeError(f"{cls} got unknown parameter(s) {', '.join(sorted(unknown))}; it takes "
                                 "masses=[m_0, m_1, ...] (or n_bodies=N), dim=3, G=1.0, softening=0.0")
        if masses is not None and n_bodies is not None:
            raise InputError(f"{cls} takes masses or n_bodies, not both; got masses={masses!r} and "
                             f"n_bodies={n_bodies!r}")
        if n_bodies is not None:
            if isinstance(n_bodies, (bool, np.bool_)) or not isinstance(n_bodies, numbers.Integral) or n_bodies < 2:
                raise InputTypeError(f"{cls} n_bodies must be a whole number >= 2, got {n_bodies!r}; "
                                     "or pass masses=[...], one mass per body")
            self._masses = np.full(int(n_bodies), 1.0 / int(n_bodies))
        else:
            self._masses = self._check_masses(DEFAULT_MASSES if masses is None else masses)
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Real):
            raise InputTypeError(f"{cls} parameter dim must be a number, got {dim!r}; the spatial dimension, "
                                 "2 or 3")
        if not math.isfinite(float(dim)):
            raise InputError(f"{cls} parameter dim must be finite, got {float(dim)!r}; the spatial dimension, 2 or 3")
        if float(dim) not in (2.0, 3.0):
            raise InputError(f"{cls} parameter dim must be 2 or 3 (bodies in the plane or in space), got {dim!r}")
        values = {"dim": int(dim)}
        for key, raw in (("G", G), ("softening", softening)):
            if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, numbers.Real):
                raise InputTypeError(f"{cls} parameter {key} must be a number, got {raw!r}")
            value = float(raw)
            if not math.isfinite(value):
                raise InputError(f"{cls} parameter {key} must be finite, got {value!r}")
            values[key] = value
        if values["G"] <= 0.0:
            raise InputError(f"{cls} parameter G must be > 0, got {values['G']!r}")
        if values["softening"] < 0.0:
            raise InputError(f"{cls} parameter softening must be >= 0 (a Plummer softening length; 0 for "
                             f"exact Newtonian gravity), got {values['softening']!r}")
        self._values = values
        self.params = np.concatenate([[float(values["dim"]), values["G"], values["softening"]], self._masses])

    @staticmethod
    def _check_masses(masses: Any) -> np.ndarray:
        cls = "NBodyGravity"
        how = "pass one mass per body, e.g. masses=[1.0, 0.001], or n_bodies=N for N equal masses 1/N"

        def not_a_number(value: Any) -> bool:
            return isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(value, numbers.Real)

        if isinstance(masses, (str, bytes, numbers.Number)) or not hasattr(masses, "__len__"):
            if not_a_number(masses):
                raise InputTypeError(f"{cls} parameter masses must be a number, got {masses!r}, for each body: "
                                     f"a list of masses; {how}")
            raw = np.asarray(masses)
        else:
            raw = np.asarray(masses, dtype=object)
            for k, value in enumerate(raw.reshape(-1)):
                if not_a_number(value):
                    where = f" for body {k}" if raw.ndim == 1 else ""
                    raise InputTypeError(f"{cls} parameter masses must be a number, got {value!r}{where}; {how}")
        arr = raw.astype(np.float64)
        flat = arr.reshape(-1)
        where = (lambda k: f" (body {k})") if arr.ndim else (lambda k: "")
        bad = np.flatnonzero(~np.isfinite(flat))
        if bad.size:
            raise InputError(f"{cls} parameter masses must be finite, got {float(flat[bad[0]])!r}{where(bad[0])}")
        bad = np.flatnonzero(flat <= 0.0)
        if bad.size:
            raise InputError(f"{cls} parameter masses must be > 0, got {float(flat[bad[0]])!r}{where(bad[0])}")
        if arr.ndim != 1 or arr.size < 2:
            found = f"shape {arr.shape}" if arr.ndim != 1 else f"{arr.size} mass" + ("" if arr.size == 1 else "es")
            raise InputError(f"{cls} parameter masses must be a flat list of at least 2 masses, got {found}; {how}")
        return arr

    # -- description ---------------------------------------------------------------
    @property
    def parameters(self) -> Dict[str, Any]:
        return {"masses": self._masses.tolist(), **self._values}

    def __repr__(self) -> str:
        n = self._masses.size
        if n <= 16:
            masses = repr(self._masses.tolist())
        else:
            m = self._masses
            masses = f"[{m[0]!r}, {m[1]!r}, ..., {m[-1]!r}] ({n} bodies)"
        rest = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}(masses={masses}, {rest})"

    @property
    def n_bodies(self) -> int:
        return int(self._masses.size)

    def state_shape(self):
        return (self.n_bodies, self._values["dim"])

    def masses(self):
        return self._masses.copy()

    # -- the kernels' view ----------------------------------------------------------
    def kernel_functions(self, parallel: bool = False):
        return (_nbody_dHdq_parallel if parallel else _nbody_dHdq), _nbody_dHdp

    def workspace(self, members: int) -> Workspace:
        """Per member: block starts (int64, ``K + 1``); positions and masses as rows
        ``[D + 1, N]`` and one ``[D, N]`` accumulator per block (float64). Nothing persists
        between calls: every force call rewrites what it reads (and allocates its own
        scratch when given a smaller workspace)."""
        n, dim = self.state_shape()
        blocks = min(_MAX_BLOCKS, max(1, n // _ROWS_PER_BLOCK))
        return Workspace(np.zeros((members, blocks + 1), dtype=np.int64),
                         np.zeros((members, (dim + 1) * n + blocks * dim * n)))

    # -- states ---------------------------------------------------------------------
    def _to_centre_of_mass_frame(self, q: np.ndarray, v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        m = self._masses[:, None]
        q = q - np.sum(m * q, axis=0) / np.sum(m)
        v = v - np.sum(m * v, axis=0) / np.sum(m)
        return q, m * v

    def planetary_state(self, spacing: float = PLANET_SPACING, radius: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
        """Body 0 in the middle, body k on a circular orbit of radius ``radius * spacing**(k-1)``
        about the bodies inside it (relative speed ``sqrt(G (m_0 + ... + m_k) / r)``), at
        phases a golden angle apart and, in 3-D, inclined by 1-3 degrees about nodes 2 rad
        apart; then moved to the centre-of-mass frame (zero total momentum). Deterministic.

        A planetary system when body 0 dominates; with comparable masses the orbits
        interact strongly (use :meth:`plummer_state` for a cluster)."""
        n, dim = self.state_shape()
        G = self._values["G"]
        q = np.zeros((n, dim))
        v = np.zeros((n, dim))
        for k in range(1, n):
            r = radius * spacing ** (k - 1)
            speed = math.sqrt(G * float(np.sum(self._masses[:k + 1])) / r)
            phase = k * _GOLDEN_ANGLE
            pos = np.array([math.cos(phase), math.sin(phase), 0.0]) * r
            vel = np.array([-math.sin(phase), math.cos(phase), 0.0]) * speed
            if dim == 3:
                node, inc = 2.0 * k, math.radians(1.0 + (k % 3))
                c, s = math.cos(node), math.sin(node)
                rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
                ci, si = math.cos(inc), math.sin(inc)
                rx = np.array([[1.0, 0.0, 0.0], [0.0, ci, -si], [0.0, si, ci]])
                rot = rz @ rx @ rz.T  # tilt by inc about the line of nodes
                pos, vel = rot @ pos, rot @ vel
            q[k] = pos[:dim]
            v[k] = vel[:dim]
        return self._to_centre_of_mass_frame(q, v)

    def plummer_state(self, seed: Any = 0, scale: float = 3.0 * math.pi / 16.0) -> Tuple[np.ndarray, np.ndarray]:
        """A Plummer sphere in virial equilibrium, for the masses of this system.

        Positions and speeds are drawn as in Aarseth, Henon & Wielen, Astron. Astrophys. 37,
        183 (1974): radius from the cumulative mass profile, speed from the isotropic
        distribution function by rejection, directions isotropic (radii beyond 10 ``scale``
        are drawn again). The default ``scale = 3 pi / 16`` is the Plummer radius in Henon
        units (G = M = 1, E = -1/4). Then the centre of mass is put at rest at the origin and
        the velocities are scaled so that ``2 T = -V`` exactly, with this system's softening.
        In 2-D the positions and velocities are the x, y projections of a 3-D sphere (then
        scaled in the same way). Deterministic for a given ``seed``.
        """
        n, dim = self.state_shape()
        rng = np.random.default_rng(seed)
        G, M = self._values["G"], float(np.sum(self._masses))
        q = np.empty((n, 3))
        v = np.empty((n, 3))

        def direction():
            z = rng.uniform(-1.0, 1.0)
            phi = rng.uniform(0.0, 2.0 * math.pi)
            s = math.sqrt(1.0 - z * z)
            return np.array([s * math.cos(phi), s * math.sin(phi), z])

        for k in range(n):
            while True:
                x = rng.uniform(0.0, 1.0)
                if 0.0 < x < 1.0:
                    r = scale / math.sqrt(x ** (-2.0 / 3.0) - 1.0)
                    if r < 10.0 * scale:
                        break
            while True:
                u, w = rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.1)
                if w < u * u * (1.0 - u * u) ** 3.5:
                    break
            v_escape = math.sqrt(2.0 * G * M / math.sqrt(r * r + scale * scale))
            q[k] = r * direction()
            v[k] = u * v_escape * direction()
        q, p = self._to_centre_of_mass_frame(q[:, :dim], v[:, :dim])
        kinetic = 0.5 * float(np.sum(p * p / self._masses[:, None]))
        potential = float(_potential(np.ascontiguousarray(q.reshape(-1)), self.params))
        if kinetic > 0.0:
            p *= math.sqrt(-potential / (2.0 * kinetic))
        return q, p

    def binaries_state(self, separation: float = 1.3, distance: float = 6.0) -> Tuple[np.ndarray, np.ndarray]:
        """Four bodies as two binaries: bodies 0 + 1 and 2 + 3 each on a circular orbit of
        ``separation``, their centres of mass on a circular orbit of ``distance`` (all
        prograde); in 3-D the binaries' planes are tilted by 2 and -3 degrees about the x
        axis. Centre-of-mass frame (zero total momentum). Deterministic.

        The default ``distance / separation = 4.6`` is well inside the stable region of
        hierarchical triples (Mardling & Aarseth, MNRAS 321, 398 (2001)); an equal-mass
        binary on a (nearly) coplanar orbit keeps its eccentricity to octupole order, so
        integrators see a quasi-periodic motion with a bounded energy error."""
        n, dim = self.state_shape()
        if n != 4:
            raise InputError(f"binaries_state needs 4 bodies (two binaries), this system has {n}")
        G = self._values["G"]
        m = self._masses
        q = np.zeros((4, 3))
        v = np.zeros((4, 3))
        ma, mb = m[0] + m[1], m[2] + m[3]
        speed = math.sqrt(G * (ma + mb) / distance)
        centres = (np.array([-mb / (ma + mb) * distance, 0.0, 0.0]), np.array([ma / (ma + mb) * distance, 0.0, 0.0]))
        motions = (np.array([0.0, -mb / (ma + mb) * speed, 0.0]), np.array([0.0, ma / (ma + mb) * speed, 0.0]))
        for (i, j), centre, motion, phase, tilt in (((0, 1), centres[0], motions[0], 0.3, math.radians(2.0)),
                                                   ((2, 3), centres[1], motions[1], 1.9, math.radians(-3.0))):
            mij = m[i] + m[j]
            w = math.sqrt(G * mij / separation)
            d = np.array([math.cos(phase), math.sin(phase), 0.0]) * separation
            u = np.array([-math.sin(phase), math.cos(phase), 0.0]) * w
            if dim == 3:
                c, s = math.cos(tilt), math.sin(tilt)
                rot = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
                d, u = rot @ d, rot @ u
            q[i], q[j] = centre - m[j] / mij * d, centre + m[i] / mij * d
            v[i], v[j] = motion - m[j] / mij * u, motion + m[i] / mij * u
        return self._to_centre_of_mass_frame(q[:, :dim], v[:, :dim])

    def default_state(self):
        """Four bodies: :meth:`binaries_state` (the registry default: two binaries of
        separation 1.3 whose centres orbit 6 apart; fastest linear frequency ~2.4, momenta
        >= 1.5, positions <= 3.5, i.e. O(1) numbers for the generic tests). Otherwise a
        Plummer sphere, :meth:`plummer_state` with seed 0."""
        if self.n_bodies == 4:
            return self.binaries_state()
        return self.plummer_state(seed=0)

    # -- observables ----------------------------------------------------------------
    def extra_observables(self, Q: np.ndarray, P: np.ndarray) -> Dict[str, np.ndarray]:
        """Total linear momentum ``momentum`` ``[M, D]``, angular momentum about the origin
        ``angular_momentum`` (``[M, 3]`` in 3-D, ``[M, 1]``: its z component, in 2-D) and
        ``centre_of_mass`` ``[M, D]``, for flat states ``Q, P`` ``[M, N*D]``."""
        n, dim = self.state_shape()
        q = np.asarray(Q, dtype=np.float64).reshape(-1, n, dim)
        p = np.asarray(P, dtype=np.float64).reshape(-1, n, dim)
        m = self._masses
        if dim == 3:
            angular = np.sum(np.cross(q, p), axis=1)
        else:
            angular = np.sum(q[..., 0] * p[..., 1] - q[..., 1] * p[..., 0], axis=1)[:, None]
        return {"momentum": np.sum(p, axis=1), "angular_momentum": angular,
                "centre_of_mass": np.einsum("k,mkd->md", m, q) / np.sum(m)}
