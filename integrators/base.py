"""The integrator interface shared by every method.

An integrator advances an ensemble of states ``q, p`` of shape ``[B, n]`` (``B``
members, ``n`` degrees of freedom, C-contiguous float64) with one numba kernel call,
recording a frame every ``every`` global steps into ``[frames, B, n]`` buffers.
The kernel sees the Hamiltonian only through its gradient functions ``dHdq(q, p,
params, iw, fw, out)`` and ``dHdp(q, p, params, iw, fw, out)`` (numba dispatchers), a
float64 parameter array and each member's workspace ``iw = iwork[b]``, ``fw = fwork[b]``
(a neighbour list; empty for most systems); it never touches a Python object.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Tuple

import numba as nb
import numpy as np
from .errors import IncompatibleSystemError, InputError, InputTypeError

#: Kernel status codes (column 0 of the ``status`` array).
OK = 0
NONFINITE = 1
NOT_CONVERGED = 2


def compile_kernel(fn):
    """Two dispatchers for one kernel source: serial (one member, no thread-pool launch) and
    parallel over the ensemble axis (``prange``). Both release the GIL, keep IEEE semantics
    (no fastmath) and use NumPy's error model (x/0 gives inf, caught as non-finite)."""
    serial = nb.njit(nogil=True, error_model="numpy")(fn)
    parallel = nb.njit(nogil=True, error_model="numpy", parallel=True)(fn)
    return serial, parallel


@nb.njit(inline="always", error_model="numpy")
def nonfinite(qb, pb):
    """Whether any entry of ``qb`` or ``pb`` is NaN or infinite (one sum, NaN/inf propagate)."""
    s = 0.0
    for i in range(qb.shape[0]):
        s += qb[i] + pb[i]
    return not np.isfinite(s)


@nb.njit(inline="always", error_model="numpy")
def first_countdown(step0, every):
    """Steps from global step ``step0`` to the next multiple of ``every`` (the first frame).

    Every kernel ends a step with the same few lines (no division in the loop)::

        if step_failed(qb, pb, step, b, status):
            break
        countdown -= 1
        if countdown == 0:
            countdown = every
            frame = record(out_q, out_p, frame, b, qb, pb)

    (A helper returning ``(countdown, frame)`` was measured 30 % slower on a one-member
    leapfrog run: the recording stays in the kernel, the checks in helpers.)
    """
    return every - step0 % every


@nb.njit(inline="always", error_model="numpy")
def step_failed(qb, pb, step, b, status):
    """Whether member ``b`` failed at global step ``step`` (``qb`` or ``pb`` not finite);
    then ``status[b] = (NONFINITE, step)``."""
    if nonfinite(qb, pb):
        status[b, 0] = NONFINITE
        status[b, 1] = step
        return True
    return False


@nb.njit(inline="always", error_model="numpy")
def record(out_q, out_p, frame, b, qb, pb):
    """Copy member ``b``'s state into frame ``frame`` of the output buffers; returns ``frame + 1``."""
    for i in range(qb.shape[0]):
        out_q[frame, b, i] = qb[i]
        out_p[frame, b, i] = pb[i]
    return frame + 1


@dataclass
class Workspace:
    """Per-member scratch a system keeps between force calls inside a kernel.

    Attributes
    ----------
    iwork : ndarray of int64, shape ``[B, ni]``
    fwork : ndarray of float64, shape ``[B, nf]``

    Its layout belongs to the system (``System.workspace``); a kernel passes member b's
    rows to every call of ``dHdq``/``dHdp`` and never reads them. Carry one between
    ``advance`` calls to keep e.g. a neighbour list (results never depend on it: a system
    must give the same forces with a fresh workspace).
    """

    iwork: np.ndarray
    fwork: np.ndarray

    @property
    def members(self) -> int:
        return int(self.iwork.shape[0])


@dataclass
class Advance:
    """What one kernel call produced.

    Attributes
    ----------
    q, p : ndarray, shape ``[frames, B, n]``
        Recorded frames (after the steps whose global index is a multiple of ``every``).
    steps : ndarray of int64, shape ``[frames]``
        Global step index of each recorded frame.
    status : ndarray of int64, shape ``[B, 2]``
        Per member ``(code, step)``; code 0 is success.
    """

    q: np.ndarray
    p: np.ndarray
    steps: np.ndarray
    status: np.ndarray

    @property
    def ok(self) -> bool:
        return bool(np.all(self.status[:, 0] == OK))


def frame_steps(step0: int, nsteps: int, every: int) -> np.ndarray:
    """Global steps in ``(step0, step0 + nsteps]`` that are multiples of ``every``."""
    first = (step0 // every + 1) * every
    return np.arange(first, step0 + nsteps + 1, every, dtype=np.int64)


def check_dt(dt: Any) -> float:
    """Validate a time step: a finite real number > 0 (not a bool, not a string)."""
    if isinstance(dt, (bool, np.bool_)) or not isinstance(dt, numbers.Real):
        raise InputTypeError(f"dt must be a positive number, got {dt!r} ({type(dt).__name__})")
    value = float(dt)
    if not math.isfinite(value) or value <= 0.0:
        raise InputError(
            f"dt must be finite and > 0, got {value!r}; pass the step size in the system's time "
            "units, e.g. Leapfrog(dt=0.01) (to integrate backwards, negate the momenta instead)"
        )
    return value


def as_state(name: str, x: Any, n: int | None = None) -> np.ndarray:
    """Validate an ensemble state array: float64, C-contiguous, shape ``[B, n]``, finite."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must have shape [members, dof], got shape {arr.shape}")
    if n is not None and arr.shape[1] != n:
        raise InputError(f"{name} must have {n} degrees of freedom per member, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{name} must be finite, found {arr[tuple(bad)]} at index {tuple(bad)}")
    return arr


class Integrator:
    """Base class: a fixed-step method advancing ``[B, n]`` states in a numba kernel.

    Parameters
    ----------
    dt : float
        Step size, > 0.

    Subclasses set the class attributes below and implement :meth:`_run_kernel`.
    """

    #: registry name
    name: ClassVar[str] = ""
    #: global order of accuracy
    order: ClassVar[int] = 0
    #: whether the one-step map is symplectic
    symplectic: ClassVar[bool] = False
    #: whether the method needs H = T(p) + V(q)
    requires_separable: ClassVar[bool] = False
    #: number of extra ``[n]`` arrays per member the method carries between steps
    n_aux: ClassVar[int] = 0

    def __init__(self, dt: float):
        self.dt = check_dt(dt)

    # -- description -------------------------------------------------------------
    def parameters(self) -> Dict[str, Any]:
        """Constructor arguments, enough to rebuild the integrator: ``type(self)(**parameters())``."""
        return {"dt": self.dt}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.parameters().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.parameters() == other.parameters()  # type: ignore[union-attr]

    # -- checks ------------------------------------------------------------------
    def check_system(self, system: Any) -> None:
        """Raise :class:`IncompatibleSystemError` if this method cannot integrate ``system``."""
        if self.requires_separable and not getattr(system, "separable", False):
            from . import available_for  # local: the registry lives in the package

            others = ", ".join(available_for(separable=False))
            raise IncompatibleSystemError(
                f"{type(self).__name__} is an explicit splitting method and needs a separable "
                f"Hamiltonian H = T(p) + V(q), but system {getattr(system, 'name', system)!r} is not "
                f"separable. Use one of the integrators for general H instead: {others}."
            )

    # -- state ------------------------------------------------------------------
    def init_aux(self, q: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Extra per-member state, shape ``[B, n_aux, n]`` (empty for most methods)."""
        return np.zeros((q.shape[0], self.n_aux, q.shape[1]))

    def advance(
        self,
        system: Any,
        q: np.ndarray,
        p: np.ndarray,
        nsteps: int,
        *,
        aux: np.ndarray | None = None,
        work: Workspace | None = None,
        step0: int = 0,
        every: int = 1,
        backward: bool = False,
    ) -> Advance:
        """Advance ``q, p`` (modified in place) by ``nsteps`` steps.

        Parameters
        ----------
        system : System
            Provides ``dHdq``, ``dHdp`` (numba functions), ``params`` (float64 array) and
            ``separable``.
        q, p : ndarray, shape ``[B, n]``, float64, C-contiguous
            Ensemble state, updated in place.
        nsteps : int
            Steps to take.
        aux : ndarray, shape ``[B, n_aux, n]``, optional
            Method state carried between calls (Tao's extended copies); updated in place.
        work : Workspace, optional
            The system's per-member workspace (``system.workspace(B)``), carried between
            calls to keep e.g. a neighbour list; a fresh one by default. When it overflows
            (``system.grow_workspace``), it is enlarged in place and the call repeated from
            its starting state, so no step ever uses a truncated list.
        step0 : int
            Global index of the current step; frames are recorded after global steps that
            are multiples of ``every``.
        every : int
            Report interval in steps.
        backward : bool
            Integrate with ``-dt`` (for reversibility checks).

        Returns
        -------
        Advance
        """
        self.check_system(system)
        if not (isinstance(q, np.ndarray) and q.dtype == np.float64 and q.flags.c_contiguous and q.ndim == 2):
            raise InputTypeError("q must be a C-contiguous float64 array of shape [B, n]; use as_state()")
        if not (isinstance(p, np.ndarray) and p.dtype == np.float64 and p.flags.c_contiguous and p.shape == q.shape):
            raise InputTypeError(f"p must be a C-contiguous float64 array of shape {q.shape}")
        nsteps, step0, every = int(nsteps), int(step0), int(every)
        if nsteps < 0 or step0 < 0 or every < 1:
            raise InputError(f"need nsteps >= 0, step0 >= 0, every >= 1; got {nsteps}, {step0}, {every}")
        if aux is None:
            aux = self.init_aux(q, p)
        steps = frame_steps(step0, nsteps, every)
        B, n = q.shape
        out_q = np.empty((steps.size, B, n))
        out_p = np.empty((steps.size, B, n))
        status = np.zeros((B, 2), dtype=np.int64)
        dt = -self.dt if backward else self.dt
        params = np.ascontiguousarray(system.params, dtype=np.float64)
        if work is None:
            work = system.workspace(B)
        elif work.members != B:
            raise InputError(f"the workspace is for {work.members} members, the state has {B}; "
                             "pass system.workspace(B) or none")
        fns = system.kernel_functions(parallel=B == 1)
        has_work = work.iwork.shape[1] > 0 or work.fwork.shape[1] > 0
        start = (q.copy(), p.copy(), aux.copy()) if has_work else None
        while True:
            self._run_kernel(fns, params, work.iwork, work.fwork, q, p, aux, dt, nsteps, step0, every,
                             out_q, out_p, status)
            if not (has_work and system.grow_workspace(work)):
                break
            q[...], p[...], aux[...] = start  # a member's list overflowed: again, with room
            status[...] = 0
        return Advance(out_q, out_p, steps, status)

    def _run_kernel(self, fns, params, iwork, fwork, q, p, aux, dt, nsteps, step0, every, out_q, out_p,
                    status) -> None:
        raise NotImplementedError


def describe(integrator: Integrator) -> Dict[str, Any]:
    """JSON-able description: registry name and constructor parameters."""
    return {"name": integrator.name, "parameters": integrator.parameters()}


def state_pair(q: Any, p: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Validate a ``q, p`` pair of equal ``[B, n]`` shapes."""
    q = as_state("q", q)
    p = as_state("p", p, q.shape[1])
    if p.shape != q.shape:
        raise InputError(f"q and p must have the same shape, got {q.shape} and {p.shape}")
    return q, p
