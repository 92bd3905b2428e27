"""Reporters: what the simulator hands each block of frames to.

The simulator advances the state in compiled chunks and wakes Python only at block
boundaries; there it builds one :class:`~hnnsim.trajectory.Frames` block and passes the
same object to every reporter (OpenMM's pattern). Derived quantities (velocity, force,
energy) are computed once per block, on first access, whoever asks first.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, List, Optional, TextIO, Tuple

import numpy as np

from . import h5md
from .errors import InputError, InputTypeError, OutputExistsError, TrajectoryError
from .run import RunInfo, State
from .trajectory import Frames


class Reporter:
    """Base class of reporters: what the simulator hands every block of frames to.

    The protocol runs one way, simulator to reporter; a reporter never calls into the
    simulator. Override what you need:

    ``start(run, state, steps)``
        Once before the first block: the frozen :class:`~hnnsim.run.RunInfo` of the run, the
        :class:`~hnnsim.run.State` it starts from and the number of steps it will take.
    ``report(frames, state)``
        After every block: its :class:`~hnnsim.trajectory.Frames` on this reporter's own
        interval (may be empty when a block ended between two of them) and the state after it.
    ``checkpoint(state)``
        After every block's reports: the full integrator state (Tao's copies included), for
        reporters that keep something a run can continue from.
    ``finish(state, error)``
        Once at the end, also after an error or Ctrl-C (``error`` is then the exception).

    Attributes
    ----------
    interval : int or None
        Steps between the frames this reporter wants (OpenMM's per-reporter interval); the
        simulator records frames at the greatest common divisor of the run's ``every`` and
        every reporter's interval and gives each reporter the frames on its own. ``None``:
        the run's ``every``.
    """

    interval: Optional[int] = None

    def start(self, run: RunInfo, state: State, steps: int) -> None:
        pass

    def report(self, frames: Frames, state: State) -> None:
        pass

    def checkpoint(self, state: State) -> None:
        pass

    def finish(self, state: State, error: Optional[BaseException] = None) -> None:
        pass


class ResumableReporter(Reporter):
    """A reporter that writes output a run can be continued from (:meth:`Simulator.resume`).

    Subclasses implement :meth:`read_checkpoint` (a class method: the run description and
    the last checkpoint of the output at ``path``, without reading its frames) and
    :meth:`trajectories` (what :meth:`Simulator.run` returns), and take ``append=True`` to
    continue existing output. A new format needs no change to the simulator.
    """

    path: str

    def __init__(self, path: str | os.PathLike, *, append: bool = False, overwrite: bool = False):
        self.path = os.fspath(path)
        self.append = append
        self.overwrite = overwrite

    @classmethod
    def read_checkpoint(cls, path: str | os.PathLike) -> Tuple[RunInfo, Optional[State]]:
        raise NotImplementedError

    def trajectories(self, members: int) -> List[Any]:
        raise NotImplementedError


class H5MDReporter(ResumableReporter):
    """Stream frames to H5MD file(s) and keep a checkpoint of the full integrator state.

    An ensemble of B > 1 members writes one file per member (H5MD has no batch axis):
    ``run.h5`` becomes ``run.0.h5``, ``run.1.h5``, ... (:func:`member_paths`).

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    append : bool
        Continue an existing file (frames after its checkpoint are cut first); the run must
        have the file's system, integrator and report interval, and start at its checkpoint.
    overwrite : bool
        Replace an existing file instead of refusing.
    """

    def __init__(self, path: str | os.PathLike, *, append: bool = False, overwrite: bool = False):
        super().__init__(path, append=append, overwrite=overwrite)
        self.writers: List[h5md.H5MDWriter] = []

    @classmethod
    def read_checkpoint(cls, path: str | os.PathLike) -> Tuple[RunInfo, Optional[State]]:
        info, ck = h5md.resume_point(path)
        if ck is None:
            return info, None
        n = int(np.prod(info.shape))
        return info, State(step=ck["step"], time=info.t0 + ck["step"] * info.dt, q=ck["q"].reshape(1, n),
                           p=ck["p"].reshape(1, n), aux=ck["aux"].reshape((1,) + ck["aux"].shape))

    def trajectories(self, members: int) -> List[Any]:
        from .trajectory import lazy_trajectory

        return [lazy_trajectory(p) for p in member_paths(self.path, members)]

    def start(self, run: RunInfo, state: State, steps: int) -> None:
        paths = member_paths(self.path, state.members)
        self._run = run
        if self.append:
            self.writers = []
            try:
                for p in paths:
                    self.writers.append(h5md.H5MDWriter(p, mode="a", keep_through=state.step))
                for w in self.writers:
                    self._check_continues(w, run, state)
            except BaseException:
                self.finish(state)
                raise
        else:
            if not self.overwrite:
                for p in paths:
                    if os.path.exists(p):
                        raise OutputExistsError(
                            f"{p} already exists; pass overwrite=True (CLI: --overwrite) to replace it, "
                            f"or continue it with Simulator.resume({p!r})")
            self.writers = [h5md.H5MDWriter(p, run, mode="w", overwrite=True) for p in paths]
            self.checkpoint(state)
        self.append = True  # a later run on the same simulator continues these files

    @staticmethod
    def _check_continues(writer: h5md.H5MDWriter, run: RunInfo, state: State) -> None:
        info = writer.info
        if info.system != run.system or info.integrator != run.integrator or info.shape != run.shape:
            raise InputError(f"{writer.path} was written by another system or integrator; write to a new file")
        if info.every != run.every:
            raise InputError(f"{writer.path} records every {info.every} steps; continue it with every={info.every}")
        if writer.last_step() > state.step:
            raise TrajectoryError(f"{writer.path} already holds frames up to step {writer.last_step()}, "
                                  f"beyond this simulation's step {state.step}")

    def report(self, frames: Frames, state: State) -> None:
        if not len(frames) or not self.writers:
            return
        last = self.writers[0].last_step()
        if self.writers[0].n_frames and frames.step[0] <= last:
            frames = frames.select(frames.step > last)  # the frame a continued file already holds
            if not len(frames):
                return
        extra = frames.extra
        for b, w in enumerate(self.writers):
            w.append(frames.step, frames.time, frames.q[:, b], frames.p[:, b], frames.velocity[:, b],
                     frames.force[:, b], frames.energy[:, b],
                     None if frames.kinetic_energy is None else frames.kinetic_energy[:, b],
                     None if frames.potential_energy is None else frames.potential_energy[:, b],
                     observables={k: v[:, b] for k, v in extra.items()})

    def checkpoint(self, state: State) -> None:
        for b, w in enumerate(self.writers):
            w.checkpoint(state.step, state.q[b], state.p[b], state.aux[b])

    def finish(self, state: State, error: Optional[BaseException] = None) -> None:
        for w in self.writers:
            w.close()
        self.writers = []


def member_paths(path: str, members: int) -> List[str]:
    """File of each ensemble member: ``path`` itself for one member, else ``stem.<b>.suffix``."""
    if members == 1:
        return [path]
    stem, suffix = os.path.splitext(path)
    return [f"{stem}.{b}{suffix or '.h5'}" for b in range(members)]


def show_progress(stream: Optional[TextIO] = None) -> bool:
    """Whether to draw progress bars on ``stream`` (stderr by default): only on a terminal,
    so a log file does not fill with redraws; ``HNNSIM_PROGRESS=1`` forces them, ``0``
    turns them off."""
    forced = os.environ.get("HNNSIM_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressReporter(Reporter):
    """A tqdm progress bar in steps, with the relative energy error of member 0 and, where
    the system has one, its temperature as postfix."""

    def __init__(self, file: Optional[TextIO] = None, desc: str = "simulate"):
        self.file = file
        self.desc = desc
        self._bar = None
        self._h0: Optional[float] = None

    def start(self, run: RunInfo, state: State, steps: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=steps, unit="step", unit_scale=True, desc=self.desc, file=self.file or sys.stderr,
                         dynamic_ncols=True, disable=self.file is None and not show_progress())
        self._start = state.step

    def report(self, frames: Frames, state: State) -> None:
        if self._bar is None:
            return
        self._bar.update(state.step - self._start - self._bar.n)
        if len(frames):
            h = float(frames.energy[-1, 0])
            if self._h0 is None:
                self._h0 = float(frames.energy[0, 0])
            text = f"dH/|H0|={(h - self._h0) / max(abs(self._h0), 1e-300):+.2e}"
            temperature = frames.extra.get("temperature")
            if temperature is not None:
                text = f"T={float(temperature[-1, 0]):.4g} " + text
            self._bar.set_postfix_str(text, refresh=False)

    def finish(self, state: State, error: Optional[BaseException] = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EnergyReporter(Reporter):
    """Write ``step time H (H-H0)/|H0|`` for the last frame of every block to a text stream."""

    def __init__(self, file: TextIO = sys.stdout, interval: Optional[int] = None):
        self.file = file
        self.interval = interval
        self._h0: Optional[np.ndarray] = None

    def report(self, frames: Frames, state: State) -> None:
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

    def __init__(self, fn: Callable[[Frames], Any], interval: Optional[int] = None):
        if not callable(fn):
            raise InputTypeError(f"CallbackReporter needs a callable, got {fn!r}")
        self.fn = fn
        self.interval = interval

    def report(self, frames: Frames, state: State) -> None:
        if len(frames):
            self.fn(frames)
