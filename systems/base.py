"""The :class:`System` interface: a Hamiltonian the kernels can integrate.

To a kernel a system is three numba functions over flat float64 arrays of length
``n = ndof``, one float64 parameter array shared by every member, and one member's
workspace (``iw`` int64, ``fw`` float64; empty for most systems)::

    dHdq(q, p, params, iw, fw, out)   # out[:] = dH/dq
    dHdp(q, p, params, iw, fw, out)   # out[:] = dH/dp
    hamiltonian(q, p, params, iw, fw) -> float

The workspace persists between calls inside a kernel (a particle system keeps its
neighbour list there, rebuilt inside the force call when a particle has moved too far:
see ``docs/architecture.md``, *Kernel interface*).

The Python object validates the physical parameters, describes the system (state shape
``(N, D)``: N particles or bodies in D dimensions, ``ndof = N * D``), gives a default
initial state, and offers vectorised :meth:`System.energy` and
:meth:`System.time_derivative` over any leading batch axes for Python callers.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, ClassVar, Dict, Optional, Tuple

import numba as nb
import numpy as np
from integrators.base import Workspace
from integrators.errors import InputError, InputTypeError


@nb.njit(error_model="numpy")  # no cache: numba cannot cache functions taking dispatchers
def _batch_energy(hamiltonian, params, iw, fw, Q, P, out):
    for i in range(Q.shape[0]):
        out[i] = hamiltonian(Q[i], P[i], params, iw, fw)


@nb.njit(error_model="numpy")  # no cache: numba cannot cache functions taking dispatchers
def _batch_gradients(dHdq, dHdp, params, iw, fw, Q, P, gq, gp):
    for i in range(Q.shape[0]):
        dHdq(Q[i], P[i], params, iw, fw, gq[i])
        dHdp(Q[i], P[i], params, iw, fw, gp[i])


@nb.njit(error_model="numpy")  # no cache: numba cannot cache functions taking dispatchers
def _batch_observables(dHdq, dHdp, hamiltonian, params, iw, fw, Q, P, separable, velocity, force, energy,
                       potential):
    zero = np.zeros(Q.shape[1])
    for i in range(Q.shape[0]):
        dHdp(Q[i], P[i], params, iw, fw, velocity[i])
        dHdq(Q[i], P[i], params, iw, fw, force[i])
        for j in range(Q.shape[1]):
            force[i, j] = -force[i, j]
        energy[i] = hamiltonian(Q[i], P[i], params, iw, fw)
        if separable:
            potential[i] = hamiltonian(Q[i], zero, params, iw, fw)


class System:
    """Base class of Hamiltonian systems.

    Subclasses define the class attributes ``name``, ``separable``, ``defaults`` (parameter
    names and default values, in the order of the ``params`` array the kernels see),
    ``positive`` (parameters that must be > 0), the numba functions ``dHdq``, ``dHdp``,
    ``hamiltonian`` (as ``staticmethod``); and the methods :meth:`state_shape`, :meth:`default_state`.
    """

    name: ClassVar[str] = ""
    separable: ClassVar[bool] = False
    defaults: ClassVar[Dict[str, float]] = {}
    positive: ClassVar[Tuple[str, ...]] = ()
    #: parameters that set the geometry (number of particles, box, cutoff, list) rather than
    #: scale a term of H; ``params`` is then derived from the parameters, not one slot each
    structural: ClassVar[Tuple[str, ...]] = ()
    #: whether H is smooth everywhere (False: a cutoff makes it only C0 or C1 somewhere)
    smooth: ClassVar[bool] = True
    dHdq: Any
    dHdp: Any
    hamiltonian: Any

    def __init__(self, **parameters: float):
        unknown = sorted(set(parameters) - set(self.defaults))
        if unknown:
            raise InputTypeError(
                f"{type(self).__name__} got unknown parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(f'{k}={v!r}' for k, v in self.defaults.items()) or 'no parameters'}"
            )
        values: Dict[str, float] = {}
        for key, default in self.defaults.items():
            raw = parameters.get(key, default)
            if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, numbers.Real):
                raise InputTypeError(f"{type(self).__name__} parameter {key} must be a number, got {raw!r}")
            value = float(raw)
            if not math.isfinite(value):
                raise InputError(f"{type(self).__name__} parameter {key} must be finite, got {value!r}")
            if key in self.positive and value <= 0.0:
                raise InputError(f"{type(self).__name__} parameter {key} must be > 0, got {value!r}")
            values[key] = value
        self._values = values
        self.params = np.array(list(values.values()), dtype=np.float64)

    # -- description -------------------------------------------------------------
    @property
    def parameters(self) -> Dict[str, float]:
        """Physical parameters by name."""
        return dict(self._values)

    def __getattr__(self, key: str) -> float:
        values = self.__dict__.get("_values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {key!r}")

    def state_shape(self) -> Tuple[int, int]:
        """``(N, D)``: particles (or bodies, or angles) and spatial dimension."""
        raise NotImplementedError

    @property
    def shape(self) -> Tuple[int, int]:
        return self.state_shape()

    @property
    def ndof(self) -> int:
        """Degrees of freedom ``N * D`` (length of q, and of p)."""
        n, d = self.state_shape()
        return n * d

    #: edges of the periodic box, shape ``[D]`` (``None``: open space); see :attr:`box`
    box: Optional[np.ndarray] = None

    # -- what the kernels see beyond dHdq / dHdp / hamiltonian ----------------------
    def kernel_functions(self, parallel: bool = False) -> Tuple[Any, Any]:
        """``(dHdq, dHdp)`` for a kernel. ``parallel=True`` asks for versions that spread one
        member's work over threads (used for a single member, B = 1); a system without such
        versions returns its serial ones. Both must give bit-identical results."""
        return self.dHdq, self.dHdp

    def workspace(self, members: int) -> Workspace:
        """Per-member scratch that persists between force calls inside a kernel (a neighbour
        list): ``iwork [members, ni]`` int64, ``fwork [members, nf]`` float64. Empty here."""
        return Workspace(np.zeros((members, 0), dtype=np.int64), np.zeros((members, 0)))

    def grow_workspace(self, work: Workspace) -> bool:
        """After a kernel call: whether a member's workspace overflowed (then it is replaced
        by a larger one, in place, and the caller repeats the call from its starting state).
        Systems without a workspace never overflow."""
        return False

    def _with_workspace(self, call) -> None:
        """``call(iw, fw)`` with one member's workspace, repeated with a larger one after an
        overflow (a Python-side evaluation over many states shares one workspace)."""
        work = self.workspace(1)
        while True:
            call(work.iwork[0], work.fwork[0])
            if not self.grow_workspace(work):
                return

    def check_state(self, q: np.ndarray) -> None:
        """Raise :class:`InputError` for initial coordinates ``q`` ``[B, ndof]`` the system cannot
        start from (overlapping particles); nothing to check here."""

    def extra_observables(self, Q: np.ndarray, P: np.ndarray) -> Dict[str, np.ndarray]:
        """System-specific per-state observables beyond the energies (temperature, pressure,
        momentum, ...), each ``[M]`` or ``[M, k]`` for flat states ``Q, P`` ``[M, ndof]``.
        Written to the H5MD file's ``/observables`` and read as trajectory attributes."""
        return {}

    def masses(self) -> Optional[np.ndarray]:
        """Per-particle masses, shape ``[N]``, or ``None`` where not meaningful."""
        return None

    def default_state(self) -> Tuple[np.ndarray, np.ndarray]:
        """A representative initial state ``(q0, p0)``, each of shape :attr:`shape`."""
        raise NotImplementedError

    def describe(self) -> Dict[str, Any]:
        """JSON-able description: registry name and parameters (``systems.from_description``)."""
        return {"name": self.name, "parameters": self.parameters}

    def fingerprint(self) -> str:
        return json.dumps(self.describe(), sort_keys=True)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, System) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    # -- vectorised evaluation for Python callers --------------------------------
    def _flatten(self, q: Any, p: Any) -> Tuple[np.ndarray, np.ndarray, Tuple[int, ...], Tuple[int, ...]]:
        q = np.asarray(q, dtype=np.float64)
        p = np.asarray(p, dtype=np.float64)
        if q.shape != p.shape:
            raise InputError(f"q and p must have the same shape, got {q.shape} and {p.shape}")
        shape = self.state_shape()
        if q.shape[-2:] == shape and q.ndim >= 2:
            batch = q.shape[:-2]
        elif q.ndim >= 1 and q.shape[-1] == self.ndof:
            batch = q.shape[:-1]
        else:
            raise InputError(
                f"{self.name} states must have shape (..., {shape[0]}, {shape[1]}) or (..., {self.ndof}); "
                f"got {q.shape}"
            )
        flat_q = np.ascontiguousarray(q.reshape(-1, self.ndof))
        flat_p = np.ascontiguousarray(p.reshape(-1, self.ndof))
        return flat_q, flat_p, batch, q.shape

    def energy(self, q: Any, p: Any) -> np.ndarray:
        """H(q, p) over leading batch axes.

        Parameters
        ----------
        q, p : array_like, shape ``(..., N, D)`` or ``(..., N*D)``

        Returns
        -------
        ndarray, shape ``(...)``
        """
        Q, P, batch, _ = self._flatten(q, p)
        out = np.empty(Q.shape[0])
        self._with_workspace(lambda iw, fw: _batch_energy(self.hamiltonian, self.params, iw, fw, Q, P, out))
        return out.reshape(batch)

    def gradients(self, q: Any, p: Any) -> Tuple[np.ndarray, np.ndarray]:
        """``(dH/dq, dH/dp)``, each with the shape of ``q``."""
        Q, P, _, shape = self._flatten(q, p)
        gq = np.empty_like(Q)
        gp = np.empty_like(P)
        self._with_workspace(lambda iw, fw: _batch_gradients(self.dHdq, self.dHdp, self.params, iw, fw, Q, P, gq, gp))
        return gq.reshape(shape), gp.reshape(shape)

    def time_derivative(self, q: Any, p: Any) -> Tuple[np.ndarray, np.ndarray]:
        r"""Hamilton's equations :math:`\dot q = \partial H/\partial p`,
        :math:`\dot p = -\partial H/\partial q`, each with the shape of ``q``."""
        gq, gp = self.gradients(q, p)
        return gp, -gq

    def observables(self, Q: np.ndarray, P: np.ndarray) -> Dict[str, Optional[np.ndarray]]:
        """What a trajectory frame records, in one compiled pass over flat states.

        Parameters
        ----------
        Q, P : ndarray, shape ``[M, ndof]``, C-contiguous float64

        Returns
        -------
        dict
            ``velocity`` = dH/dp and ``force`` = -dH/dq ``[M, ndof]``; ``energy`` ``[M]``; for
            separable systems ``potential_energy`` = H(q, 0) and ``kinetic_energy`` = H - V ``[M]``, else ``None``.
        """
        M = Q.shape[0]
        velocity = np.empty_like(Q)
        force = np.empty_like(Q)
        energy = np.empty(M)
        potential = np.empty(M if self.separable else 0)
        self._with_workspace(lambda iw, fw: _batch_observables(
            self.dHdq, self.dHdp, self.hamiltonian, self.params, iw, fw, Q, P, self.separable, velocity, force, energy,
            potential))
        if self.separable:
            with np.errstate(invalid="ignore", over="ignore"):  # inf - inf near a divergence is nan, as it should be
                kinetic = energy - potential
            return {"velocity": velocity, "force": force, "energy": energy, "kinetic_energy": kinetic,
                    "potential_energy": potential}
        return {"velocity": velocity, "force": force, "energy": energy, "kinetic_energy": None, "potential_energy": None}

    def split_energy(self, q: Any, p: Any) -> Tuple[np.ndarray, np.ndarray]:
        """Kinetic and potential energy ``(T, V)`` of a separable system, each of shape ``(...)``.

        Uses ``V(q) = H(q, 0)`` and ``T = H - V``, exact for the convention ``T(0) = 0``.
        """
        if not self.separable:
            raise InputTypeError(f"{self.name} is not separable: H does not split into T(p) + V(q)")
        q = np.asarray(q, dtype=np.float64)
        potential = self.energy(q, np.zeros_like(q))
        return self.energy(q, p) - potential, potential
