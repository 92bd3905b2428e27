"""Exceptions raised by hnnsim: one root, :class:`HnnsimError`, defined in the lowest package
(``integrators.errors``, where the tree is drawn) and re-exported here."""

from __future__ import annotations

from integrators.errors import (ConvergenceError, FileError, HnnsimError, IncompatibleSystemError, InputError,
                                InputTypeError, IntegratorError, MissingExtraError, MissingFileError, ModelFileError, OutputExistsError,
                                SimulationDiverged, TrainingDiverged, TrajectoryError, UnknownNameError)

__all__ = ["ConvergenceError", "FileError", "HnnsimError", "IncompatibleSystemError", "InputError", "InputTypeError",
           "IntegratorError", "MissingExtraError", "MissingFileError", "ModelFileError", "OutputExistsError", "SimulationDiverged",
           "TrainingDiverged", "TrajectoryError", "UnknownNameError"]
