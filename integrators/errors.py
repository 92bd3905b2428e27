"""The errors hnnsim raises, under one root, :class:`HnnsimError`.

They live in ``integrators``, the lowest of the three packages, so that ``systems`` and
``hnnsim`` raise the same classes; ``hnnsim.errors`` re-exports them. Each is also the
built-in exception a Python user would reach for, so existing ``except ValueError`` /
``except OSError`` code keeps working::

    HnnsimError
    ├── InputError (ValueError)                  a bad value: a parameter, a shape, a step count
    ├── InputTypeError (TypeError)               an argument of the wrong type
    ├── UnknownNameError (KeyError)              no system / integrator / activation of that name
    ├── IntegratorError
    │   ├── IncompatibleSystemError (ValueError) e.g. explicit splitting of a non-separable H
    │   ├── SimulationDiverged (FloatingPointError)  the state became non-finite
    │   └── ConvergenceError (ArithmeticError)   an implicit solve did not converge (state finite)
    ├── TrainingDiverged (FloatingPointError)    a training loss became non-finite
    ├── MissingExtraError (ImportError)          an optional dependency is missing (names the extra)
    └── FileError (OSError)                      a file hnnsim cannot use as asked
        ├── TrajectoryError                      not a readable / consistent trajectory
        ├── ModelFileError                       not a valid, untampered model file
        ├── OutputExistsError (FileExistsError)  refusing to replace an existing output
        └── MissingFileError (FileNotFoundError) the file is not there

The command line catches :class:`HnnsimError` (and ``OSError`` from the system, e.g. a full
disk) and prints its message; anything else is a bug and shows its traceback.
"""

from __future__ import annotations


class HnnsimError(Exception):
    """Root of every error hnnsim raises on purpose."""


class InputError(HnnsimError, ValueError):
    """An argument has a value hnnsim cannot use; the message says what was expected."""


class InputTypeError(HnnsimError, TypeError):
    """An argument has the wrong type; the message says what was expected."""


class UnknownNameError(HnnsimError, KeyError):
    """A registry has nothing under this name (the message suggests close names)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class IntegratorError(HnnsimError):
    """Base class of the errors raised while integrating."""


class IncompatibleSystemError(IntegratorError, ValueError):
    """The integrator cannot integrate this system (e.g. explicit splitting of a non-separable H)."""


class _AtStep:
    """Where a run stopped: ``step`` (global step of the failure) and ``member`` (ensemble member)."""

    step: int
    member: int

    def _where(self, step: int, member: int) -> None:
        self.step = int(step)
        self.member = int(member)


class SimulationDiverged(_AtStep, IntegratorError, FloatingPointError):
    """The state became non-finite.

    Attributes
    ----------
    step : int
        Global step at which the first non-finite value appeared.
    member : int
        Ensemble member that diverged.
    """

    def __init__(self, message: str, step: int, member: int = 0):
        super().__init__(message)
        self._where(step, member)


class ConvergenceError(_AtStep, IntegratorError, ArithmeticError):
    """An implicit step's nonlinear solve did not converge to round-off. The state is still
    finite (unlike :class:`SimulationDiverged`): a smaller step or more iterations may do.

    Attributes
    ----------
    step : int
        Global step whose solve did not converge.
    member : int
        Ensemble member concerned.
    """

    def __init__(self, message: str, step: int, member: int = 0):
        super().__init__(message)
        self._where(step, member)


class TrainingDiverged(HnnsimError, FloatingPointError):
    """A training loss became non-finite (lower the learning rate, check the data)."""


class MissingExtraError(HnnsimError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class FileError(HnnsimError, OSError):
    """A file hnnsim cannot use as asked (also an ``OSError``, like h5py's own errors)."""


class TrajectoryError(FileError):
    """A file is not a readable hnnsim trajectory (wrong format, truncated, inconsistent)."""


class ModelFileError(FileError):
    """A model file is not a valid hnnsim model file, is corrupt, or was modified after saving."""


class OutputExistsError(FileError, FileExistsError):
    """The output exists and replacing it was not asked for."""


class MissingFileError(FileError, FileNotFoundError):
    """A file to read is not there."""


__all__ = ["ConvergenceError", "FileError", "HnnsimError", "IncompatibleSystemError", "InputError", "InputTypeError",
           "IntegratorError", "MissingExtraError", "MissingFileError", "ModelFileError", "OutputExistsError", "SimulationDiverged",
           "TrainingDiverged", "TrajectoryError", "UnknownNameError"]
