"""The :class:`Simulator`: a system, an integrator, a state, and the reporter loop."""

from __future__ import annotations

import math
import os
import signal
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
import time as _time
from typing import Any, Iterator, List, Optional, Sequence, Union

import numpy as np

import integrators
import systems

from .errors import ConvergenceError, InputError, InputTypeError, SimulationDiverged, TrajectoryError
from .reporters import H5MDReporter, ProgressReporter, Reporter, ResumableReporter
from .run import RunInfo, State, read_only
from .trajectory import Frames, Trajectory, _system_from

#: a block holds at most this many bytes of q and p
_BLOCK_BYTES = 8 * 2**20
#: hard cap of frames per block
_MAX_FRAMES = 65536
#: relative energy error (max |H - H0| / |H0| over a run) above which a run warns
DEFAULT_ENERGY_TOLERANCE = 1e-2


def observable_widths(system: systems.System, q: np.ndarray, p: np.ndarray) -> tuple:
    """``((name, width), ...)`` of the system's extra observables (width 0: one number per frame)."""
    extra = system.extra_observables(q[:1], p[:1])
    return tuple((k, 0 if v.ndim == 1 else int(v.shape[1])) for k, v in extra.items())


class Simulator:
    """Integrate a Hamiltonian system, streaming frames to reporters and H5MD files.

    Parameters
    ----------
    system : systems.System
        What to integrate (analytic or learned).
    integrator : integrators.Integrator
        How; checked against the system (an explicit splitting method refuses a
        non-separable H and names the integrators that work).
    q0, p0 : array_like, optional
        Initial coordinates and momenta, shape ``(N, D)`` or ``(N*D,)`` for one trajectory,
        or with a leading ensemble axis ``(B, N, D)`` / ``(B, N*D)`` for B trajectories
        integrated together. Default: ``system.default_state()``.
    t0 : float
        Time of step 0; frame times are ``t0 + step * dt`` (computed, never accumulated).
    reporters : sequence of Reporter
        Receive every block of every run.

    Examples
    --------
    >>> from hnnsim import Simulator
    >>> from systems import Pendulum
    >>> from integrators import Leapfrog
    >>> traj = Simulator(Pendulum(), Leapfrog(dt=0.01), q0=[1.0], p0=[0.0]).run(steps=1000, every=10)
    >>> traj.q.shape, traj.energy.shape
    ((101, 1, 1), (101,))
    """

    def __init__(self, system: systems.System, integrator: integrators.Integrator, q0: Any = None, p0: Any = None,
                 *, t0: float = 0.0, reporters: Sequence[Reporter] = ()):
        if not isinstance(system, systems.System):
            raise InputTypeError(f"system must be a systems.System (e.g. systems.get('pendulum')), got {system!r}")
        if not isinstance(integrator, integrators.Integrator):
            raise InputTypeError(f"integrator must be an integrators.Integrator (e.g. Leapfrog(dt=0.01)), got {integrator!r}")
        integrator.check_system(system)
        self.system = system
        self.integrator = integrator
        if not math.isfinite(float(t0)):
            raise InputError(f"t0 must be finite, got {t0!r}")
        self.t0 = float(t0)
        if q0 is None and p0 is None:
            q0, p0 = system.default_state()
        elif q0 is None or p0 is None:
            raise InputError("give both q0 and p0, or neither (to start from system.default_state())")
        self._q, self._ensemble = self._state("q0", q0)
        self._p, ens_p = self._state("p0", p0)
        if self._p.shape != self._q.shape:
            raise InputError(f"q0 and p0 must have the same shape, got {np.shape(q0)} and {np.shape(p0)}")
        self._ensemble = self._ensemble or ens_p
        system.check_state(self._q)
        self._aux = integrator.init_aux(self._q, self._p)
        self.step = 0
        self.reporters: List[Reporter] = list(reporters)
        self._output: Optional[ResumableReporter] = None  # the file(s) this simulation writes (out= or resume)
        self._every: Optional[int] = None

    # -- state -------------------------------------------------------------------
    def _state(self, name: str, x: Any) -> tuple[np.ndarray, bool]:
        shape, n = tuple(self.system.shape), self.system.ndof
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape == shape or arr.shape == (n,):
            flat, ensemble = arr.reshape(1, n), False
        elif arr.ndim >= 2 and (arr.shape[1:] == shape or arr.shape[1:] == (n,)) and arr.shape[0] >= 1:
            flat, ensemble = arr.reshape(arr.shape[0], n), True
        else:
            raise InputError(
                f"{name} for {self.system.name} must have shape {shape} or ({n},), or (B, {shape[0]}, {shape[1]}) / "
                f"(B, {n}) for an ensemble of B; got shape {arr.shape}")
        return integrators.as_state(name, flat, n).copy(), ensemble

    @property
    def members(self) -> int:
        """Ensemble size B (1 for a single trajectory)."""
        return int(self._q.shape[0])

    def _shaped(self, a: np.ndarray) -> np.ndarray:
        a = a.reshape((a.shape[0],) + tuple(self.system.shape))
        return a if self._ensemble else a[0]

    @property
    def q(self) -> np.ndarray:
        """Current coordinates, shape ``(N, D)`` (``(B, N, D)`` for an ensemble); a copy."""
        return self._shaped(self._q.copy())

    @property
    def p(self) -> np.ndarray:
        """Current momenta, shape ``(N, D)`` (``(B, N, D)`` for an ensemble); a copy."""
        return self._shaped(self._p.copy())

    @property
    def time(self) -> float:
        """``t0 + step * dt``."""
        return self.t0 + self.step * self.integrator.dt

    @property
    def path(self) -> Optional[str]:
        """The H5MD file this simulation writes to (set by ``run(out=...)`` or :meth:`resume`)."""
        return self._output.path if self._output else None

    def energy(self) -> Union[float, np.ndarray]:
        """H of the current state (an array ``[B]`` for an ensemble)."""
        e = self.system.energy(self._q, self._p)
        return e if self._ensemble else float(e[0])

    # -- what reporters see -------------------------------------------------------
    def _run_info(self, every: int) -> RunInfo:
        extra = {}
        model_hash = getattr(self.system, "model_hash", None)
        if model_hash:
            extra["model_hash"] = model_hash
        return RunInfo(system=self.system.describe(), integrator=integrators.describe(self.integrator),
                       shape=tuple(self.system.shape), every=int(every), t0=self.t0, dt=self.integrator.dt,
                       n_aux=self.integrator.n_aux, separable=self.system.separable, masses=self.system.masses(),
                       extra=extra, box=self.system.box, observables=observable_widths(self.system, self._q, self._p))

    def _snapshot(self) -> State:
        return State(step=self.step, time=self.time, q=read_only(self._q), p=read_only(self._p),
                     aux=read_only(self._aux))

    @classmethod
    def resume(cls, path: str | os.PathLike, *, reporters: Sequence[Reporter] = (),
               format: type = H5MDReporter) -> "Simulator":
        """A simulator continuing the output at ``path`` from its last checkpoint.

        The file alone is enough: system, integrator (with Tao's extended copies), state,
        step, ``t0`` and report interval are read from its run description and checkpoint
        (no frame is read but the last: an integrator whose state is ``(q, p)`` continues
        from the last complete frame when a kill left frames past the checkpoint,
        :func:`hnnsim.h5md.resume_point`). The next :meth:`run` cuts frames after that point
        and appends to the same file; a run of 2N steps and N steps + resume + N steps are
        bit-identical. ``format`` is the
        :class:`~hnnsim.reporters.ResumableReporter` that wrote it (H5MD by default).
        """
        path = os.fspath(path)
        info, state = format.read_checkpoint(path)
        if state is None:
            raise TrajectoryError(f"{path} has no checkpoint (the run was killed before its first block); start a new run")
        system = _system_from(info, path)
        integrator = integrators.from_description(info.integrator)
        sim = cls(system, integrator, state.q[0], state.p[0], t0=info.t0, reporters=reporters)
        if info.n_aux:
            sim._aux[0] = state.aux[0]
        sim.step = int(state.step)
        sim._every = info.every
        sim._output = format(path, append=True)
        return sim

    # -- running -----------------------------------------------------------------
    def run(self, steps: int, every: Optional[int] = None, out: Optional[str | os.PathLike] = None, *,
            progress: bool = False, reporters: Sequence[Reporter] = (), overwrite: bool = False,
            energy_tolerance: Optional[float] = DEFAULT_ENERGY_TOLERANCE) -> Union[Trajectory, List[Trajectory]]:
        """Advance ``steps`` steps, recording a frame every ``every`` steps.

        Parameters
        ----------
        steps : int
            Number of integrator steps (>= 0).
        every : int, optional
            Steps between frames (default 1, or the interval of the file being continued).
            Frames fall on global steps that are multiples of ``every``; the initial state is
            a frame when its step is one.
        out : path or ResumableReporter, optional
            Stream frames to this H5MD file (one file per member for an ensemble:
            ``out.0.h5``, ...), or to the output of another resumable format. Later runs of
            this simulator continue the same output.
        progress : bool
            Show a progress bar.
        reporters : sequence of Reporter
            Extra reporters for this run only.
        overwrite : bool
            Replace ``out`` if it exists.
        energy_tolerance : float or None
            Warn (:class:`EnergyDriftWarning`) when max |H - H0| / |H0| over this run's frames
            passes it (default 1e-2); ``None``: no check. A frame whose energy is not finite
            always ends the run as :class:`SimulationDiverged`.

        Returns
        -------
        Trajectory or list of Trajectory
            With a file: the whole file read back (a list, one per member, for an ensemble).
            Without: the frames of this run, arrays ``[F, N, D]`` (``[F, B, N, D]``).

        Raises
        ------
        SimulationDiverged
            The state became non-finite (``.step``, ``.member``); every earlier frame is kept.
        ConvergenceError
            An implicit step did not converge.
        KeyboardInterrupt
            After Ctrl-C, once the file holds every completed frame and a checkpoint.
        """
        keep = self._output is None and out is None
        if keep:
            self._check_fits_in_memory(steps, every)
        blocks = []
        for frames in self.irun(steps, every, out, progress=progress, reporters=reporters, overwrite=overwrite,
                                energy_tolerance=energy_tolerance):
            if keep and len(frames):
                blocks.append(frames.compute())
        if self._output is not None:
            trajs = self._output.trajectories(self.members)
            return trajs if self._ensemble else trajs[0]
        if not blocks:
            empty = self._frames(np.zeros(0, dtype=np.int64), np.zeros((0,) + self._q.shape), np.zeros((0,) + self._q.shape))
            blocks = [empty]
        return Trajectory.from_frames(Frames.concatenate(blocks, self.system), self.integrator, int(self._every or 1))

    def _check_fits_in_memory(self, steps: Any, every: Any) -> None:
        """Refuse, before any work, an in-memory run whose frames cannot fit in the memory
        available now (q, p, velocity, force and three energies per frame and member)."""
        try:
            frames = int(steps) // max(1, int(every or self._every or 1)) + 1
            page, avail = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_AVPHYS_PAGES")
        except (TypeError, ValueError, OSError, AttributeError):
            return  # bad arguments are reported by irun; no sysconf: no check
        B, n = self._q.shape
        need = frames * B * (4 * n + 3) * 8
        if need > page * avail:
            raise InputError(
                f"keeping {frames} frames of {B} x {n} values in memory needs {need / 2**30:.1f} GiB, and "
                f"{page * avail / 2**30:.1f} GiB is available: write them to a file (out='run.h5', read back "
                f"lazily) or record fewer (every=...)")

    def _frames(self, steps: np.ndarray, q: np.ndarray, p: np.ndarray) -> Frames:
        return Frames(self.system, steps, self.t0 + steps * self.integrator.dt, q, p)

    def irun(self, steps: int, every: Optional[int] = None, out: Optional[str | os.PathLike] = None, *,
             progress: bool = False, reporters: Sequence[Reporter] = (), overwrite: bool = False,
             block_seconds: float = 0.25,
             energy_tolerance: Optional[float] = DEFAULT_ENERGY_TOLERANCE) -> Iterator[Frames]:
        """Like :meth:`run`, but yield each block of :class:`Frames` as it completes.

        The kernel advances the state in chunks sized to take about ``block_seconds`` (and
        to hold at most ~8 MiB of frames), on a worker thread without the GIL, while this
        thread hands the previous block to the reporters (derived quantities, HDF5 writes,
        progress): Python wakes only at block boundaries, and writing overlaps integration.
        ``simulator.step``, ``.q``, ``.p`` always describe the last block handed out.
        Breaking out of the loop, an exception or Ctrl-C stops the run cleanly at the last
        completed block (the file flushed and checkpointed there).
        """
        steps = _count("steps", steps, minimum=0)
        if every is None:
            every = self._every or 1
        every = _count("every", every, minimum=1)
        if isinstance(out, ResumableReporter):
            if self._output is not None and out is not self._output:
                raise InputError(f"this simulation writes to {self._output.path}; it cannot switch to {out.path}")
            self._output = out
        elif self._output is not None and out is not None and os.fspath(out) != self._output.path:
            raise InputError(f"this simulation writes to {self._output.path}; it cannot switch to {os.fspath(out)}")
        if self._every is not None and self._output is not None and every != self._every:
            raise InputError(f"{self._output.path} records every {self._every} steps; continue it with every={self._every}")
        if not (isinstance(block_seconds, (int, float)) and block_seconds > 0):
            raise InputError(f"block_seconds must be > 0, got {block_seconds!r}")
        if out is not None and self._output is None:
            self._output = H5MDReporter(out, overwrite=overwrite)
        active: List[Reporter] = ([self._output] if self._output else []) + self.reporters + list(reporters)
        if progress:
            active.append(ProgressReporter())
        intervals = [_interval(r) or every for r in active]
        record = math.gcd(every, *intervals)  # the kernel records a frame on every step any consumer wants
        self._every = every
        run = self._run_info(every)

        energy = _EnergyWatch(energy_tolerance)

        def dispatch(frames: Frames, state: Optional[State] = None) -> Frames:
            """Hand ``frames`` (recorded every ``record`` steps) to each reporter on its own
            interval; return the run's own (every ``every`` steps). A frame whose energy is
            not finite (the state is: e.g. two bodies at one point) ends the run as a
            divergence, the frames before it handed out."""
            bad = energy.first_nonfinite(frames)
            if bad is not None:
                index, member = bad
                dispatch(frames.select(np.arange(len(frames)) < index))
                step = int(frames.step[index])
                who = f" (ensemble member {member})" if self.members > 1 else ""
                raise SimulationDiverged(
                    f"the energy became non-finite at step {step} (t = {self.t0 + step * self.integrator.dt:.6g}){who} "
                    f"while the state stayed finite, on {self.system!r}; frames before it are kept. Check the initial "
                    "state (e.g. bodies at one point) or reduce dt.", step=step, member=member)
            subsets = {record: frames}

            def on(k: int) -> Frames:
                if k not in subsets:
                    subsets[k] = frames.select(frames.step % k == 0)
                return subsets[k]
            state = state or self._snapshot()
            for r, k in zip(active, intervals):
                r.report(on(k), state)
            return on(every)

        # compile outside the timed loop (a zero-step call), then size chunks by measured speed
        self.integrator.advance(self.system, self._q.copy(), self._p.copy(), 0, aux=self._aux.copy(), step0=self.step,
                                every=record)
        B, n = self._q.shape
        max_frames = max(1, min(_MAX_FRAMES, _BLOCK_BYTES // (16 * B * n)))
        end = self.step + steps
        work_q, work_p, work_aux = self._q.copy(), self._p.copy(), self._aux.copy()
        scratch = self.system.workspace(B)  # e.g. a neighbour list, kept from chunk to chunk

        def advance(step0: int, nsteps: int):
            t = _time.perf_counter()
            adv = self.integrator.advance(self.system, work_q, work_p, nsteps, aux=work_aux, work=scratch, step0=step0,
                                          every=record)
            return adv, nsteps, _time.perf_counter() - t

        interrupted = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
        error: Optional[BaseException] = None
        started: List[Reporter] = []
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hnnsim-kernel")
        pending = None
        try:
            start = self._snapshot()
            for r in active:
                r.start(run, start, steps)
                started.append(r)
            if self.step % record == 0:
                first = self._frames(np.array([self.step], dtype=np.int64), self._q[None].copy(), self._p[None].copy())
                yield dispatch(first)
            launched = self.step
            if launched < end:
                nsteps = max(1, min(end - launched, every * 64))
                pending = pool.submit(advance, launched, nsteps)
                launched += nsteps
            while pending is not None:
                adv, nsteps, elapsed = pending.result()
                pending = None
                if not adv.ok:
                    self._diverged(adv, dispatch)
                # the state after this block, before the next chunk moves the work arrays on
                self._q[...] = work_q
                self._p[...] = work_p
                self._aux[...] = work_aux
                self.step += nsteps
                if launched < end and not interrupted.is_set():
                    grow = int(nsteps * block_seconds / elapsed) if elapsed > 0 else 4 * nsteps
                    # the last block's reporting cannot overlap integration: keep blocks to
                    # an eighth of the run so that tail stays short
                    chunk = max(1, min(grow, 8 * nsteps, max_frames * record, max(steps // 8, every), end - launched))
                    pending = pool.submit(advance, launched, chunk)
                    launched += chunk
                state = self._snapshot()
                own = dispatch(self._frames(adv.steps, adv.q, adv.p), state)
                # only after every reporter has the block: a checkpoint never runs ahead of the frames
                for r in active:
                    r.checkpoint(state)
                yield own
                if interrupted.is_set():
                    raise KeyboardInterrupt(f"interrupted at step {self.step}; the file holds every frame up to it")
            energy.warn_if_exceeded(self)
        except BaseException as exc:
            error = exc
            raise
        finally:
            # a chunk still running is waited for and dropped: the simulator stays at the last
            # block it handed out, which is also the file's checkpoint
            pool.shutdown(wait=True)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            state = self._snapshot()
            for r in started:
                r.finish(state, error)

    def _diverged(self, adv: integrators.Advance, dispatch: Any) -> None:
        bad = np.flatnonzero(adv.status[:, 0] != 0)
        member = int(bad[np.argmin(adv.status[bad, 1])])
        code, step = int(adv.status[member, 0]), int(adv.status[member, 1])
        good = adv.steps < step
        frames = dispatch(self._frames(adv.steps[good], adv.q[good], adv.p[good]))
        last = int(frames.step[-1]) if len(frames) else None
        kept = f"frames up to step {last} are kept" if last is not None else "no new frame was recorded"
        who = f" (ensemble member {member})" if self.members > 1 else ""
        when = self.t0 + step * self.integrator.dt
        if code == integrators.base.NOT_CONVERGED:
            raise ConvergenceError(
                f"{type(self.integrator).__name__}: the implicit solve did not converge at step {step} (t = {when:.6g}){who}; "
                f"{kept}. Reduce dt (now {self.integrator.dt}) or raise max_iter.", step=step, member=member)
        raise SimulationDiverged(
            f"the state became non-finite at step {step} (t = {when:.6g}){who} with {type(self.integrator).__name__}"
            f"(dt={self.integrator.dt}) on {self.system!r}; {kept}. Reduce dt or check the initial state.",
            step=step, member=member)


class EnergyDriftWarning(UserWarning):
    """A run ended with a relative energy error above its ``energy_tolerance``."""


class _EnergyWatch:
    """Tracks max |H - H0| per member over one run, on the frames it records."""

    def __init__(self, tolerance: Optional[float]):
        if tolerance is not None and not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool)
                                          and tolerance > 0 and math.isfinite(tolerance)):
            raise InputError(f"energy_tolerance must be a finite number > 0 or None (no check), got {tolerance!r}")
        self.tolerance = tolerance
        self.h0: Optional[np.ndarray] = None
        self.worst: Optional[np.ndarray] = None

    def first_nonfinite(self, frames: Frames) -> Optional[tuple]:
        if not len(frames):
            return None
        E = frames.energy  # [F, B], computed once and shared with the reporters
        finite = np.isfinite(E)
        if not finite.all():
            index = int(np.argmin(finite.all(axis=1)))
            return index, int(np.argmin(finite[index]))
        if self.h0 is None:
            self.h0 = E[0].copy()
            self.worst = np.zeros_like(self.h0)
        np.maximum(self.worst, np.max(np.abs(E - self.h0), axis=0), out=self.worst)
        return None

    def warn_if_exceeded(self, sim: "Simulator") -> None:
        if self.tolerance is None or self.h0 is None:
            return
        scale = np.abs(self.h0)
        rel = np.where(scale > 0, self.worst / np.where(scale > 0, scale, 1.0), 0.0)
        member = int(np.argmax(rel))
        if rel[member] > self.tolerance:
            who = f" (ensemble member {member})" if sim.members > 1 else ""
            warnings.warn(EnergyDriftWarning(
                f"the relative energy error reached {rel[member]:.3g}{who}, above energy_tolerance = "
                f"{self.tolerance:g}, with {type(sim.integrator).__name__}(dt={sim.integrator.dt}) on {sim.system!r}: "
                "the trajectory is not trustworthy; reduce dt or use a higher-order method (pass "
                "energy_tolerance=None to silence)"), stacklevel=3)


def _interval(reporter: Reporter) -> Optional[int]:
    k = getattr(reporter, "interval", None)
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"{type(reporter).__name__}.interval must be a positive integer or None, got {k!r}")
    return int(k)


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (isinstance(value, float) and value.is_integer()):
        raise InputTypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    return value
