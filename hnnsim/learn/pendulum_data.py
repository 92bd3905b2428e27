"""The measured pendulum of Schmidt & Lipson (Science 2009), as used by the HNN paper's task 3.

The supplementary file ``real_pend_h_1.txt`` (not shipped: no stated licence) is text: a
header line starting with ``%`` that names the state columns (``% o v``: angle and angular
velocity), then rows of whitespace-separated floats ``trial time angle angular_velocity``
(556 rows at 6 Hz).

:func:`read_schmidt_lipson` parses it; :func:`schmidt_lipson_to_h5md` writes each trial as
an hnnsim H5MD trajectory with q = angle and p = angular velocity (the reference code's
choice: the momentum is the angular velocity, in units where m l^2 = 1). Measured data has no
exact derivatives: velocity, force and energy are stored as NaN and the run's ``extra``
says ``"derivatives": "none"``, so :func:`hnnsim.learn.load` differentiates the states
instead (finite differences; ``derivatives="forward"`` is what the reference code does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ..h5md import write_measured as write_measured_h5md  # noqa: F401  (its old home)
from ..errors import InputError, MissingFileError

#: ``info.system["name"]`` of the files written here (not a registered system: the file
#: holds measurements, not a simulation)
SYSTEM_NAME = "measured-pendulum"


@dataclass
class SchmidtLipsonRows:
    """Rows of a Schmidt & Lipson file.

    Attributes
    ----------
    trial : ndarray of int, shape ``[R]``
    time, angle, velocity : ndarray, shape ``[R]``
    columns : list of str
        The header's names of the state columns (``["o", "v"]``).
    path : str
    """

    trial: np.ndarray
    time: np.ndarray
    angle: np.ndarray
    velocity: np.ndarray
    columns: List[str]
    path: str

    @property
    def trials(self) -> List[int]:
        return sorted(set(int(k) for k in self.trial))

    def __len__(self) -> int:
        return int(self.time.shape[0])


def read_schmidt_lipson(path: str | os.PathLike) -> SchmidtLipsonRows:
    """Parse a Schmidt & Lipson measured-pendulum text file.

    Raises
    ------
    FileNotFoundError
    ValueError
        No ``%`` header, a row that is not 4 numbers, non-finite values, or times that do
        not increase within a trial (the message gives the line number).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"no such file: {path}")
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise InputError(f"{path} is empty")
    header = lines[header_at].strip()
    if not header.startswith("%"):
        raise InputError(f"{path}: expected a header line starting with '%' (e.g. '% o v'), found {header[:40]!r}; "
                         "is this a Schmidt & Lipson data file?")
    columns = header.lstrip("%").split()
    if len(columns) != 2:
        raise InputError(f"{path}: the header names {len(columns)} state column(s) ({columns}); a pendulum file "
                         "names 2 (angle, angular velocity), e.g. '% o v'")
    rows = []
    for lineno, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        text = line.strip().rstrip(",")
        if not text or text.startswith("%"):
            continue
        parts = text.replace(",", " ").split()
        if len(parts) != 4:
            raise InputError(f"{path}:{lineno}: expected 4 columns (trial, time, angle, angular velocity), "
                             f"found {len(parts)}: {line[:60]!r}")
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            raise InputError(f"{path}:{lineno}: not a number in {line[:60]!r}") from None
    if not rows:
        raise InputError(f"{path}: no data rows after the header")
    a = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(a), axis=1))[0])
        raise InputError(f"{path}: non-finite value in data row {bad + 1}")
    trial = a[:, 0].astype(np.int64)
    for k in set(trial.tolist()):
        t = a[trial == k, 1]
        if np.any(np.diff(t) <= 0):
            raise InputError(f"{path}: the times of trial {k} do not strictly increase")
    return SchmidtLipsonRows(trial=trial, time=a[:, 1].copy(), angle=a[:, 2].copy(), velocity=a[:, 3].copy(),
                              columns=columns, path=path)


def schmidt_lipson_to_h5md(src: str | os.PathLike, out: str | os.PathLike, *, trials: Optional[Sequence[int]] = None,
                           overwrite: bool = False) -> List[str]:
    """Convert a Schmidt & Lipson file into H5MD trajectories, one per trial.

    Parameters
    ----------
    src : path
        The text file.
    out : path
        Output file; with more than one trial, ``out`` ``x.h5`` becomes ``x.trial1.h5``, ...
    trials : sequence of int, optional
        Only these trials (default: all).

    Returns
    -------
    list of str
        The files written.
    """
    data = read_schmidt_lipson(src)
    chosen = data.trials if trials is None else [int(k) for k in trials]
    missing = sorted(set(chosen) - set(data.trials))
    if missing:
        raise InputError(f"{data.path} has no trial(s) {missing}; it holds {data.trials}")
    out = os.fspath(out)
    root, ext = os.path.splitext(out)
    paths = []
    for k in chosen:
        sel = data.trial == k
        path = out if len(chosen) == 1 else f"{root}.trial{k}{ext or '.h5'}"
        system = {"name": SYSTEM_NAME, "parameters": {}}
        extra = {"source": "Schmidt & Lipson 2009 measured pendulum", "source_file": os.path.basename(data.path),
                 "trial": int(k), "columns": data.columns, "q": "angle (rad)", "p": "angular velocity (rad/s)"}
        paths.append(write_measured_h5md(path, data.time[sel], data.angle[sel, None], data.velocity[sel, None],
                                         shape=(1, 1), system=system, extra=extra, overwrite=overwrite))
    return paths
