"""Reporters: what the simulator hands each block of frames to.

The simulator advances the state in compiled chunks and wakes Python only at block
boundaries; there it builds one :class:`~hnnsim.trajectory.Frames` block and passes the
same object to every reporter (OpenMM's pattern). Derived quantities (velocity, force,
energy) are computed once per block, on first access, whoever asks first.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, List, Optional, TextIO

import numpy as np

from . import h5md
from .trajectory import Frames
from .errors import InputTypeError, OutputExistsError


class Reporter:
    """Base class. ``start`` before the first chunk, ``report`` after every chunk (``frames``
    may be empty when a chunk ended between report steps), ``finish`` once at the end, also
    after an error or Ctrl-C (``error`` is then the exception)."""

    def start(self, simulator: Any, steps: int) -> None:
        pass

    def report(self, simulator: Any, frames: Frames) -> None:
        pass

    def finish(self, simulator: Any, error: Optional[BaseException] = None) -> None:
        pass


class H5MDReporter(Reporter):
    """Stream frames to H5MD file(s) and keep a checkpoint of the full integrator state.

    An ensemble of B > 1 members writes one file per member (H5MD has no batch axis):
    ``run.h5`` becomes ``run.0.h5``, ``run.1.h5``, ... (:func:`member_paths`).

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    append : bool
        Continue an existing file (frames after its checkpoint are cut first).
    overwrite : bool
        Replace an existing file instead of refusing.
    """

    def __init__(self, path: str | os.PathLike, *, append: bool = False, overwrite: bool = False):
        self.path = os.fspath(path)
        self.append = append
        self.overwrite = overwrite
        self.writers: List[h5md.H5MDWriter] = []

    def start(self, simulator: Any, steps: int) -> None:
        paths = member_paths(self.path, simulator.members)
        if self.append:
            self.writers = [h5md.H5MDWriter(p, mode="a") for p in paths]
            for w in self.writers:
                simulator._check_continues(w)
        else:
            info = simulator._run_info()
            if not self.overwrite:
                for p in paths:
                    if os.path.exists(p):
                        raise OutputExistsError(
                            f"{p} already exists; pass overwrite=True (CLI: --overwrite) to replace it, "
                            f"or continue it with Simulator.resume({p!r})")
            self.writers = [h5md.H5MDWriter(p, info, mode="w", overwrite=True) for p in paths]
            simulator._write_checkpoint(self.writers)
        self.append = True  # a later run on the same simulator continues these files

    def report(self, simulator: Any, frames: Frames) -> None:
        if len(frames):
            for b, w in enumerate(self.writers):
                w.append(frames.step, frames.time, frames.q[:, b], frames.p[:, b], frames.velocity[:, b],
                         frames.force[:, b], frames.energy[:, b],
                         None if frames.kinetic is None else frames.kinetic[:, b],
                         None if frames.potential is None else frames.potential[:, b])

    def checkpoint(self, simulator: Any) -> None:
        simulator._write_checkpoint(self.writers)

    def finish(self, simulator: Any, error: Optional[BaseException] = None) -> None:
        for w in self.writers:
            w.close()
        self.writers = []


def member_paths(path: str, members: int) -> List[str]:
    """File of each ensemble member: ``path`` itself for one member, else ``stem.<b>.suffix``."""
    if members == 1:
        return [path]
    stem, suffix = os.path.splitext(path)
    return [f"{stem}.{b}{suffix or '.h5'}" for b in range(members)]


class ProgressReporter(Reporter):
    """A tqdm progress bar in steps, with the relative energy error of member 0 as postfix."""

    def __init__(self, file: Optional[TextIO] = None, desc: str = "simulate"):
        self.file = file
        self.desc = desc
        self._bar = None
        self._h0: Optional[float] = None

    def start(self, simulator: Any, steps: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=steps, unit="step", unit_scale=True, desc=self.desc, file=self.file or sys.stderr,
                         dynamic_ncols=True)
        self._start = simulator.step

    def report(self, simulator: Any, frames: Frames) -> None:
        if self._bar is None:
            return
        self._bar.update(simulator.step - self._start - self._bar.n)
        if len(frames):
            h = float(frames.energy[-1, 0])
            if self._h0 is None:
                self._h0 = float(frames.energy[0, 0])
            self._bar.set_postfix_str(f"dH/|H0|={(h - self._h0) / max(abs(self._h0), 1e-300):+.2e}", refresh=False)

    def finish(self, simulator: Any, error: Optional[BaseException] = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EnergyReporter(Reporter):
    """Write ``step time H (H-H0)/|H0|`` for the last frame of every block to a text stream."""

    def __init__(self, file: TextIO = sys.stdout):
        self.file = file
        self._h0: Optional[np.ndarray] = None

    def report(self, simulator: Any, frames: Frames) -> None:
        if not len(frames):
            return
        if self._h0 is None:
            self._h0 = frames.energy[0].copy()
            print("# step time H[member 0] rel_error[worst member]", file=self.file)
        h = frames.energy[-1]
        rel = np.max(np.abs(h - self._h0) / np.maximum(np.abs(self._h0), 1e-300))
        print(f"{int(frames.step[-1])} {frames.time[-1]:.10g} {h[0]:.16g} {rel:.3e}", file=self.file)


class CallbackReporter(Reporter):
    """Call ``fn(frames)`` for every non-empty block."""

    def __init__(self, fn: Callable[[Frames], Any]):
        if not callable(fn):
            raise InputTypeError(f"CallbackReporter needs a callable, got {fn!r}")
        self.fn = fn

    def report(self, simulator: Any, frames: Frames) -> None:
        if len(frames):
            self.fn(frames)
