"""``hnnsim demo``: the built-in demonstration run.

:func:`run_demo` (``hnnsim demo``), the main job, in about a minute on two CPU cores:

1. simulate the HNN paper's mass-spring (H = q^2 + p^2: ``HarmonicOscillator(mass=0.5,
   k=2)``) from random initial states with hnnsim's own integrator, one H5MD file per
   trajectory;
2. read them back (:func:`hnnsim.learn.load`, noise 0.1 on the inputs as in the paper) and
   train an HNN, a separable HNN (T(p) + V(q)) and the baseline MLP;
3. register the learned Hamiltonians as systems, save them (``.hnn``) and roll them out in
   the simulator with symplectic integrators (implicit midpoint; leapfrog for the separable
   one), beside the baseline (and the HNN) rolled out the paper's way, adaptive RK45;
4. compare with the true trajectories: a table of train/test loss, energy MSE (true H
   along the rollout vs along the truth, the paper's metric), coordinate MSE and the drift
   of each model's own learned energy; a plot ``demo.png``.

:func:`run_integrator_demo` (``hnnsim demo --integrators``) is the integrator showcase:
pendulum and double pendulum, energy error, drift, period error and cost per step.
"""

from __future__ import annotations

import json
import os
import time
from typing import List, Optional

import numpy as np

import integrators
import systems

from ..errors import MissingExtraError
from ..extras import figure, require
from ..simulator import Simulator
from ..trajectory import Trajectory, open_trajectory
from . import rundir
from .tables import format_table


def _period(traj: Trajectory) -> float:
    """Mean period from upward zero crossings of q (linear interpolation)."""
    q = traj.q[:, 0, 0]
    idx = np.flatnonzero((q[:-1] < 0) & (q[1:] >= 0))
    if idx.size < 2:
        return float("nan")
    tc = traj.t[idx] - q[idx] * (traj.t[idx + 1] - traj.t[idx]) / (q[idx + 1] - q[idx])
    return float((tc[-1] - tc[0]) / (idx.size - 1))


def _row(name: str, traj: Trajectory, seconds: float, steps: int, period_err: Optional[float]) -> List[str]:
    d = traj.energy_drift()
    per = "-" if period_err is None else f"{period_err:.2e}"
    return [name, f"{d['max_rel']:.2e}", f"{d['slope']:+.2e}", per, f"{1e9 * seconds / steps:.0f}"]


#: the paper's mass-spring: H = p^2 / (2 m) + k q^2 / 2 = q^2 + p^2
SPRING = {"mass": 0.5, "k": 2.0}

_FULL = dict(trajectories=50, hidden=200, steps=2000, sep_hidden=100, sep_steps=2000, horizon=20.0, rollouts=5)
_QUICK = dict(trajectories=6, hidden=32, steps=150, sep_hidden=16, sep_steps=150, horizon=5.0, rollouts=2)


def _simulate_each(system, integrator, X0: np.ndarray, steps: int, every: int, out: str) -> np.ndarray:
    """One run (and file ``out.format(i)``) per initial state ``X0[i] = [q, p]``; states ``[F, B, 2n]``.

    Members run one at a time rather than as one ensemble: the demo's runs are short, and the
    serial kernel compiles in about a third of the time of the parallel one."""
    from ..learn import sampling

    return np.stack([sampling.simulate_state(system, integrator, x0, steps, every, out=out.format(i))
                     for i, x0 in enumerate(X0)], axis=1)


def run_demo(outdir: str = "hnnsim-demo", quick: bool = False, seed: int = 0) -> int:
    """Simulate, train, roll out and compare (see the module docstring); returns 0.

    ``quick`` shrinks every budget (a few seconds, for tests). Writes into ``outdir``:
    ``data/spring.<i>.h5`` (training trajectories), ``spring-hnn.hnn`` and
    ``spring-separable-hnn.hnn`` (learned systems), ``truth.<i>.h5``, ``rollout-hnn.<i>.h5``,
    ``rollout-separable.<i>.h5`` (rollouts), ``results.json`` and ``demo.png``.
    """
    require("torch", "the HNN demo (hnnsim demo; `hnnsim demo --integrators` needs no torch)")
    from .. import learn
    from ..learn import sampling

    cfg = _QUICK if quick else _FULL
    t_begin = time.perf_counter()
    rundir.prepare(outdir, "hnnsim demo")
    os.makedirs(os.path.join(outdir, "data"), exist_ok=True)
    rng = np.random.default_rng(seed)
    spring = systems.HarmonicOscillator(**SPRING)

    # 1. training data from hnnsim's own simulator: t in [0, 3], a frame every 0.1
    B = cfg["trajectories"]
    t = time.perf_counter()
    pattern = os.path.join(outdir, "data", "spring.{}.h5")
    _simulate_each(spring, integrators.Yoshida4(dt=0.01), sampling.ring_states(rng, B, (0.1, 1.0)), 300, 10, pattern)
    paths = [pattern.format(i) for i in range(B)]
    print(f"1. simulated {B} mass-spring trajectories (H = q^2 + p^2, Yoshida-4, dt = 0.01, t in [0, 3], "
          f"31 frames each) -> {outdir}/data/spring.*.h5  [{time.perf_counter() - t:.1f} s]")

    # 2. train
    data = learn.load(paths, noise=0.1, test_fraction=0.5, seed=seed)
    print(f"2. {data.n_train} training / {data.n_test} test samples (split by trajectory, noise 0.1 on q and p); "
          f"training, Adam lr 1e-3, full batch:")
    fits = {}
    plan = [("hnn", cfg["hidden"], cfg["steps"]), ("baseline", cfg["hidden"], cfg["steps"]),
            ("separable", cfg["sep_hidden"], cfg["sep_steps"])]
    for kind, hidden, steps in plan:
        fits[kind] = learn.fit(data, model=kind, hidden=hidden, layers=2, steps=steps, lr=1e-3, weight_decay=1e-4,
                               seed=seed, eval_every=10, progress=not quick)
        f = fits[kind]
        print(f"   {kind:9s} 2 x {hidden:3d} tanh, {steps} steps: train {f.train_loss:.4f}, test {f.test_loss:.4f} "
              f"[{f.seconds:.1f} s]")

    # 3. learned systems: registered (the simulator and the files name them) and saved
    hnn = fits["hnn"].to_system("spring-hnn", replace=True)
    sep = fits["separable"].to_system("spring-separable-hnn", replace=True)
    hnn.save(os.path.join(outdir, "spring-hnn.hnn"))
    sep.save(os.path.join(outdir, "spring-separable-hnn.hnn"))
    print(f"3. registered and saved {outdir}/spring-hnn.hnn ({hnn.model_hash[:12]}) and "
          f"{outdir}/spring-separable-hnn.hnn ({sep.model_hash[:12]})")

    # 4. rollouts from test initial states over t in [0, horizon], a frame every 0.1
    tests = [td for td in data.trajectories if td.split == "test"][: cfg["rollouts"]]
    X0 = np.stack([td.x[0] for td in tests])
    R = X0.shape[0]
    horizon = cfg["horizon"]
    frames_t = np.linspace(0.0, horizon, int(round(horizon / 0.1)) + 1)
    t = time.perf_counter()
    runs = {"truth": _simulate_each(spring, integrators.Yoshida4(dt=0.01), X0, int(round(horizon / 0.01)), 10,
                                    os.path.join(outdir, "truth.{}.h5"))}
    dt = 0.05
    hsteps = int(round(horizon / dt))
    runs["hnn"] = _simulate_each(hnn, integrators.ImplicitMidpoint(dt=dt), X0, hsteps, 2,
                                 os.path.join(outdir, "rollout-hnn.{}.h5"))
    runs["separable"] = _simulate_each(sep, integrators.Leapfrog(dt=dt), X0, hsteps, 2,
                                       os.path.join(outdir, "rollout-separable.{}.h5"))
    runs["baseline"] = fits["baseline"].rollout(X0, frames_t, method="RK45", rtol=1e-9, atol=1e-9)
    runs["hnn-rk45"] = fits["hnn"].rollout(X0, frames_t, method="RK45", rtol=1e-9, atol=1e-9)
    print(f"4. rolled out {R} test states to t = {horizon:g}: truth (Yoshida-4), HNN (implicit midpoint, dt = {dt}), "
          f"separable HNN (leapfrog, dt = {dt}), baseline and HNN with adaptive RK45 (the paper's rollout)  "
          f"[{time.perf_counter() - t:.1f} s]")

    # 5. compare
    def true_H(x):
        return spring.energy(x[..., :1], x[..., 1:])

    H_truth = true_H(runs["truth"])
    rows, results = [], {}
    labels = {"baseline": ("baseline", "RK45 (adaptive)"), "hnn-rk45": ("hnn", "RK45 (adaptive)"),
              "hnn": ("hnn", f"implicit midpoint, dt {dt}"), "separable": ("separable", f"leapfrog, dt {dt}")}
    systems_by_kind = {"hnn": hnn, "separable": sep}
    for key in ("baseline", "hnn-rk45", "hnn", "separable"):
        kind, how = labels[key]
        x = runs[key]
        f = fits[kind]
        energy_mse = float(np.mean((true_H(x) - H_truth) ** 2))
        coord_mse = float(np.mean((x - runs["truth"]) ** 2))
        own = "-"
        own_drift = None
        if key in systems_by_kind:
            Hl = systems_by_kind[key].energy(x[..., :1], x[..., 1:])
            own_drift = float(np.max(np.abs(Hl - Hl[:1]) / np.abs(Hl[:1])))
            own = f"{own_drift:.1e}"
        results[key] = {"model": kind, "rollout": how, "train_loss": f.train_loss, "test_loss": f.test_loss,
                        "energy_mse": energy_mse, "coordinate_mse": coord_mse, "own_energy_max_rel": own_drift,
                        "train_seconds": f.seconds}
        rows.append([kind, how, f"{f.train_loss:.4f}", f"{f.test_loss:.4f}", f"{energy_mse:.2e}", f"{coord_mse:.2e}", own])
    print(f"\n5. Mass-spring, {R} test rollouts over t in [0, {horizon:g}] (energy MSE: true H along the rollout vs "
          "along the truth, the paper's metric):")
    print(format_table(rows, ["model", "rollout", "train loss", "test loss", "energy MSE", "coord MSE", "own dH/H max"]))
    with open(os.path.join(outdir, "results.json"), "w") as fh:
        json.dump({"config": {**cfg, "seed": seed, "spring": SPRING, "noise": 0.1, "rollout_dt": dt},
                   "results": results}, fh, indent=2)

    png = _demo_plot(outdir, runs, frames_t, H_truth, true_H)
    made = f"{png}, " if png else ""
    print(f"\nfiles: {made}{outdir}/results.json, models {outdir}/*.hnn, trajectories {outdir}/*.h5 "
          f"(try: hnnsim analyze {outdir}/rollout-hnn.0.h5 --reference {outdir}/truth.0.h5 --plot)")
    print(f"total {time.perf_counter() - t_begin:.1f} s")
    rundir.finish(outdir, "hnnsim demo")
    return 0


def _demo_plot(outdir: str, runs, t: np.ndarray, H_truth: np.ndarray, true_H) -> Optional[str]:
    try:
        fig = figure("the demo's plot", figsize=(11, 4.3))
    except MissingExtraError as exc:
        print(f"(no demo.png: {exc})")
        return None
    styles = {"truth": dict(color="k", lw=3, alpha=0.3), "baseline": dict(color="tab:red", lw=1),
              "hnn-rk45": dict(color="tab:blue", lw=1, ls=":"), "hnn": dict(color="tab:blue", lw=1),
              "separable": dict(color="tab:green", lw=1, ls="--")}
    names = {"truth": "truth", "baseline": "baseline (RK45)", "hnn-rk45": "HNN (RK45)", "hnn": "HNN (implicit midpoint)",
             "separable": "separable HNN (leapfrog)"}
    ax1, ax2 = fig.subplots(1, 2)
    for key, x in runs.items():
        ax1.plot(x[:, 0, 0], x[:, 0, 1], label=names[key], **styles[key])
        ax2.plot(t, true_H(x[:, 0]), label=names[key], **styles[key])
    ax1.set_xlabel("q")
    ax1.set_ylabel("p")
    ax1.set_aspect("equal", adjustable="datalim")
    ax1.set_title("phase portrait, first test state")
    ax2.set_xlabel("time")
    ax2.set_ylabel("true energy q^2 + p^2")
    ax2.set_title("true energy along the rollouts")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    png = os.path.join(outdir, "demo.png")
    fig.savefig(png, dpi=120)
    return png



def run_integrator_demo(outdir: str = "hnnsim-demo-integrators", quick: bool = False) -> int:
    """The integrator demonstration (``hnnsim demo --integrators``); returns 0.

    Pendulum with five integrators over many periods and the double pendulum with implicit
    midpoint, Tao and RK4: energy error, drift, period error, cost per step. ``quick``
    shrinks it to a few seconds."""
    rundir.prepare(outdir, "hnnsim demo --integrators")
    steps = 20_000 if quick else 2_000_000
    pendulum = systems.Pendulum(length=1.0, g=9.81)
    amplitude = 1.0
    exact = pendulum.period(amplitude)
    header = ["integrator", "max|dH|/H0", "drift/time", "period err", "ns/step"]
    rows, trajs = [], {}
    print(f"Pendulum, amplitude {amplitude} rad, dt = 0.05, {steps} steps ({steps * 0.05 / exact:.0f} periods); "
          f"exact period {exact:.10f}")
    for name in ("leapfrog", "yoshida4", "pefrl", "implicit-midpoint", "rk4"):
        integ = integrators.get(name, dt=0.05)
        path = os.path.join(outdir, f"pendulum-{name}.h5")
        sim = Simulator(pendulum, integ, q0=[amplitude], p0=[0.0])
        sim.run(0, every=10)  # compile outside the timing
        t = time.perf_counter()
        sim.run(steps, every=10, out=path, overwrite=True)
        seconds = time.perf_counter() - t
        traj = open_trajectory(path)
        trajs[name] = traj
        rows.append(_row(name, traj, seconds, steps, abs(_period(traj) - exact) / exact))
    print(format_table(rows, header))

    dp = systems.DoublePendulum()
    q0, p0 = dp.default_state()
    dsteps = 2_000 if quick else 200_000
    rows = []
    print(f"\nDouble pendulum (non-separable), dt = 0.002, {dsteps} steps")
    for integ in (integrators.ImplicitMidpoint(dt=0.002), integrators.Tao(dt=0.002, omega=50.0, order=4),
                  integrators.RK4(dt=0.002)):
        path = os.path.join(outdir, f"double-pendulum-{integ.name}.h5")
        sim = Simulator(dp, integ, q0, p0)
        sim.run(0, every=10)
        t = time.perf_counter()
        sim.run(dsteps, every=10, out=path, overwrite=True)
        seconds = time.perf_counter() - t
        rows.append(_row(f"{integ.name} (order {integ.order})", open_trajectory(path), seconds, dsteps, None))
    print(format_table(rows, header))
    try:
        fig = figure("the integrator demo's plot", figsize=(7, 4))
    except MissingExtraError as exc:
        print(f"\nfiles in {outdir}/ (no energy.png: {exc})")
        rundir.finish(outdir, "hnnsim demo --integrators")
        return 0
    ax = fig.subplots()
    for name, traj in trajs.items():
        ax.plot(traj.t, np.abs(traj.energy - traj.energy[0]) / traj.energy[0] + 1e-18, label=name, lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("time")
    ax.set_ylabel("|H - H0| / H0")
    ax.set_title("Pendulum energy error, dt = 0.05")
    ax.legend()
    fig.tight_layout()
    png = os.path.join(outdir, "energy.png")
    fig.savefig(png, dpi=120)
    print(f"\nfiles and {png} in {outdir}/")
    rundir.finish(outdir, "hnnsim demo --integrators")
    return 0
