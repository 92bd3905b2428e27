"""``hnnsim experiment spring|pendulum|two-body|real``: the HNN paper's tasks, reproduced with hnnsim.

Follows Greydanus, Dzamba & Yosinski (2019) and its reference code (see
``shared/reference/hnn-paper.md``) for data, model and training; the data come from
hnnsim's own simulator (or, for ``real``, the user's copy of the Schmidt & Lipson file) and
the rollouts are done both ways. Choices that differ from the reference code, and why
(``docs/hnn-experiments.md`` has the full list and the measured tables):

- Trajectories are integrated with hnnsim's Yoshida-4 (10 steps per frame for the 1-D
  tasks, 40 for two-body) instead of scipy's RK45 at rtol 1e-10: a symplectic integrator;
  the difference in the states is far below the noise (1e-7 vs 0.1) and, for two-body
  (no noise), the relative energy error is ~1e-14.
- Initial directions are uniform in angle; the reference normalises a uniform draw from the
  square (slightly favouring diagonals). Radii are as in the paper.
- Frames are at ``linspace(0, T, points)`` as the reference (the simulator's ``t0 + step * dt``
  with ``dt = T / (points - 1) / substeps``).
- Energy MSE uses the *true* Hamiltonian of the task (the reference's pendulum analysis uses
  q^2 + p^2) and fresh initial states from the training distribution; rollouts span
  t in [0, 20] at 100 points (two-body: [0, 25] at 500 points).
- Paper's rollout: scipy RK45 on the learned vector field, rtol = atol = 1e-9 (a bound on
  the time spent; the learned-model error dominates). hnnsim's rollout: implicit midpoint on
  the learned system (4 steps per output interval), a symplectic method.
- Two-body: the test set is 20% of the trajectories chosen at random with the seed (the
  reference takes the first 20% of its pooled samples: the same distribution).
- Real pendulum: see :func:`run_real`.
- Uncertainties: losses are mean ± standard error over the squared errors of all samples
  and components, as the reference prints them; energy MSE is the mean over the rollouts ±
  the standard error of the means of 5 disjoint random splits.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

import integrators
import systems
from integrators.runge_kutta import rk4_step

from ..errors import InputError, MissingFileError
from ..learn import data as _data
from ..learn import sampling
from ..learn.fit import fit as _fit
from ..learn.fit import rollout as _rollout
from ..learn.pendulum_data import read_schmidt_lipson, schmidt_lipson_to_h5md
from . import rundir
from .tables import format_table

#: the tasks, with the paper's Table 1 (train, test, energy; baseline, HNN; in units of ``scale``)
TASKS: Dict[str, Dict[str, Any]] = {
    "spring": dict(title="mass-spring, H = q^2 + p^2", system=("harmonic-oscillator", {"mass": 0.5, "k": 2.0}),
                   radius=(0.1, 1.0), t_end=3.0, points=30, trajectories=50, noise=0.1, weight_decay=1e-4,
                   steps=2000, batch_size=None, test_fraction=0.5, substeps=10, rollout=(20.0, 100), scale=1e3,
                   paper={"train": ("37 ± 2", "37 ± 2"), "test": ("37 ± 2", "36 ± 2"),
                          "energy": ("170 ± 20", "0.38 ± 0.1")}),
    "pendulum": dict(title="ideal pendulum, H = 3(1 - cos q) + p^2",
                     system=("pendulum", {"mass": 0.5, "length": 1.0, "g": 6.0}),
                     radius=(1.3, 2.3), t_end=3.0, points=45, trajectories=50, noise=0.1, weight_decay=1e-4,
                     steps=2000, batch_size=None, test_fraction=0.5, substeps=10, rollout=(20.0, 100), scale=1e3,
                     paper={"train": ("33 ± 2", "33 ± 2"), "test": ("35 ± 2", "36 ± 2"),
                            "energy": ("42 ± 10", "25 ± 5")}),
    "two-body": dict(title="two-body, G = m1 = m2 = 1", system=("two-body", {"m1": 1.0, "m2": 1.0, "G": 1.0}),
                     radius=(0.5, 1.5), orbit_noise=0.05, t_end=20.0, points=50, trajectories=1000, noise=0.0,
                     weight_decay=0.0, steps=10000, batch_size=200, test_fraction=0.2, substeps=40,
                     rollout=(25.0, 500), scale=1e6,
                     paper={"train": ("33 ± 1", "3.0 ± 0.1"), "test": ("30 ± 0.9", "2.8 ± 0.1"),
                            "energy": ("6.3e4 ± 3e4", "39 ± 5")}),
}

#: the measured pendulum (task 3), run by :func:`run_real`
REAL = dict(title="real pendulum (Schmidt & Lipson 2009)", weight_decay=1e-5, steps=2000, batch_size=None,
            test_fraction=0.2, derivatives="forward", scale=1e3,
            paper={"train": ("2.7 ± 0.2", "9.2 ± 0.5"), "test": ("2.2 ± 0.3", "6.0 ± 0.6"),
                   "energy": ("390 ± 69", "14 ± 5")})

#: ``--quick``: a tiny budget (seconds) that exercises the whole pipeline, not the paper's numbers
QUICK = dict(trajectories=40, steps=300, hidden=32, rollouts=5, rollout_points=100)

REAL_DATA_HELP = ("the real-pendulum task needs the Schmidt & Lipson measured-pendulum file `real_pend_h_1.txt` "
                  "(supplementary material of Schmidt & Lipson, 'Distilling free-form natural laws from "
                  "experimental data', Science 2009; the file the HNN reference code, greydanus/hamiltonian-nn, uses "
                  "for its real-pendulum experiment). It is not shipped with hnnsim (no stated licence): get a copy "
                  "and pass --data real_pend_h_1.txt (to try the pipeline without it, write a synthetic file with "
                  "hnnsim.apps.experiment.write_synthetic_pendulum)")


def _loss(model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from ..learn.fit import predict

    d = (predict(model, x) - y) ** 2
    return float(d.mean()), float(d.std() / np.sqrt(d.shape[0]))  # per sample, as the reference


def _fit_both(data, hidden: int, steps: int, weight_decay: float, batch_size, seed: int, progress: bool):
    eval_every = 10 if batch_size is None else 100
    return {kind: _fit(data, model=kind, hidden=hidden, layers=2, steps=steps, lr=1e-3, weight_decay=weight_decay,
                       batch_size=batch_size, seed=seed, eval_every=eval_every, progress=progress)
            for kind in ("baseline", "hnn")}


def _energy_mse(energy: Callable[[np.ndarray], np.ndarray], runs: Dict[str, np.ndarray], reference: np.ndarray,
                seed: int) -> Dict[str, tuple]:
    """Mean over rollouts of the MSE of ``energy`` along each run against ``reference`` (``[T, B, 2n]``),
    ± the standard error of the means of 5 disjoint random splits of the rollouts."""
    E_ref = energy(reference)
    B = reference.shape[1]
    groups = [g for g in np.array_split(np.random.default_rng(seed + 1).permutation(B), min(5, B)) if g.size]
    out = {}
    for key, x in runs.items():
        per = np.mean((energy(x) - E_ref) ** 2, axis=0)  # [rollouts]
        means = np.array([per[g].mean() for g in groups])
        err = float(means.std(ddof=1) / np.sqrt(len(groups))) if len(groups) > 1 else float("nan")
        out[key] = (float(per.mean()), err)
    return out


def _report(results: Dict[str, Any], title: str, subtitle: str, paper: Dict[str, tuple], scale: float, folder: str,
            t_begin: float) -> Dict[str, Any]:
    """Print the table beside the paper's; write ``results.json`` and ``results.md`` into ``folder``."""

    def fmt(pair):
        return f"{pair[0] * scale:.3g} ± {pair[1] * scale:.2g}"

    m, e = results["models"], results["energy"]
    rows = [["train loss", fmt(m["baseline"]["train"]), fmt(m["hnn"]["train"]), *paper["train"]],
            ["test loss", fmt(m["baseline"]["test"]), fmt(m["hnn"]["test"]), *paper["test"]],
            ["energy MSE, RK45 rollout", fmt(e["baseline-rk45"]), fmt(e["hnn-rk45"]), *paper["energy"]],
            ["energy MSE, implicit midpoint (hnnsim)", "-", fmt(e["hnn-midpoint"]), "-", "-"]]
    table = format_table(rows, [f"x 1e{int(round(np.log10(scale)))}", "baseline", "HNN", "paper baseline", "paper HNN"])
    results["seconds"] = time.perf_counter() - t_begin
    print(f"\n{title} ({subtitle})")
    print(table)
    print(f"total {results['seconds']:.0f} s; files in {folder}/")
    with open(os.path.join(folder, "results.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    with open(os.path.join(folder, "results.md"), "w") as fh:
        fh.write(f"### {title}\n\n{subtitle}\n\n```\n{table}\n```\n")
    results["table"] = table
    rundir.finish(folder, f"hnnsim experiment {os.path.basename(folder)}")
    return results


def _losses(fits, data) -> Dict[str, Any]:
    return {kind: {"train": _loss(f.model, data.x, data.dxdt), "test": _loss(f.model, data.x_test, data.dxdt_test),
                   "seconds": f.seconds} for kind, f in fits.items()}


def run_experiment(task: str, outdir: str = "hnnsim-experiment", seed: int = 0, steps: Optional[int] = None,
                   hidden: Optional[int] = None, rollouts: Optional[int] = None, progress: bool = True,
                   trajectories: Optional[int] = None, quick: bool = False, data: Optional[str] = None
                   ) -> Dict[str, Any]:
    """Run one task; print the table; write ``results.json`` and ``results.md`` into ``outdir/task``.

    ``steps``, ``hidden``, ``rollouts`` and ``trajectories`` default to the paper's settings
    (2000 or 10000 steps, 200, 15, the task's count); ``quick`` sets a tiny budget
    (:data:`QUICK`) for whatever is not given. ``task="real"`` needs ``data`` (see :func:`run_real`).
    """
    if task == "real":
        return run_real(data, outdir=outdir, seed=seed, steps=steps, hidden=hidden, progress=progress, quick=quick)
    if task not in TASKS:
        raise InputError(f"unknown experiment {task!r}; available: {', '.join(available())}")
    cfg = TASKS[task]
    q = QUICK if quick else {}
    steps = int(steps if steps is not None else q.get("steps", cfg["steps"]))
    hidden = int(hidden if hidden is not None else q.get("hidden", 200))
    rollouts = int(rollouts if rollouts is not None else q.get("rollouts", 15))
    n_traj = int(trajectories if trajectories is not None else q.get("trajectories", cfg["trajectories"]))
    if rollouts < 1 or n_traj < 2:
        raise InputError(f"need at least 1 rollout and 2 trajectories, got {rollouts} and {n_traj}")
    t_begin = time.perf_counter()
    name, params = cfg["system"]
    truth = systems.get(name, **params)
    n = int(np.prod(truth.state_shape()))
    folder = os.path.join(outdir, task)
    rundir.prepare(folder, f"hnnsim experiment {task}")
    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    rng = np.random.default_rng(seed)
    sub = cfg["substeps"]
    h = cfg["t_end"] / (cfg["points"] - 1)
    paths = []
    for i, x0 in enumerate(sampling.initial_states(cfg, rng, n_traj)):
        path = os.path.join(folder, "data", f"{task}.{i}.h5")
        sampling.simulate_state(truth, integrators.Yoshida4(dt=h / sub), x0, sub * (cfg["points"] - 1), sub, out=path)
        paths.append(path)
    data_set = _data.load(paths, noise=cfg["noise"], test_fraction=cfg["test_fraction"], seed=seed)
    print(f"{cfg['title']}: {len(paths)} trajectories of {cfg['points']} points in [0, {cfg['t_end']:g}] "
          f"({data_set.n_train} train / {data_set.n_test} test samples, noise {cfg['noise']}); "
          f"simulated in {time.perf_counter() - t_begin:.1f} s")
    fits = _fit_both(data_set, hidden, steps, cfg["weight_decay"], cfg["batch_size"], seed, progress)
    learned = fits["hnn"].to_system(f"experiment-{task}-hnn", replace=True)
    learned.save(os.path.join(folder, f"{task}-hnn.hnn"))

    # rollouts from fresh initial states of the training distribution
    t_end, points = cfg["rollout"]
    if quick:
        points = min(points, q["rollout_points"])
    X0 = sampling.initial_states(cfg, rng, rollouts)
    t_eval = np.linspace(0.0, t_end, points)
    he = t_eval[1]
    true_x = np.stack([sampling.simulate_state(truth, integrators.Yoshida4(dt=he / 20), x0, 20 * (points - 1), 20) for x0 in X0], axis=1)
    t_roll = time.perf_counter()
    runs = {"baseline-rk45": _rollout(fits["baseline"].model, X0, t_eval, method="RK45", rtol=1e-9, atol=1e-9),
            "hnn-rk45": _rollout(fits["hnn"].model, X0, t_eval, method="RK45", rtol=1e-9, atol=1e-9),
            "hnn-midpoint": np.stack([sampling.simulate_state(learned, integrators.ImplicitMidpoint(dt=he / 4), x0, 4 * (points - 1), 4)
                                      for x0 in X0], axis=1)}
    t_roll = time.perf_counter() - t_roll
    results: Dict[str, Any] = {"task": task, "seed": seed, "steps": steps, "hidden": hidden, "quick": bool(quick),
                               "trajectories": n_traj, "rollouts": rollouts, "rollout_points": points,
                               "batch_size": cfg["batch_size"], "n_train": data_set.n_train,
                               "n_test": data_set.n_test, "rollout_seconds": t_roll,
                               "learned_system": learned.name, "models": _losses(fits, data_set)}
    results["energy"] = _energy_mse(lambda x: truth.energy(x[..., :n], x[..., n:]), runs, true_x, seed)
    batch = "full-batch" if cfg["batch_size"] is None else f"batch {cfg['batch_size']}"
    subtitle = (f"seed {seed}, {n_traj} trajectories, 2 x {hidden} tanh, {steps} {batch} steps, {rollouts} rollouts "
                f"to t = {t_end:g} at {points} points")
    return _report(results, cfg["title"], subtitle, cfg["paper"], cfg["scale"], folder, t_begin)


def _fit_pendulum_energy(x: np.ndarray, dxdt: np.ndarray) -> tuple[float, Callable[[np.ndarray], np.ndarray]]:
    """Least-squares ``a`` in dp/dt = -a sin q (training data only); E = a (1 - cos q) + p^2 / 2."""
    s = np.sin(x[:, 0])
    a = float(-(s @ dxdt[:, 1]) / max(s @ s, 1e-300))

    def energy(y: np.ndarray) -> np.ndarray:
        return a * (1.0 - np.cos(y[..., 0])) + 0.5 * y[..., 1] ** 2

    return a, energy


def run_real(data: Optional[str], outdir: str = "hnnsim-experiment", seed: int = 0, steps: Optional[int] = None,
             hidden: Optional[int] = None, progress: bool = True, quick: bool = False) -> Dict[str, Any]:
    """Task 3: the Schmidt & Lipson measured pendulum (``data``: the ``real_pend_h_1.txt`` file).

    As the reference code: q = angle, p = angular velocity; the first 80% of the time series
    trains and the last 20% tests; targets are forward finite differences of the measured
    states; full batch, weight decay 1e-5, 2000 steps. The true Hamiltonian is unknown, so
    the energy along the rollouts is the ideal-pendulum energy E = a (1 - cos q) + p^2 / 2
    with ``a`` (= g / l) fitted by least squares to the training targets; the rollouts
    (baseline RK45, HNN RK45, HNN implicit midpoint) start at the first test frame and run
    over the test segment at the measured times, against the measured states; the error bar
    is over 5 contiguous time blocks of that segment.
    """
    if data is None:
        raise InputError(REAL_DATA_HELP)
    if not os.path.exists(data):
        raise MissingFileError(f"no such file: {data}; {REAL_DATA_HELP}")

    cfg = REAL
    q = QUICK if quick else {}
    steps = int(steps if steps is not None else q.get("steps", cfg["steps"]))
    hidden = int(hidden if hidden is not None else q.get("hidden", 200))
    t_begin = time.perf_counter()
    folder = os.path.join(outdir, "real")
    rundir.prepare(folder, "hnnsim experiment real")
    measured = read_schmidt_lipson(data)
    trial = measured.trials[0]
    path = schmidt_lipson_to_h5md(data, os.path.join(folder, "real-pendulum.h5"), trials=[trial], overwrite=True)[0]
    data_set = _data.load([path], test_fraction=cfg["test_fraction"], seed=seed, derivatives=cfg["derivatives"])
    print(f"{cfg['title']}: {os.path.basename(data)} trial {trial}, {len(measured)} rows; {data_set.n_train} train / "
          f"{data_set.n_test} test samples (first 80% of the series trains; forward differences)")
    fits = _fit_both(data_set, hidden, steps, cfg["weight_decay"], cfg["batch_size"], seed, progress)
    learned = fits["hnn"].to_system("experiment-real-hnn", replace=True)
    learned.save(os.path.join(folder, "real-hnn.hnn"))

    a, energy = _fit_pendulum_energy(data_set.x, data_set.dxdt)
    sel = measured.trial == trial
    t_all = measured.time[sel]
    x_all = np.stack([measured.angle[sel], measured.velocity[sel]], axis=1)
    cut = int(round(len(t_all) * (1.0 - cfg["test_fraction"])))
    t_eval, reference = t_all[cut:], x_all[cut:]
    if t_eval.size < 2:
        raise InputError(f"{data}: too few rows ({len(t_all)}) for a test segment to roll out over")
    x0 = reference[:1]
    t_roll = time.perf_counter()
    runs = {"baseline-rk45": _rollout(fits["baseline"].model, x0, t_eval, method="RK45", rtol=1e-9, atol=1e-9),
            "hnn-rk45": _rollout(fits["hnn"].model, x0, t_eval, method="RK45", rtol=1e-9, atol=1e-9)}
    # implicit midpoint, 4 steps per (median) sampling interval; frames interpolated onto the measured times
    h = float(np.median(np.diff(t_eval)))
    nsteps = int(np.ceil((t_eval[-1] - t_eval[0]) / h))
    mid = sampling.simulate_state(learned, integrators.ImplicitMidpoint(dt=h / 4), x0[0], 4 * nsteps, 4)
    t_mid = t_eval[0] + h * np.arange(mid.shape[0])
    runs["hnn-midpoint"] = np.stack([np.interp(t_eval, t_mid, mid[:, k]) for k in range(2)], axis=1)[:, None, :]
    t_roll = time.perf_counter() - t_roll
    # energy MSE per time block (5 contiguous blocks play the role of the 5 splits)
    E_ref = energy(reference)
    blocks = [b for b in np.array_split(np.arange(t_eval.size), min(5, t_eval.size)) if b.size]
    energy_mse = {}
    for key, x in runs.items():
        d2 = (energy(x[:, 0]) - E_ref) ** 2
        means = np.array([d2[b].mean() for b in blocks])
        energy_mse[key] = (float(d2.mean()), float(means.std(ddof=1) / np.sqrt(len(blocks))))
    results: Dict[str, Any] = {"task": "real", "seed": seed, "steps": steps, "hidden": hidden, "quick": bool(quick),
                               "data": os.path.abspath(data), "trial": trial, "n_train": data_set.n_train,
                               "n_test": data_set.n_test, "energy_a": a, "rollout_seconds": t_roll,
                               "learned_system": learned.name, "models": _losses(fits, data_set),
                               "energy": energy_mse}
    subtitle = (f"seed {seed}, 2 x {hidden} tanh, {steps} full-batch steps; energy a(1 - cos q) + p^2/2 with fitted "
                f"a = {a:.4g}, one rollout over the test segment ({t_eval[-1] - t_eval[0]:.3g} s), ± over 5 time blocks")
    return _report(results, cfg["title"], subtitle, cfg["paper"], cfg["scale"], folder, t_begin)


def write_synthetic_pendulum(path: str, seconds: float = 30.0, interval: float = 0.05, damping: float = 0.02,
                             a: float = 9.81, angle: float = 1.0, noise: float = 1e-3, seed: int = 0,
                             trial: int = 1) -> str:
    """A damped pendulum in the Schmidt & Lipson text format (``% o v`` header; trial, time,
    angle, angular velocity), for trying ``hnnsim experiment real`` without the measured file.

    q'' = -a sin q - damping q', sampled every ``interval`` s with Gaussian ``noise`` on
    both columns (integrated by classical RK4 with 20 substeps per sample).
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds / interval)) + 1
    y = np.array([angle, 0.0])

    def f(y: np.ndarray) -> np.ndarray:
        return np.array([y[1], -a * np.sin(y[0]) - damping * y[1]])

    hs = interval / 20
    rows = []
    for _ in range(n):
        rows.append(y.copy())
        for _ in range(20):
            y = rk4_step(f, y, hs)
    x = np.asarray(rows) + noise * rng.standard_normal((n, 2))
    t = 5.0 + interval * np.arange(n)
    with open(path, "w") as fh:
        fh.write("% o v\n")
        fh.writelines(f"{trial} {ti:.4f} {qi:.6f} {pi:.6f}\n" for ti, (qi, pi) in zip(t, x))
    return path


def available() -> List[str]:
    return list(TASKS) + ["real"]
