"""Training data for Hamiltonian neural networks, read from hnnsim H5MD trajectories.

A sample is a state ``x = [q_flat..., p_flat...]`` (length ``2 * ndof``) and its time
derivative ``dx/dt = [dq/dt..., dp/dt...]``. From a file written by the simulator the
derivatives are exact: ``dq/dt = dH/dp`` is the ``velocity`` element and ``dp/dt = -dH/dq``
the ``force`` element. Measured data (no derivatives; stored as NaN, see
:mod:`hnnsim.learn.pendulum_data`) gets finite-difference targets along each trajectory.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import h5md
from ..errors import InputError

#: how the targets dx/dt are obtained
DERIVATIVES = ("exact", "forward", "central")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Samples:
    """One trajectory (file) as training samples.

    Attributes
    ----------
    path : str
    split : str
        ``"train"``, ``"test"``, or ``"train+test"`` when one file is split in time.
    time : ndarray, shape ``[F]``
        Time of each sample.
    x : ndarray, shape ``[F, 2*ndof]``
        Clean states (before any noise is added).
    dxdt : ndarray, shape ``[F, 2*ndof]``
        Targets.
    derivatives : str
        ``"exact"``, ``"forward"`` or ``"central"``: how ``dxdt`` was obtained.
    """

    path: str
    split: str
    time: np.ndarray
    x: np.ndarray
    dxdt: np.ndarray
    derivatives: str


@dataclass
class Dataset:
    """States and targets, split into train and test sets by trajectory.

    Attributes
    ----------
    name : str
        The system the files were written for (``info.system["name"]``).
    system : dict
        Its description (name and parameters), from the first file.
    shape : tuple of int
        State shape ``(N, D)``; ``ndof = N * D``.
    x, dxdt : ndarray, shape ``[M, 2*ndof]``
        Training states (with noise, if any) and targets.
    x_test, dxdt_test : ndarray, shape ``[M_test, 2*ndof]``
        Test states and targets.
    train_files, test_files : list of str
    trajectories : list of Samples
        Per file, clean states and targets.
    noise, seed, test_fraction : float, int, float
        How the set was built.
    split : str
        ``"trajectory"`` (whole files are train or test) or ``"time"`` (a single file: its
        first ``1 - test_fraction`` in time trains, the rest tests, as the paper does for the
        measured pendulum).
    """

    name: str
    system: Dict[str, Any]
    shape: Tuple[int, int]
    x: np.ndarray
    dxdt: np.ndarray
    x_test: np.ndarray
    dxdt_test: np.ndarray
    train_files: List[str]
    test_files: List[str]
    trajectories: List[Samples] = field(repr=False, default_factory=list)
    noise: float = 0.0
    seed: int = 0
    test_fraction: float = 0.2
    split: str = "trajectory"
    derivatives: str = "exact"

    @property
    def ndof(self) -> int:
        return int(self.shape[0] * self.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def describe(self) -> Dict[str, Any]:
        """JSON-able provenance: files, split, noise, seed, how the targets were obtained."""
        return {"system": self.system, "shape": list(self.shape), "train_files": list(self.train_files),
                "test_files": list(self.test_files), "n_train": self.n_train, "n_test": self.n_test,
                "noise": self.noise, "seed": self.seed, "test_fraction": self.test_fraction, "split": self.split,
                "derivatives": {os.path.basename(t.path): t.derivatives for t in self.trajectories}}

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, shape={self.shape}, train={self.n_train} samples from "
                f"{len(self.train_files)} file(s), test={self.n_test} from {len(self.test_files)}, noise={self.noise})")


def finite_difference(t: np.ndarray, x: np.ndarray, scheme: str = "central") -> Tuple[np.ndarray, np.ndarray]:
    """Time derivative of samples ``x`` taken at times ``t`` along one trajectory.

    Parameters
    ----------
    t : ndarray, shape ``[F]``
        Strictly increasing sample times (need not be evenly spaced).
    x : ndarray, shape ``[F, k]``
    scheme : {"forward", "central"}
        ``forward``: ``(x[i+1] - x[i]) / (t[i+1] - t[i])`` at frames ``0 .. F-2``, error O(h).
        ``central``: the three-point formula at frames ``1 .. F-2``, error O(h^2) (for uneven
        spacing too; for even spacing it is ``(x[i+1] - x[i-1]) / (2h)``).

    Returns
    -------
    index : ndarray of int, the frames that got a derivative
    dxdt : ndarray, shape ``[len(index), k]``
    """
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if t.ndim != 1 or x.shape[0] != t.shape[0]:
        raise InputError(f"t must be [F] and x [F, k] with the same F, got {t.shape} and {x.shape}")
    h = np.diff(t)
    if np.any(~(h > 0)):
        raise InputError("finite differences need strictly increasing, distinct sample times")
    if scheme == "forward":
        if t.size < 2:
            raise InputError("forward differences need at least 2 frames")
        return np.arange(t.size - 1), np.diff(x, axis=0) / h[:, None]
    if scheme == "central":
        if t.size < 3:
            raise InputError("central differences need at least 3 frames")
        h1, h2 = h[:-1, None], h[1:, None]
        xm, x0, xp = x[:-2], x[1:-1], x[2:]
        d = (-h2 / (h1 * (h1 + h2))) * xm + ((h2 - h1) / (h1 * h2)) * x0 + (h1 / (h2 * (h1 + h2))) * xp
        return np.arange(1, t.size - 1), d
    raise InputError(f"scheme must be 'forward' or 'central', got {scheme!r}")


def _has_derivatives(frames: Dict[str, Any]) -> bool:
    extra = frames["info"].extra or {}
    if extra.get("derivatives") is False or extra.get("derivatives") == "none":
        return False
    return bool(np.all(np.isfinite(frames["velocity"])) and np.all(np.isfinite(frames["force"])))


def read_trajectory(path: PathLike, derivatives: str = "exact") -> Tuple[Dict[str, Any], Samples]:
    """Read one H5MD file as samples ``(x, dx/dt)``; returns the raw frames and the samples.

    With ``derivatives="exact"`` and a file without derivatives (NaN velocity/force, or
    ``extra["derivatives"] == "none"``), central differences are used and a warning says so.
    """
    if derivatives not in DERIVATIVES:
        raise InputError(f"derivatives must be one of {', '.join(DERIVATIVES)}, got {derivatives!r}")
    path = os.fspath(path)
    frames = h5md.read_frames(path)
    F = int(frames["step"].shape[0])
    n = int(np.prod(frames["info"].shape))
    q = np.asarray(frames["q"], dtype=np.float64).reshape(F, n)
    p = np.asarray(frames["p"], dtype=np.float64).reshape(F, n)
    x = np.concatenate([q, p], axis=1)
    t = np.asarray(frames["time"], dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{path} holds non-finite states; it cannot be used for training")
    scheme = derivatives
    info = frames["info"]
    simulated = info.extra.get("derivatives", "exact") != "none" and info.integrator.get("name") != "measured"
    if scheme == "exact" and simulated and not _has_derivatives(frames):
        bad = int(np.sum(~(np.isfinite(frames["velocity"]).all(axis=(1, 2)) & np.isfinite(frames["force"]).all(axis=(1, 2)))))
        raise InputError(f"{path}: velocity/force hold non-finite values in {bad} of {F} frames, but the file was written "
                         "by a simulation, which records exact derivatives: it is damaged. Pass derivatives='central' "
                         "(CLI: --derivatives central) to train on finite differences of the states instead")
    if scheme == "exact" and not _has_derivatives(frames):
        warnings.warn(f"{path} has no derivatives (measured data?): using central finite differences",
                      stacklevel=3)
        scheme = "central"
    if scheme == "exact":
        dxdt = np.concatenate([np.asarray(frames["velocity"], dtype=np.float64).reshape(F, n),
                               np.asarray(frames["force"], dtype=np.float64).reshape(F, n)], axis=1)
        idx = np.arange(F)
    else:
        if F < (2 if scheme == "forward" else 3):
            raise InputError(f"{path} has {F} frame(s): too few for {scheme} differences")
        idx, dxdt = finite_difference(t, x, scheme)
    return frames, Samples(path=path, split="", time=t[idx], x=x[idx], dxdt=dxdt, derivatives=scheme)


def load(paths: Union[PathLike, Sequence[PathLike]], noise: float = 0.0, test_fraction: float = 0.2, seed: int = 0,
         derivatives: str = "exact") -> Dataset:
    """Training data from hnnsim H5MD trajectories.

    Parameters
    ----------
    paths : path or sequence of paths
        H5MD files of one system (same name, parameters and state shape).
    noise : float
        Standard deviation of Gaussian noise added to the input states (train and test);
        targets stay those of the clean states, as in the HNN paper.
    test_fraction : float in [0, 1)
        Share of trajectories (files) held out for testing, chosen at random with ``seed``
        (at least one when there are two or more files and the fraction is > 0). A single
        file is split in time instead: its first ``1 - test_fraction`` trains.
    seed : int
        Seeds the split and the noise.
    derivatives : {"exact", "forward", "central"}
        ``exact`` uses the file's velocity and force (falling back to central differences,
        with a warning, for files without derivatives); ``forward`` (O(h)) and ``central``
        (O(h^2)) differentiate the states along each trajectory, dropping the frames at the
        ends that lack a neighbour.

    Returns
    -------
    Dataset
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise InputError("learn.load needs at least one trajectory file")
    if len(set(paths)) != len(paths):
        raise InputError("the same file is given twice")
    noise = float(noise)
    if not (noise >= 0 and np.isfinite(noise)):
        raise InputError(f"noise must be a finite standard deviation >= 0, got {noise!r}")
    test_fraction = float(test_fraction)
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    trajs: List[Samples] = []
    system, shape = None, None
    for path in paths:
        frames, td = read_trajectory(path, derivatives)
        info = frames["info"]
        if system is None:
            system, shape = info.system, tuple(info.shape)
        elif info.system != system or tuple(info.shape) != shape:
            raise InputError(f"{path} was written for {info.system} with state shape {tuple(info.shape)}, but "
                             f"{paths[0]} for {system} with {shape}: train on files of one system")
        if td.x.shape[0] == 0:
            raise InputError(f"{path} holds no frames")
        trajs.append(td)
    rng = np.random.default_rng(seed)
    n = len(trajs)
    if n == 1:
        split = "time"
        td = trajs[0]
        cut = int(round(td.x.shape[0] * (1.0 - test_fraction)))
        if cut < 1:
            raise InputError(f"{td.path}: too few frames ({td.x.shape[0]}) to split in time")
        td.split = "train+test" if cut < td.x.shape[0] else "train"
        parts = {"train": [(td.x[:cut], td.dxdt[:cut])], "test": [(td.x[cut:], td.dxdt[cut:])]}
        train_files, test_files = [td.path], ([td.path] if cut < td.x.shape[0] else [])
    else:
        split = "trajectory"
        n_test = int(round(n * test_fraction))
        if test_fraction > 0:
            n_test = min(max(n_test, 1), n - 1)
        order = rng.permutation(n)
        test_idx = set(order[:n_test].tolist())
        parts = {"train": [], "test": []}
        for i, td in enumerate(trajs):
            td.split = "test" if i in test_idx else "train"
            parts[td.split].append((td.x, td.dxdt))
        train_files = [td.path for td in trajs if td.split == "train"]
        test_files = [td.path for td in trajs if td.split == "test"]
    width = 2 * int(np.prod(shape))

    def stack(items):
        if not items:
            return np.zeros((0, width)), np.zeros((0, width))
        return np.concatenate([a for a, _ in items]), np.concatenate([b for _, b in items])

    x, dxdt = stack(parts["train"])
    x_test, dxdt_test = stack(parts["test"])
    if noise > 0:
        x = x + noise * rng.standard_normal(x.shape)
        x_test = x_test + noise * rng.standard_normal(x_test.shape)
    schemes = sorted({td.derivatives for td in trajs})
    return Dataset(name=str(system.get("name", "unknown")), system=system, shape=shape, x=x, dxdt=dxdt,
                   x_test=x_test, dxdt_test=dxdt_test, train_files=train_files, test_files=test_files,
                   trajectories=trajs, noise=noise, seed=int(seed), test_fraction=test_fraction, split=split,
                   derivatives=schemes[0] if len(schemes) == 1 else "mixed")


def from_arrays(x: np.ndarray, dxdt: np.ndarray, shape: Optional[Tuple[int, int]] = None, name: str = "arrays",
                x_test: Optional[np.ndarray] = None, dxdt_test: Optional[np.ndarray] = None) -> Dataset:
    """A :class:`Dataset` from in-memory arrays ``[M, 2*ndof]`` (no files)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    dxdt = np.atleast_2d(np.asarray(dxdt, dtype=np.float64))
    if x.shape != dxdt.shape or x.shape[1] % 2:
        raise InputError(f"x and dxdt must both be [M, 2*ndof], got {x.shape} and {dxdt.shape}")
    ndof = x.shape[1] // 2
    shape = tuple(shape) if shape is not None else (ndof, 1)
    if shape[0] * shape[1] != ndof:
        raise InputError(f"shape {shape} does not hold {ndof} degrees of freedom")
    x_test = np.zeros((0, x.shape[1])) if x_test is None else np.atleast_2d(np.asarray(x_test, dtype=np.float64))
    dxdt_test = np.zeros((0, x.shape[1])) if dxdt_test is None else np.atleast_2d(np.asarray(dxdt_test, dtype=np.float64))
    return Dataset(name=name, system={"name": name, "parameters": {}}, shape=shape, x=x, dxdt=dxdt, x_test=x_test,
                   dxdt_test=dxdt_test, train_files=[], test_files=[], split="none")
