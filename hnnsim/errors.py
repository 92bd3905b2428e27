"""Exceptions raised by hnnsim (the integrators' own are re-exported here)."""

from __future__ import annotations

from integrators import ConvergenceError, IncompatibleSystemError, IntegratorError, SimulationDiverged


class TrajectoryError(Exception):
    """A file is not a readable hnnsim trajectory (wrong format, truncated, inconsistent)."""


__all__ = ["ConvergenceError", "IncompatibleSystemError", "IntegratorError", "SimulationDiverged", "TrajectoryError"]
