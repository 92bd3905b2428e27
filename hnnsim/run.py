"""What the simulator tells its reporters: the frozen description of a run (:class:`RunInfo`)
and the state of the integrator at a report boundary (:class:`State`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np


def _frozen(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if a is None:
        return None
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class RunInfo:
    """Everything that defines a run, as a file records it (``/parameters/hnnsim`` in H5MD).

    Attributes
    ----------
    system, integrator : dict
        ``describe()`` output: enough to rebuild them from their registries.
    shape : tuple of int
        State shape ``(N, D)``.
    every : int
        Steps between recorded frames.
    t0, dt : float
        Time of step 0 and the step size; a frame's time is ``t0 + step * dt``.
    n_aux : int
        Extra state rows the integrator carries (Tao's copies), ``aux`` shape ``[n_aux, N*D]``.
    separable : bool
        Whether H = T(p) + V(q) (kinetic and potential energy are then recorded).
    masses : ndarray or None
        Per-particle masses ``[N]``, when meaningful.
    extra : dict
        Anything else a writer should keep (e.g. a learned model's hash).
    box : ndarray or None
        Edges ``[D]`` of the periodic box (``None``: open space). Positions are recorded
        unwrapped (as integrated).
    observables : tuple of (str, int)
        The system's extra per-frame observables (``System.extra_observables``) and the
        width of each (0: a scalar per frame).
    """

    system: Dict[str, Any]
    integrator: Dict[str, Any]
    shape: Tuple[int, ...]
    every: int
    t0: float
    dt: float
    n_aux: int
    separable: bool
    masses: Optional[np.ndarray] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    box: Optional[np.ndarray] = None
    observables: Tuple[Tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "masses", _frozen(self.masses))
        object.__setattr__(self, "box", _frozen(self.box))
        object.__setattr__(self, "observables", tuple((str(k), int(w)) for k, w in self.observables))
        object.__setattr__(self, "extra", dict(self.extra or {}))

    def continues(self, other: "RunInfo") -> bool:
        """Whether a run described by ``other`` may append to output written for this one
        (same system, integrator, shape and report interval)."""
        return (self.system == other.system and self.integrator == other.integrator
                and self.shape == other.shape and self.every == other.every)


@dataclass(frozen=True)
class State:
    """The full integrator state at a report boundary (read-only views; copy to keep).

    Attributes
    ----------
    step : int
        Global step.
    time : float
        ``t0 + step * dt``.
    q, p : ndarray, shape ``[B, N*D]``
        Coordinates and momenta of the B members.
    aux : ndarray, shape ``[B, n_aux, N*D]``
        The integrator's extra state (Tao's extended copies; empty for others).
    """

    step: int
    time: float
    q: np.ndarray
    p: np.ndarray
    aux: np.ndarray

    @property
    def members(self) -> int:
        return int(self.q.shape[0])


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``."""
    v = a.view()
    v.flags.writeable = False
    return v
