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
from .oscillators import HarmonicOscillator, Pendulum
from .two_body import TwoBody

registry = Registry("system")
for _cls in (HarmonicOscillator, Pendulum, TwoBody, HenonHeiles, DoublePendulum):
    registry.register(_cls.name, _cls)

register = registry.register
get = registry.get
available = registry.available


def from_description(desc: Dict[str, Any]) -> System:
    """Rebuild a system from :meth:`System.describe` output."""
    return get(desc["name"], **desc.get("parameters", {}))


__all__ = ["DoublePendulum", "HarmonicOscillator", "HenonHeiles", "Pendulum", "System", "TwoBody",
           "available", "from_description", "get", "register", "registry"]
