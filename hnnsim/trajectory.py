"""Trajectories: the frames a run produced, in memory or read back from an H5MD file."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any, Dict, List, Optional

import numpy as np

import integrators
import systems

from . import h5md
from .errors import InputError


class Frames:
    """One block of frames, shared by all reporters at a report boundary.

    Attributes
    ----------
    step : ndarray of int64, shape ``[F]``
        Global step of each frame.
    time : ndarray, shape ``[F]``
        ``t0 + step * dt``.
    q, p : ndarray, shape ``[F, B, ndof]``
        Canonical coordinates and momenta of the B ensemble members.

    ``velocity``, ``force`` (``[F, B, ndof]``), ``energy``, ``kinetic_energy``, ``potential_energy``
    (``[F, B]``; the last two ``None`` for non-separable systems) are computed once, on
    first access, in one compiled pass.
    """

    def __init__(self, system: systems.System, step: np.ndarray, time: np.ndarray, q: np.ndarray, p: np.ndarray):
        self.system = system
        self.step = step
        self.time = time
        self.q = q
        self.p = p

    def __len__(self) -> int:
        return int(self.step.shape[0])

    def compute(self) -> "Frames":
        """Compute the derived quantities now (the simulator does this while the kernel runs
        the next chunk, so the work overlaps integration)."""
        self._observables
        return self

    @property
    def members(self) -> int:
        return int(self.q.shape[1])

    def select(self, mask: np.ndarray) -> "Frames":
        """The frames where ``mask`` (``[F]`` bool) is true, sharing derived quantities
        already computed."""
        out = Frames(self.system, self.step[mask], self.time[mask], self.q[mask], self.p[mask])
        if "_observables" in self.__dict__:
            out.__dict__["_observables"] = {k: None if v is None else v[mask] for k, v in self._observables.items()}
        return out

    @cached_property
    def _observables(self) -> Dict[str, Optional[np.ndarray]]:
        F, B, n = self.q.shape
        Q, P = self.q.reshape(F * B, n), self.p.reshape(F * B, n)
        obs = self.system.observables(Q, P)
        extra = self.system.extra_observables(Q, P)
        obs.update({f"extra:{k}": v for k, v in extra.items()})
        return {k: None if v is None else v.reshape((F, B) + v.shape[1:]) for k, v in obs.items()}

    @property
    def extra(self) -> Dict[str, np.ndarray]:
        """The system's extra observables (temperature, pressure, ...), each ``[F, B]`` or ``[F, B, k]``."""
        return {k[6:]: v for k, v in self._observables.items() if k.startswith("extra:")}

    @property
    def velocity(self) -> np.ndarray:
        return self._observables["velocity"]

    @property
    def force(self) -> np.ndarray:
        return self._observables["force"]

    @property
    def energy(self) -> np.ndarray:
        return self._observables["energy"]

    @property
    def kinetic_energy(self) -> Optional[np.ndarray]:
        return self._observables["kinetic_energy"]

    @property
    def potential_energy(self) -> Optional[np.ndarray]:
        return self._observables["potential_energy"]

    @staticmethod
    def concatenate(blocks: List["Frames"], system: systems.System) -> "Frames":
        if not blocks:
            raise InputError("no frames")
        out = Frames(system, np.concatenate([b.step for b in blocks]), np.concatenate([b.time for b in blocks]),
                     np.concatenate([b.q for b in blocks]), np.concatenate([b.p for b in blocks]))
        if all("_observables" in b.__dict__ for b in blocks):
            out.__dict__["_observables"] = {
                k: None if blocks[0]._observables[k] is None else np.concatenate([b._observables[k] for b in blocks])
                for k in blocks[0]._observables}
        return out


class Trajectory:
    """Frames of one run (or one file), as NumPy arrays: the user-facing type.

    The frame concepts of hnnsim and their one set of field names (``step``, ``time``,
    ``q``, ``p``, ``velocity``, ``force``, ``energy``, ``kinetic_energy``,
    ``potential_energy``): :class:`Frames` is one block in flight from the kernel to the
    reporters (flat ``[F, B, ndof]``, derived quantities computed once on demand);
    :class:`Trajectory` is a whole run or file shaped ``[F, N, D]``; ``h5md.read_frames`` is
    the reader's dict of the same names.

    Attributes
    ----------
    system : systems.System
    integrator : integrators.Integrator
    every : int
        Steps between frames.
    step : ndarray of int64, shape ``[F]``
    time : ndarray, shape ``[F]``
        Time of each frame, ``t0 + step * dt`` (also ``t``).
    q, p, velocity, force : ndarray, shape ``[F, N, D]`` (``[F, B, N, D]`` for an in-memory ensemble)
        Coordinates, momenta, dq/dt = dH/dp and -dH/dq.
    energy : ndarray, shape ``[F]`` (``[F, B]``)
        H along the trajectory.
    kinetic_energy, potential_energy : ndarray or None
        T and V for separable systems.
    path : str or None
        The file the frames were read from.
    """

    _FIELDS = ("step", "time", "q", "p", "velocity", "force", "energy", "kinetic_energy", "potential_energy", "checkpoint",
               "observables")

    def __init__(self, system: systems.System, integrator: integrators.Integrator, every: int, step: np.ndarray,
                 time: np.ndarray, q: np.ndarray, p: np.ndarray, velocity: np.ndarray, force: np.ndarray,
                 energy: np.ndarray, kinetic_energy: Optional[np.ndarray] = None,
                 potential_energy: Optional[np.ndarray] = None, path: Optional[str] = None,
                 checkpoint: Optional[Dict[str, Any]] = None, observables: Optional[Dict[str, np.ndarray]] = None):
        self.system = system
        self.integrator = integrator
        self.every = int(every)
        self.path = path
        self._arrays: Optional[Dict[str, Any]] = dict(
            step=step, time=time, q=q, p=p, velocity=velocity, force=force, energy=energy, kinetic_energy=kinetic_energy,
            potential_energy=potential_energy, checkpoint=checkpoint, observables=dict(observables or {}))

    @classmethod
    def lazy(cls, system: systems.System, integrator: integrators.Integrator, every: int, path: str) -> "Trajectory":
        """A trajectory of the file ``path`` whose arrays are read on first access."""
        traj = cls.__new__(cls)
        traj.system, traj.integrator, traj.every, traj.path, traj._arrays = system, integrator, int(every), path, None
        return traj

    def _load(self) -> Dict[str, Any]:
        if self._arrays is None:
            data = h5md.read_frames(self.path)
            self._arrays = {key: data[key] for key in self._FIELDS}
        return self._arrays

    step = property(lambda self: self._load()["step"], doc="Global step of each frame, ``[F]``.")
    time = property(lambda self: self._load()["time"], doc="Time of each frame, ``t0 + step * dt``, ``[F]``.")
    q = property(lambda self: self._load()["q"], doc="Coordinates, ``[F, N, D]``.")
    p = property(lambda self: self._load()["p"], doc="Momenta, ``[F, N, D]``.")
    velocity = property(lambda self: self._load()["velocity"], doc="dq/dt = dH/dp, ``[F, N, D]``.")
    force = property(lambda self: self._load()["force"], doc="-dH/dq, ``[F, N, D]``.")
    energy = property(lambda self: self._load()["energy"], doc="H, ``[F]``.")
    kinetic_energy = property(lambda self: self._load()["kinetic_energy"], doc="T (separable systems), ``[F]``.")
    potential_energy = property(lambda self: self._load()["potential_energy"], doc="V (separable systems), ``[F]``.")
    checkpoint = property(lambda self: self._load()["checkpoint"], doc="The file's last checkpoint (step, q, p, aux).")
    observables = property(lambda self: self._load()["observables"],
                           doc="The system's extra observables by name (e.g. ``temperature``, ``pressure``), ``[F]`` "
                               "or ``[F, k]``; each is also an attribute (``traj.temperature``).")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("system", "integrator", "every", "path"):
            raise AttributeError(name)
        extra = self._load()["observables"]
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}"
                             + (f"; this system's observables are {', '.join(extra)}" if extra else ""))

    @classmethod
    def from_frames(cls, frames: Frames, integrator: integrators.Integrator, every: int) -> "Trajectory":
        system = frames.system
        F, B = frames.q.shape[:2]
        shape = system.shape
        squeeze = B == 1

        def vec(a):
            a = a.reshape((F, B) + tuple(shape))
            return a[:, 0] if squeeze else a

        def sca(a):
            return None if a is None else (a[:, 0] if squeeze else a)

        return cls(system, integrator, every, frames.step, frames.time, vec(frames.q), vec(frames.p),
                   vec(frames.velocity), vec(frames.force), sca(frames.energy), sca(frames.kinetic_energy),
                   sca(frames.potential_energy), observables={k: sca(v) for k, v in frames.extra.items()})

    @property
    def t(self) -> np.ndarray:
        """Alias of :attr:`time`."""
        return self.time

    def __len__(self) -> int:
        return int(self.step.shape[0])

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return (f"Trajectory({self.system!r}, {self.integrator!r}, frames={len(self)}, "
                f"steps {int(self.step[0]) if len(self) else 0}..{int(self.step[-1]) if len(self) else 0}{where})")

    def energy_drift(self) -> Dict[str, float]:
        """Energy error along the trajectory, relative to the first frame (:func:`energy_drift`).
        A file trajectory not yet read is summarised in chunks (:func:`h5md.summary`), so
        memory stays flat however long the run."""
        if self._arrays is None and self.path is not None:
            drift = h5md.summary(self.path)["drift"]
            if drift is None:
                raise InputError("empty trajectory")
            return drift
        if len(self) == 0:
            raise InputError("empty trajectory")
        return energy_drift(self.time, self.energy)


def energy_drift(t: np.ndarray, H: np.ndarray) -> Dict[str, float]:
    """Energy error of a series ``H`` (``[F]``, or ``[F, B]`` for an ensemble) at times ``t`` ``[F]``.

    Returns
    -------
    dict
        ``H0`` the first value (of member 0); ``max_abs`` max |H - H0|; ``max_rel`` the same
        over max(|H0|, tiny); ``slope`` least-squares slope of H - H0 against t (secular drift
        per unit time); ``final`` H(t_end) - H0. For ensembles, the worst member. All NaN when
        the series is empty or not finite.
    """
    H = np.asarray(H, dtype=np.float64)
    if H.size == 0 or not np.all(np.isfinite(H)):
        nan = float("nan")
        return {"H0": nan, "max_abs": nan, "max_rel": nan, "slope": nan, "final": nan}
    H = H.reshape(H.shape[0], -1)
    dH = H - H[:1]
    scale = np.maximum(np.abs(H[0]), np.finfo(float).tiny)
    slope = np.polyfit(np.asarray(t, dtype=np.float64), dH, 1)[0] if H.shape[0] > 1 else np.zeros(H.shape[1])
    return {"H0": float(H[0, 0]), "max_abs": float(np.max(np.abs(dH))), "max_rel": float(np.max(np.abs(dH) / scale)),
            "slope": float(slope[np.argmax(np.abs(slope))]), "final": float(dH[-1, np.argmax(np.abs(dH[-1]))])}


def open_trajectory(path: str | os.PathLike) -> Trajectory:
    """Read an hnnsim H5MD trajectory (every completed frame) into a :class:`Trajectory`.

    Raises
    ------
    FileNotFoundError
        No such file.
    hnnsim.TrajectoryError
        Not an HDF5 file, not H5MD, not written by hnnsim, truncated or damaged.
    """
    traj = lazy_trajectory(path)
    traj._load()
    return traj


def lazy_trajectory(path: str | os.PathLike) -> Trajectory:
    """Like :func:`open_trajectory`, but the arrays are read on first access."""
    info = h5md.read_info(path)
    system = _system_from(info, os.fspath(path))
    integrator = integrators.from_description(info.integrator)
    return Trajectory.lazy(system, integrator, info.every, os.fspath(path))


def _system_from(info: h5md.RunInfo, path: str) -> systems.System:
    try:
        return systems.from_description(info.system)
    except KeyError as exc:
        raise h5md.TrajectoryError(
            f"{path} was written for system {info.system.get('name')!r}, which is not registered here "
            f"({exc.args[0]}); register it (systems.register) before opening the file"
        ) from None
