"""Writing and reading trajectories in the H5MD 1.1 layout.

Layout (see ``docs/file-format.md``)::

    /h5md                         @version = [1, 1]; author, creator groups
    /particles/trajectory
        box                       @dimension = 3, @boundary = none x 3 (open) or periodic x 3
            edges {step, time, value[F, 3]}   periodic boxes only (positions stay unwrapped)
        position  {step, time, value[F, N, 3]}   canonical q
        velocity  {step, time, value[F, N, 3]}   dq/dt = dH/dp
        momentum  {step, time, value[F, N, 3]}   canonical p (an extra element)
        force     {step, time, value[F, N, 3]}   -dH/dq
        mass      [N]                            when meaningful
    /observables/hamiltonian      {step, time, value[F]}; kinetic/potential_energy if separable;
                                  the system's extra observables (temperature, pressure, ...)
    /parameters/hnnsim            run settings (attributes) and the checkpoint (datasets)

``step`` and ``time`` are stored once (``position/step``, ``position/time``) and hard-linked
into every other element. Systems with D < 3 are padded with zeros to 3 columns, because
the H5MD readers in the wild (MDAnalysis) require 3-D vectors; the true D is stored in
``/parameters/hnnsim`` and :func:`read_frames` strips the padding.

Crash safety: the file is written in SWMR mode. Each block appends the ``value`` rows, flushes,
then appends ``step``/``time`` and flushes: a frame counts as written once its ``step`` row is
on disk, so a process killed at any moment leaves a file whose completed blocks read back.
The checkpoint (the full integrator state, Tao's extra copies included) lives in two slots,
written alternately; a slot index written after the slot says which one is whole.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import math
import os
import warnings
from typing import Any, Dict, Iterator, Optional

import h5py
import numpy as np

from . import crashpoints
from .errors import InputError, MissingFileError, OutputExistsError, TrajectoryError
from .run import RunInfo

FORMAT = "hnnsim-h5md"
FORMAT_VERSION = 1
ELEMENTS = ("position", "velocity", "momentum", "force")
_CHUNK_BYTES = 64 * 1024
_SERIES_CHUNK = 4096
#: frames read at a time by the scans that must stay flat in memory (summary, consistency)
_SCAN_CHUNK = 1 << 20


def _version() -> str:
    from . import __version__

    return __version__


def _padded(n_dim: int) -> int:
    return max(3, n_dim)


class H5MDWriter:
    """Stream frames of one trajectory to an H5MD file.

    No moment of a writer's life leaves previously readable data unreadable:

    * a new file is laid out under a hidden temporary name (``.<name>.<pid>.partial``),
      switched to SWMR mode there, and renamed into place only once its first block is on
      disk (or at close): a kill before that leaves any old file at ``path`` untouched;
    * an existing file is reopened directly in SWMR-write mode (no window in which HDF5's
      plain "open for write" flag is set), and a file a killed writer left is rewritten into
      a temporary file and renamed into place (:func:`recover`);
    * every writer holds an exclusive lock on the sidecar ``.<name>.lock`` for its whole
      life, so a second writer, resume or overwrite of the same path gets a clear error
      instead of taking a live file for a crashed one.

    Parameters
    ----------
    path : str or os.PathLike
        File to create (``mode="w"``, refuses to overwrite unless ``overwrite=True``) or to
        continue (``mode="a"``: frames after the checkpoint are cut away first).
    info : RunInfo
        Run description (required for ``mode="w"``; read from the file for ``mode="a"``).
    """

    def __init__(self, path: str | os.PathLike, info: Optional[RunInfo] = None, *, mode: str = "w",
                 overwrite: bool = False, lock: bool = True, keep_through: Optional[int] = None):
        self.path = os.fspath(path)
        self._partial: Optional[str] = None
        self._lock = None
        if mode not in ("w", "a"):
            raise InputError(f"mode must be 'w' or 'a', got {mode!r}")
        if mode == "w" and info is None:
            raise InputError("a new trajectory file needs a RunInfo")
        if mode == "w" and os.path.exists(self.path) and not overwrite:
            raise OutputExistsError(
                f"{self.path} already exists; pass overwrite=True (CLI: --overwrite) to replace it, "
                f"or continue it with Simulator.resume({self.path!r})")
        if mode == "a" and not os.path.exists(self.path):
            raise MissingFileError(f"no such trajectory file: {self.path}")
        if lock:
            self._lock = _WriterLock(self.path)
        try:
            if mode == "w":
                self.info = info
                directory, name = os.path.split(os.path.abspath(self.path))
                self._partial = os.path.join(directory, f".{name}.{os.getpid()}.partial")
                self._file = h5py.File(self._partial, "w", libver="latest")
                self._create()
            else:
                self.info = read_info(self.path)
                try:
                    self._file = _open_swmr_write(self.path)
                except OSError as exc:
                    if not _left_open(exc):
                        raise TrajectoryError(f"cannot open {self.path} to continue it: {exc}") from None
                    # the writer was killed and left HDF5's "open for write" flag set: rewrite
                    # the file's consistent part into a fresh file, rename it into place,
                    # then continue that (we hold the lock: no live writer is using it)
                    recover(self.path)
                    self._file = _open_swmr_write(self.path)
                self._truncate(keep_through)
            self._bind()
            if mode == "w":
                self._file.swmr_mode = True
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Give up a writer that failed to start: close, remove its partial file, unlock."""
        f = getattr(self, "_file", None)
        if f is not None and f.id.valid:
            f.close()
        if self._partial is not None and os.path.exists(self._partial):
            os.unlink(self._partial)
        self._partial = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _publish(self) -> None:
        """Rename a new file into place (its first block is on disk)."""
        if self._partial is not None:
            crashpoints.reached("create:rename")
            os.replace(self._partial, self.path)
            self._partial = None

    # -- layout ------------------------------------------------------------------
    def _create(self) -> None:
        f, info = self._file, self.info
        n, d = info.shape
        dp = _padded(d)
        h5 = f.create_group("h5md")
        h5.attrs["version"] = np.array([1, 1], dtype=np.int32)
        h5.create_group("author").attrs["name"] = _user()
        creator = h5.create_group("creator")
        creator.attrs["name"] = "hnnsim"
        creator.attrs["version"] = _version()
        traj = f.create_group("particles/trajectory")
        box = traj.create_group("box")
        box.attrs["dimension"] = np.int32(3 if d <= 3 else d)
        periodic = info.box is not None
        box.attrs["boundary"] = np.array([b"periodic" if periodic else b"none"] * (3 if d <= 3 else d))
        frames_per_chunk = max(1, _CHUNK_BYTES // (n * dp * 8))
        pos = traj.create_group("position")
        pos.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(_SERIES_CHUNK,), fillvalue=-1)
        pos.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(_SERIES_CHUNK,))
        for name in ELEMENTS:
            g = pos if name == "position" else traj.create_group(name)
            g.create_dataset("value", shape=(0, n, dp), maxshape=(None, n, dp), dtype=np.float64,
                             chunks=(frames_per_chunk, n, dp))
            if name != "position":
                g["step"] = pos["step"]
                g["time"] = pos["time"]
        if periodic:
            edges = box.create_group("edges")
            edges.create_dataset("value", shape=(0, dp), maxshape=(None, dp), dtype=np.float64, chunks=(_SERIES_CHUNK, dp))
            edges["step"] = pos["step"]
            edges["time"] = pos["time"]
        if info.masses is not None:
            traj.create_dataset("mass", data=np.asarray(info.masses, dtype=np.float64))
        obs = f.create_group("observables")
        widths = dict(info.observables)
        for name in self._observables():
            g = obs.create_group(name)
            w = widths.get(name, 0)
            g.create_dataset("value", shape=(0,) + ((w,) if w else ()), maxshape=(None,) + ((w,) if w else ()),
                             dtype=np.float64, chunks=(_SERIES_CHUNK,) + ((w,) if w else ()))
            g["step"] = pos["step"]
            g["time"] = pos["time"]
        par = f.create_group("parameters/hnnsim")
        par.attrs["format"] = FORMAT
        par.attrs["format_version"] = FORMAT_VERSION
        par.attrs["system"] = json.dumps(info.system)
        par.attrs["integrator"] = json.dumps(info.integrator)
        par.attrs["shape"] = np.array(info.shape, dtype=np.int64)
        par.attrs["every"] = int(info.every)
        par.attrs["t0"] = float(info.t0)
        par.attrs["dt"] = float(info.dt)
        par.attrs["n_aux"] = int(info.n_aux)
        par.attrs["separable"] = bool(info.separable)
        par.attrs["units"] = "reduced (no unit attributes; open in MDAnalysis with convert_units=False)"
        par.attrs["versions"] = json.dumps(_versions())
        par.attrs["extra"] = json.dumps(info.extra or {})
        par.attrs["observables"] = json.dumps([list(o) for o in info.observables])
        if periodic:
            par.attrs["box"] = np.asarray(info.box, dtype=np.float64)
            par.attrs["positions"] = "unwrapped: as integrated, no image element; wrap with q - box * floor(q / box)"
        ck = par.create_group("checkpoint")
        ck.create_dataset("slot", data=np.array([-1], dtype=np.int64))
        ck.create_dataset("step", data=np.full(2, -1, dtype=np.int64))
        ck.create_dataset("q", shape=(2, n * d), dtype=np.float64)
        ck.create_dataset("p", shape=(2, n * d), dtype=np.float64)
        ck.create_dataset("aux", shape=(2, info.n_aux, n * d), dtype=np.float64)

    def _observables(self):
        energies = ("hamiltonian", "kinetic_energy", "potential_energy") if self.info.separable else ("hamiltonian",)
        return energies + tuple(name for name, _ in self.info.observables)

    def _bind(self) -> None:
        f = self._file
        traj = f["particles/trajectory"]
        self._step = traj["position/step"]
        self._time = traj["position/time"]
        self._values = {name: traj[f"{name}/value"] for name in ELEMENTS}
        self._obs = {name: f[f"observables/{name}/value"] for name in self._observables()}
        self._edges = traj["box/edges/value"] if "edges" in traj["box"] else None
        self._ck = f["parameters/hnnsim/checkpoint"]
        self._slot = int(self._ck["slot"][0])
        self._n = int(self._step.shape[0])
        self._last = int(self._step[-1]) if self._n else -1

    def _truncate(self, keep_through: Optional[int]) -> None:
        """Cut the frames after step ``keep_through`` (default: the checkpoint's step; a later
        frame when the run continues from it, see :func:`resume_point`)."""
        ck = self._file["parameters/hnnsim/checkpoint"]
        slot = int(ck["slot"][0])
        if slot < 0:
            raise TrajectoryError(f"{self.path} has no checkpoint: it cannot be continued")
        last = int(ck["step"][slot]) if keep_through is None else int(keep_through)
        steps = self._file["particles/trajectory/position/step"][...]
        complete = _complete_frames(self._file)  # never grow a short dataset with fill values
        keep = int(np.searchsorted(steps[:complete], last, side="right"))
        traj = self._file["particles/trajectory"]
        datasets = [traj["position/step"], traj["position/time"]] + [traj[f"{e}/value"] for e in ELEMENTS]
        if "edges" in traj["box"]:
            datasets.append(traj["box/edges/value"])
        datasets += [self._file[f"observables/{name}/value"] for name in self._file["observables"]]
        for ds in datasets:
            if ds.shape[0] != keep:
                ds.resize(keep, axis=0)
        self._file.flush()

    # -- writing -----------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return self._n

    def last_step(self) -> int:
        return self._last

    def append(self, step: np.ndarray, time: np.ndarray, q: np.ndarray, p: np.ndarray, velocity: np.ndarray,
               force: np.ndarray, energy: np.ndarray, kinetic_energy: Optional[np.ndarray] = None,
               potential_energy: Optional[np.ndarray] = None,
               observables: Optional[Dict[str, np.ndarray]] = None) -> None:
        """Append ``F`` frames: ``step``, ``time`` of shape ``[F]``; vectors ``[F, N*D]``; energies ``[F]``;
        the system's extra ``observables`` by name (``[F]`` or ``[F, k]``)."""
        F = int(np.shape(step)[0])
        if F == 0:
            return
        if self.n_frames and int(step[0]) <= self.last_step():
            raise TrajectoryError(f"frames must move forward: step {int(step[0])} after {self.last_step()}")
        n, d = self.info.shape
        dp = _padded(d)
        start = self.n_frames
        end = start + F
        crashpoints.reached("append:start")
        for name, data in zip(ELEMENTS, (q, velocity, p, force)):
            ds = self._values[name]
            ds.resize(end, axis=0)
            block = np.zeros((F, n, dp))
            block[:, :, :d] = np.asarray(data).reshape(F, n, d)
            ds[start:end] = block
        series = {"hamiltonian": energy, "kinetic_energy": kinetic_energy, "potential_energy": potential_energy,
                  **(observables or {})}
        missing = sorted(set(self._obs) - set(series))
        if missing:
            raise InputError(f"{self.path} records the observables {', '.join(missing)}; append them too")
        for name, ds in self._obs.items():
            ds.resize(end, axis=0)
            ds[start:end] = series[name]
        if self._edges is not None:
            self._edges.resize(end, axis=0)
            edges = np.zeros((F, dp))
            edges[:, :d] = self.info.box
            self._edges[start:end] = edges
        crashpoints.reached("append:values")
        self._file.flush()
        crashpoints.reached("append:values-flushed")
        self._time.resize(end, axis=0)
        self._time[start:end] = time
        self._step.resize(end, axis=0)
        self._step[start:end] = step
        crashpoints.reached("append:series")
        self._file.flush()
        crashpoints.reached("append:series-flushed")
        self._publish()
        self._n, self._last = end, int(step[-1])

    def checkpoint(self, step: int, q: np.ndarray, p: np.ndarray, aux: np.ndarray) -> None:
        """Store the state after global step ``step`` (flat ``[N*D]`` q, p; ``[n_aux, N*D]`` aux)."""
        slot = 0 if self._slot != 0 else 1
        crashpoints.reached("checkpoint:start")
        self._ck["q"][slot] = q
        self._ck["p"][slot] = p
        if self.info.n_aux:
            self._ck["aux"][slot] = aux
        self._ck["step"][slot] = step
        crashpoints.reached("checkpoint:data")
        self._file.flush()
        crashpoints.reached("checkpoint:data-flushed")
        # switching the slot needs no flush of its own: until the next flush (next block or
        # close) the file still names the previous whole slot
        self._ck["slot"][0] = slot
        self._slot = slot
        crashpoints.reached("checkpoint:slot")

    def close(self) -> None:
        if getattr(self, "_file", None) is not None and self._file.id.valid:
            self._file.flush()
            self._publish()
            self._file.close()
        if getattr(self, "_lock", None) is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "H5MDWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_measured(out: str | os.PathLike, time: np.ndarray, q: np.ndarray, p: np.ndarray, *,
                        shape: Optional[tuple] = None, system: Optional[dict] = None, extra: Optional[dict] = None,
                        overwrite: bool = False, dqdt: Optional[np.ndarray] = None,
                        dpdt: Optional[np.ndarray] = None) -> str:
    """Write measured states as an hnnsim H5MD trajectory.

    ``time`` ``[F]`` (strictly increasing), ``q``, ``p`` ``[F, ndof]``. Steps are the frame
    times in units of the median spacing when that is exact (even sampling), else the frame
    index. Energy is NaN; velocity and force are ``dqdt`` and ``dpdt`` when both are given
    (``[F, ndof]``), else NaN (``extra["derivatives"] = "none"``).
    """
    time = np.asarray(time, dtype=np.float64)
    F = time.shape[0]
    q = np.asarray(q, dtype=np.float64).reshape(F, -1)
    p = np.asarray(p, dtype=np.float64).reshape(F, -1)
    n = q.shape[1]
    shape = tuple(shape) if shape is not None else (n, 1)
    if F < 1 or np.any(np.diff(time) <= 0):
        raise InputError("need at least one frame and strictly increasing times")
    dt = float(np.median(np.diff(time))) if F > 1 else 1.0
    steps = np.rint((time - time[0]) / dt).astype(np.int64)
    if F > 1 and (np.any(np.diff(steps) <= 0) or not np.allclose(time[0] + steps * dt, time, rtol=0, atol=1e-6 * dt)):
        steps = np.arange(F, dtype=np.int64)  # uneven sampling: frame index, true times kept in `time`
    info = RunInfo(system=system or {"name": "measured", "parameters": {}},
                        integrator={"name": "measured", "parameters": {}}, shape=shape, every=1, t0=float(time[0]),
                        dt=dt, n_aux=0, separable=False, masses=None,
                        extra={"derivatives": "none" if dqdt is None else "exact", **(extra or {})})
    if (dqdt is None) != (dpdt is None):
        raise InputError("give both dqdt and dpdt, or neither")
    nan = np.full((F, n), np.nan)
    velocity = nan if dqdt is None else np.asarray(dqdt, dtype=np.float64).reshape(F, n)
    force = nan if dpdt is None else np.asarray(dpdt, dtype=np.float64).reshape(F, n)
    with H5MDWriter(out, info, mode="w", overwrite=overwrite) as w:
        w.append(steps, time, q, p, velocity, force, np.full(F, np.nan))
    return os.fspath(out)


def recover(path: str | os.PathLike) -> None:
    """Rewrite a trajectory whose writer was killed (HDF5's open-for-write flag still set) into
    a clean file holding every complete frame and its last checkpoint, atomically
    (temporary file, then ``os.replace``)."""
    path = os.fspath(path)
    data = read_frames(path)
    info, ck = data["info"], data["checkpoint"]
    if ck is None:
        raise TrajectoryError(f"{path} has no checkpoint (killed before its first block): nothing to continue")
    tmp = path + ".recover.tmp"
    with H5MDWriter(tmp, info, mode="w", overwrite=True, lock=False) as w:
        F = len(data["step"])  # every complete frame: the writer reopening it decides where to continue
        n = info.shape[0] * info.shape[1]
        w.append(data["step"][:F], data["time"][:F], data["q"][:F].reshape(F, n), data["p"][:F].reshape(F, n),
                 data["velocity"][:F].reshape(F, n), data["force"][:F].reshape(F, n), data["energy"][:F],
                 None if data["kinetic_energy"] is None else data["kinetic_energy"][:F],
                 None if data["potential_energy"] is None else data["potential_energy"][:F])
        w.checkpoint(ck["step"], ck["q"], ck["p"], ck["aux"])
    os.replace(tmp, path)


class _WriterLock:
    """An exclusive ``flock`` on the sidecar ``.<name>.lock`` next to ``path``, held while a
    writer lives (the kernel drops it when the process dies, so a killed writer never
    leaves a stale lock). The sidecar stays on disk: deleting a lock file races with the
    next writer opening it."""

    @staticmethod
    def sidecar(path: str) -> str:
        directory, name = os.path.split(os.path.abspath(path))
        return os.path.join(directory, f".{name}.lock")

    @staticmethod
    def held(path: str) -> bool:
        """Whether a live writer holds ``path`` (probed with a shared lock; creates nothing)."""
        try:
            import fcntl

            fd = os.open(_WriterLock.sidecar(path), os.O_RDONLY)
        except (ImportError, OSError):  # no sidecar: no writer ever locked it
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def __init__(self, path: str):
        self.path = self.sidecar(path)
        self._fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): no protection against a second writer
            pass
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise TrajectoryError(
                f"{path} is being written by another process (it holds {self.path}); wait for that run to "
                "finish, or write to another file. Readers can follow it meanwhile (open_trajectory)") from None
        crashpoints.reached("lock:held")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open_swmr_write(path: str) -> h5py.File:
    """Open an existing file for appending directly in SWMR-write mode, so that at no moment
    does it carry HDF5's plain "open for write" flag (which no reader can get past)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl)
    return h5py.File(fid)


def writer_state(path: str | os.PathLike) -> str:
    """``"live"`` (a writer holds the file's lock), ``"needs-recovery"`` (a killed writer left
    HDF5's open-for-write flag: hnnsim reads it, plain HDF5 clients such as MDAnalysis do
    not) or ``"clean"``."""
    path = os.fspath(path)
    if _WriterLock.held(path):
        return "live"
    try:
        h5py.File(path, "r").close()
    except OSError as exc:
        if _left_open(exc):
            return "needs-recovery"
    return "clean"


def recover_file(path: str | os.PathLike) -> int:
    """Make a file a killed writer left readable by every HDF5 client (:func:`recover`,
    under the writer lock); returns its number of frames. A clean file is left as it is."""
    path = os.fspath(path)
    lock = _WriterLock(path)
    try:
        try:
            h5py.File(path, "r").close()
        except OSError as exc:
            if not _left_open(exc):
                raise TrajectoryError(f"{path} is not a readable HDF5 file ({exc}); nothing to recover") from None
            recover(path)
        return len(read_frames(path)["step"])
    finally:
        lock.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _versions() -> Dict[str, str]:
    import numba
    import numpy

    return {"hnnsim": _version(), "numpy": numpy.__version__, "numba": numba.__version__, "h5py": h5py.__version__}


def _left_open(exc: OSError) -> bool:
    """Whether HDF5 refused a file because a writer (live or killed) left it open for writing."""
    return "already open for write" in str(exc) or "open for SWMR" in str(exc)


def _open(path: str | os.PathLike) -> h5py.File:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"no such trajectory file: {path}")
    try:
        try:
            return h5py.File(path, "r")
        except OSError as exc:
            if "unable to lock file" not in str(exc) and not _left_open(exc):
                raise
            # a live SWMR writer holds the file, or one was killed and left its flag set:
            # SWMR reading sees every flushed frame either way
            return h5py.File(path, "r", swmr=True)
    except OSError as exc:
        raise TrajectoryError(
            f"{path} is not a readable HDF5 file ({exc}); it may be truncated or not a trajectory. "
            "hnnsim writes H5MD files with `hnnsim simulate` or Simulator.run(out=...)"
        ) from None


@contextlib.contextmanager
def _reading(path: str | os.PathLike) -> Iterator[tuple]:
    """``(file, info)`` of an hnnsim trajectory, open for reading; a missing dataset or an
    HDF5 read error inside becomes a :class:`TrajectoryError` naming the file."""
    path = os.fspath(path)
    with _open(path) as f:
        info = _info(f, path)
        try:
            yield f, info
        except TrajectoryError:
            raise
        except (KeyError, OSError) as exc:
            raise TrajectoryError(f"{path} is damaged or incomplete: {exc}") from None


def read_info(path: str | os.PathLike) -> RunInfo:
    """Read and validate ``/parameters/hnnsim`` of an hnnsim trajectory."""
    with _open(path) as f:
        return _info(f, os.fspath(path))


def _info(f: h5py.File, path: str) -> RunInfo:
    if "h5md" not in f or "particles/trajectory/position" not in f:
        raise TrajectoryError(
            f"{path} is an HDF5 file but not an H5MD trajectory (no /h5md or /particles/trajectory/position)"
        )
    if "parameters/hnnsim" not in f or f["parameters/hnnsim"].attrs.get("format") != FORMAT:
        raise TrajectoryError(
            f"{path} is an H5MD file but was not written by hnnsim (no /parameters/hnnsim with format={FORMAT!r}); "
            "it can be read with MDAnalysis, but hnnsim cannot continue or describe it"
        )
    a = f["parameters/hnnsim"].attrs

    def attr(name: str, convert, valid=lambda v: True, expected: str = ""):
        where = f"{path}: attribute /parameters/hnnsim@{name}"
        if name not in a:
            raise TrajectoryError(f"{where} is missing; the file is damaged")
        try:
            value = convert(a[name])
        except (TypeError, ValueError) as exc:
            raise TrajectoryError(f"{where} cannot be read ({exc}); the file is damaged") from None
        if not valid(value):
            raise TrajectoryError(f"{where} is {value!r}, expected {expected}; the file is damaged")
        return value

    version = attr("format_version", int)
    if version > FORMAT_VERSION:
        raise TrajectoryError(f"{path} has format version {version}; this hnnsim reads up to {FORMAT_VERSION}: upgrade hnnsim")
    masses = f["particles/trajectory/mass"][...] if "particles/trajectory/mass" in f else None
    finite = math.isfinite
    return RunInfo(system=attr("system", json.loads, lambda v: isinstance(v, dict) and "name" in v, "a JSON object"),
                   integrator=attr("integrator", json.loads, lambda v: isinstance(v, dict) and "name" in v,
                                   "a JSON object"),
                   shape=attr("shape", lambda v: tuple(int(x) for x in v), lambda v: len(v) == 2 and min(v) >= 1,
                              "two positive integers (N, D)"),
                   every=attr("every", int, lambda v: v >= 1, "an integer >= 1"),
                   t0=attr("t0", float, finite, "a finite number"),
                   dt=attr("dt", float, lambda v: finite(v) and v > 0, "a finite number > 0"),
                   n_aux=attr("n_aux", int, lambda v: v >= 0, "an integer >= 0"),
                   separable=attr("separable", bool), masses=masses,
                   extra=attr("extra", json.loads, lambda v: isinstance(v, dict), "a JSON object"),
                   box=np.asarray(a["box"], dtype=np.float64) if "box" in a else None,
                   observables=tuple(tuple(o) for o in json.loads(a["observables"])) if "observables" in a else ())


def _checkpoint(f: h5py.File) -> Optional[Dict[str, Any]]:
    ck = f["parameters/hnnsim/checkpoint"]
    slot = int(ck["slot"][0])
    where = f"{f.filename}: /parameters/hnnsim/checkpoint"
    if slot == -1:
        return None
    if slot not in (0, 1):
        raise TrajectoryError(f"{where}/slot is {slot}, expected 0, 1 or -1 (none yet); the file is damaged")
    out = {"step": int(ck["step"][slot]), "q": ck["q"][slot], "p": ck["p"][slot], "aux": ck["aux"][slot]}
    if out["step"] < 0:
        raise TrajectoryError(f"{where}/step[{slot}] is {out['step']}, expected a step >= 0; the file is damaged")
    for key in ("q", "p", "aux"):
        if not np.all(np.isfinite(out[key])):
            raise TrajectoryError(f"{where}/{key}[{slot}] (step {out['step']}) holds non-finite values; the file is "
                                  "damaged (hnnsim never checkpoints a diverged state)")
    return out


def _complete_frames(f: h5py.File) -> int:
    """How many leading frames every time-dependent dataset holds, written and consistent.

    ``step`` rows not yet written read as the fill value -1, and the frame count is where
    they start. A written step that does not increase, with written steps after it, is
    damage, not an interrupted write: refused, naming the dataset, rather than silently
    dropping the frames after it.
    """
    traj = f["particles/trajectory"]
    ds = traj["position/step"]
    size, chunk = ds.shape[0], _SCAN_CHUNK  # read in chunks: memory flat in the file's size
    F, previous, broken = size, -1, None
    for start in range(0, size, chunk):
        steps = ds[start:start + chunk]
        if broken is None:
            bad = np.flatnonzero((steps < 0) | (np.diff(steps, prepend=previous) <= 0))
            if bad.size:
                F = start + int(bad[0])
                broken = int(steps[bad[0]])
                if bad[0] > 0:
                    previous = int(steps[bad[0] - 1])
                after = steps[bad[0] + 1:]
            else:
                previous = int(steps[-1])
                continue
        else:
            after = steps
        if np.any(after >= 0) or (broken is not None and broken >= 0):
            raise TrajectoryError(
                f"{f.filename}: /particles/trajectory/position/step is damaged at row {F} (step {broken} after "
                f"{previous if F else 'nothing'}, with written steps after it); hnnsim will not guess which "
                f"frames are right: the first {F} frames are consistent")
    lengths = [traj["position/time"].shape[0]] + [traj[f"{e}/value"].shape[0] for e in ELEMENTS]
    lengths += [f[f"observables/{o}/value"].shape[0] for o in f["observables"]]
    if "edges" in traj["box"]:
        lengths.append(traj["box/edges/value"].shape[0])
    return min([F] + lengths)


def read_checkpoint(path: str | os.PathLike) -> tuple:
    """The run description and the last whole checkpoint (``step``, ``q``, ``p``, ``aux``, or
    ``None`` before the first), without reading any frame."""
    with _reading(path) as (f, info):
        return info, _checkpoint(f)


def resume_point(path: str | os.PathLike) -> tuple:
    """Where a run continues: the run description and a state dict (``step``, ``q``, ``p``,
    ``aux``), or ``None`` before the first checkpoint; reads no frame but the last.

    A writer killed between a block's frames and its checkpoint leaves frames past the
    checkpoint. For an integrator whose whole state is ``(q, p)`` (``n_aux == 0``) the last
    complete frame is such a state, and continuing from it is bit-identical (chunking never
    changes results): no completed frame is dropped and recomputed. Tao's extended copies
    exist only in the checkpoint, so Tao continues from there.
    """
    path = os.fspath(path)
    info, ck = read_checkpoint(path)
    if ck is None:
        return info, ck
    try:
        last: Optional[Dict[str, Any]] = read_frame(path, -1)
    except InputError:  # no frame
        last = None
    last_step = -1 if last is None else last["step"]
    # the last frame the checkpoint's run had written (frames fall on multiples of every)
    due = ck["step"] - ck["step"] % info.every
    gap = last_step < due and not (last is None and ck["step"] < info.every)
    if not gap and last_step <= ck["step"]:
        return info, ck  # the usual case: frames up to the checkpoint
    if info.n_aux or last is None:
        raise TrajectoryError(
            f"{path} is damaged: its checkpoint is at step {ck['step']} but its complete frames end at step "
            f"{last_step} ({_lengths(path)}); {'nothing before the checkpoint can be recomputed' if last is None else 'the integrator needs its extended copies, which only the checkpoint holds'}, "
            "so continuing would leave a gap. Start a new run from the last frame (Simulator(..., q0, p0))")
    n = int(np.prod(info.shape))
    # continue from the last complete frame: past a stale checkpoint, or before a gap that
    # damage left (the frames after it are recomputed, bit-identically)
    return info, {"step": last["step"], "q": last["q"].reshape(n), "p": last["p"].reshape(n), "aux": ck["aux"]}


def _lengths(path: str) -> str:
    """Row counts of the time-dependent datasets, for error messages."""
    with _open(path) as f:
        traj = f["particles/trajectory"]
        rows = {"position/step": traj["position/step"].shape[0], "position/time": traj["position/time"].shape[0]}
        rows.update({f"{e}/value": traj[f"{e}/value"].shape[0] for e in ELEMENTS})
        rows.update({f"observables/{o}/value": f[f"observables/{o}/value"].shape[0] for o in f["observables"]})
    return ", ".join(f"{k}: {v} rows" for k, v in rows.items())


def read_frame(path: str | os.PathLike, index: int = 0) -> Dict[str, Any]:
    """One completed frame: ``step``, ``time``, ``q``, ``p`` (``[N, D]``), read without the others."""
    with _reading(path) as (f, info):
        traj = f["particles/trajectory"]
        F = _complete_frames(f)
        if not -F <= index < F:
            raise InputError(f"{os.fspath(path)} holds {F} frames; there is no frame {index}")
        i = index % F
        d = info.shape[1]
        return {"step": int(traj["position/step"][i]), "time": float(traj["position/time"][i]),
                "q": traj["position/value"][i, :, :d], "p": traj["momentum/value"][i, :, :d]}


def summary(path: str | os.PathLike, chunk: Optional[int] = None) -> Dict[str, Any]:
    """Frame count, first and last step and time, the checkpoint and the energy drift of a
    trajectory, read ``chunk`` frames at a time: memory stays flat in the file's size.

    ``drift`` has the keys of :func:`hnnsim.trajectory.energy_drift` (``H0``, ``max_abs``,
    ``max_rel``, ``slope``: least squares of H - H0 against t, combined over chunks from
    centred sums, ``final``), all NaN when some H is not finite; ``None`` with no frame.
    """
    chunk = chunk or _SCAN_CHUNK
    with _reading(path) as (f, info):
        F = _complete_frames(f)
        traj = f["particles/trajectory"]
        out: Dict[str, Any] = {"info": info, "frames": F, "checkpoint": None, "drift": None}
        try:
            out["checkpoint"] = _checkpoint(f)
        except TrajectoryError as exc:
            warnings.warn(f"{exc}; summarised without it", stacklevel=2)
        if F == 0:
            return out
        steps, times, energy = traj["position/step"], traj["position/time"], f["observables/hamiltonian/value"]
        out.update(first_step=int(steps[0]), last_step=int(steps[F - 1]), first_time=float(times[0]),
                   last_time=float(times[F - 1]))
        H0 = float(energy[0])
        finite = True
        max_abs = 0.0
        n, mean_t, mean_h, c_th, c_tt = 0, 0.0, 0.0, 0.0, 0.0
        for start in range(0, F, chunk):
            t = times[start:min(F, start + chunk)].astype(np.float64)
            h = energy[start:min(F, start + chunk)].astype(np.float64) - H0
            if not np.all(np.isfinite(h)):
                finite = False
                break
            max_abs = max(max_abs, float(np.max(np.abs(h))))
            # merge this chunk's centred sums into the running ones (Chan et al.)
            m = t.size
            mt, mh = float(t.mean()), float(h.mean())
            dt, dh = t - mt, h - mh
            ct, ch = float(dt @ dh), float(dt @ dt)
            delta_t, delta_h = mt - mean_t, mh - mean_h
            total = n + m
            c_th += ct + delta_t * delta_h * n * m / total
            c_tt += ch + delta_t * delta_t * n * m / total
            mean_t += delta_t * m / total
            mean_h += delta_h * m / total
            n = total
        if not finite:
            nan = float("nan")
            out["drift"] = {"H0": nan, "max_abs": nan, "max_rel": nan, "slope": nan, "final": nan}
        else:
            scale = max(abs(H0), float(np.finfo(float).tiny))
            out["drift"] = {"H0": H0, "max_abs": max_abs, "max_rel": max_abs / scale,
                            "slope": c_th / c_tt if n > 1 and c_tt > 0 else 0.0, "final": float(energy[F - 1]) - H0}
    return out


def read_frames(path: str | os.PathLike) -> Dict[str, Any]:
    """Read every completed frame of an hnnsim trajectory.

    Returns
    -------
    dict
        ``info`` (:class:`RunInfo`), ``step`` ``[F]``, ``time`` ``[F]``, ``q``, ``p``, ``velocity``,
        ``force`` ``[F, N, D]``, ``energy`` ``[F]`` and, for separable systems, ``kinetic_energy``
        and ``potential_energy`` ``[F]`` (else ``None``): the field names of
        :class:`~hnnsim.trajectory.Trajectory` and :class:`~hnnsim.trajectory.Frames`;
        ``checkpoint``: ``step``, ``q``, ``p``, ``aux`` of the last whole checkpoint.
    """
    with _reading(path) as (f, info):
        traj = f["particles/trajectory"]
        steps = traj["position/step"][...]
        F = _complete_frames(f)
        d = info.shape[1]
        out: Dict[str, Any] = {"info": info, "step": steps[:F], "time": traj["position/time"][:F]}
        for key, name in (("q", "position"), ("velocity", "velocity"), ("p", "momentum"), ("force", "force")):
            out[key] = traj[f"{name}/value"][:F, :, :d]
        obs = f["observables"]
        out["energy"] = obs["hamiltonian/value"][:F]
        out["kinetic_energy"] = obs["kinetic_energy/value"][:F] if "kinetic_energy" in obs else None
        out["potential_energy"] = obs["potential_energy/value"][:F] if "potential_energy" in obs else None
        out["observables"] = {name: obs[f"{name}/value"][:F] for name, _ in info.observables if name in obs}
        try:
            out["checkpoint"] = _checkpoint(f)
        except TrajectoryError as exc:  # the frames are still good: read them, say so
            warnings.warn(f"{exc}; the frames are read without it", stacklevel=2)
            out["checkpoint"] = None
    return out
