"""Numba-compiled fixed-step integrators for Hamiltonian systems.

Every integrator advances an ensemble ``q, p`` of shape ``[B, n]`` in one kernel call
(parallel over members). Explicit splitting methods (symplectic Euler, leapfrog,
Störmer–Verlet, Yoshida 4/6, PEFRL) need a separable H = T(p) + V(q); implicit midpoint,
Tao and RK4 take any H. This package imports neither ``systems`` nor ``hnnsim``.

>>> import integrators
>>> integrators.get("leapfrog", dt=0.01)
Leapfrog(dt=0.01)
"""

from __future__ import annotations

from typing import List

from ._registry import Registry
from .base import (
    Advance,
    Integrator,
    as_state,
    check_dt,
    describe,
    frame_steps,
    state_pair,
)
from .errors import (
    ConvergenceError,
    FileError,
    HnnsimError,
    IncompatibleSystemError,
    InputError,
    InputTypeError,
    IntegratorError,
    MissingExtraError,
    MissingFileError,
    ModelFileError,
    OutputExistsError,
    SimulationDiverged,
    TrainingDiverged,
    TrajectoryError,
    UnknownNameError,
)
from .implicit import ImplicitMidpoint
from .runge_kutta import RK4
from .splitting import PEFRL, Leapfrog, Splitting, StormerVerlet, SymplecticEuler, Yoshida4, Yoshida6
from .tao import Tao

registry = Registry("integrator")
for _cls in (SymplecticEuler, Leapfrog, StormerVerlet, Yoshida4, Yoshida6, PEFRL, ImplicitMidpoint, Tao, RK4):
    registry.register(_cls.name, _cls)

register = registry.register
get = registry.get
available = registry.available


def available_for(*, separable: bool) -> List[str]:
    """Registered integrators that can integrate a (non-)separable Hamiltonian."""
    return [name for name in available() if separable or not registry.entry(name).separable]


def from_description(desc: dict) -> Integrator:
    """Rebuild an integrator from :func:`describe` output."""
    return get(desc["name"], **desc.get("parameters", {}))


__all__ = [
    "Advance", "ConvergenceError", "FileError", "HnnsimError", "ImplicitMidpoint", "IncompatibleSystemError",
    "InputError", "InputTypeError", "Integrator", "IntegratorError", "MissingExtraError", "MissingFileError", "ModelFileError",
    "OutputExistsError", "TrainingDiverged", "TrajectoryError", "UnknownNameError", "Leapfrog", "PEFRL", "RK4", "SimulationDiverged", "Splitting", "StormerVerlet",
    "SymplecticEuler", "Tao", "Yoshida4", "Yoshida6", "as_state", "available", "available_for",
    "check_dt", "describe", "frame_steps", "from_description", "get", "register", "registry", "state_pair",
]
