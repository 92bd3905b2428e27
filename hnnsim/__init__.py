"""hnnsim: simulate analytic and learned Hamiltonian systems with symplectic numba kernels.

>>> from hnnsim import Simulator
>>> from systems import Pendulum
>>> from integrators import Leapfrog
>>> traj = Simulator(Pendulum(length=1.0), Leapfrog(dt=0.01)).run(steps=1000, every=10)
"""

from __future__ import annotations

try:
    from importlib.metadata import version as _version

    __version__ = _version("hnnsim")
except Exception:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from .errors import (ConvergenceError, FileError, HnnsimError, IncompatibleSystemError, InputError, InputTypeError,
                     IntegratorError, MissingExtraError, MissingFileError, ModelFileError, OutputExistsError, SimulationDiverged,
                     TrainingDiverged, TrajectoryError, UnknownNameError)
from .reporters import CallbackReporter, EnergyReporter, H5MDReporter, ProgressReporter, Reporter, ResumableReporter
from .run import RunInfo, State
from .simulator import EnergyDriftWarning, Simulator
from .trajectory import Frames, Trajectory, open_trajectory

__all__ = ["CallbackReporter", "ConvergenceError", "EnergyDriftWarning", "EnergyReporter", "FileError", "Frames", "H5MDReporter",
           "HnnsimError", "IncompatibleSystemError", "InputError", "InputTypeError", "IntegratorError",
           "MissingExtraError", "MissingFileError", "ModelFileError", "OutputExistsError", "ProgressReporter", "Reporter", "ResumableReporter", "RunInfo",
           "SimulationDiverged", "Simulator", "State", "Trajectory", "TrainingDiverged", "TrajectoryError", "UnknownNameError",
           "__version__", "open_trajectory"]
