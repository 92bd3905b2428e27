"""Hamiltonian systems for hnnsim: analytic ones here, learned ones registered at run time.

>>> import systems
>>> systems.get("pendulum", length=2.0)
Pendulum(mass=1.0, length=2.0, g=9.81)
>>> "double-pendulum" in systems.available()
True
"""

from __future__ import annotations

from typing import Any, Dict

from integrators._registry import Registry

from .base import System
from .double_pendulum import DoublePendulum
from .henon_heiles import HenonHeiles
from .learned import LearnedSystem, ModelFileError, load
from .lennard_jones import LennardJones
from .nbody import NBodyGravity
from .oscillators import HarmonicOscillator, Pendulum
from .two_body import TwoBody

registry = Registry("system")
for _cls in (HarmonicOscillator, Pendulum, TwoBody, HenonHeiles, DoublePendulum, LennardJones, NBodyGravity):
    registry.register(_cls.name, _cls)

register = registry.register
get = registry.get
available = registry.available


def from_description(desc: Dict[str, Any]) -> System:
    """Rebuild a system from :meth:`System.describe` output (a learned system's ``model_hash``
    must match the registered model's)."""
    kwargs = dict(desc.get("parameters", {}))
    if "model_hash" in desc:
        kwargs["model_hash"] = desc["model_hash"]
    return get(desc["name"], **kwargs)


__all__ = ["DoublePendulum", "HarmonicOscillator", "HenonHeiles", "LearnedSystem", "LennardJones", "ModelFileError", "NBodyGravity", "Pendulum",
           "System", "TwoBody", "available", "from_description", "get", "load", "register", "registry"]
