"""``hnnsim demo``: the built-in demonstration run.

Simulates the ideal pendulum with symplectic integrators and with RK4 for many periods,
streams each run to an H5MD file, reads the files back, and reports energy error, drift,
period error against the exact elliptic-integral period and cost per step; then does the
same for the non-separable double pendulum with implicit midpoint and Tao. Writes
``energy.png`` when matplotlib is installed.
"""

from __future__ import annotations

import os
import time
from typing import List, Optional

import numpy as np

import integrators
import systems

from .simulator import Simulator
from .trajectory import Trajectory, open_trajectory


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


def _table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in rows])


def run_demo(outdir: str = "hnnsim-demo", quick: bool = False) -> int:
    """Run the demonstration; returns 0. ``quick`` shrinks it to a few seconds."""
    os.makedirs(outdir, exist_ok=True)
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
    print(_table(rows, header))

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
    print(_table(rows, header))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"\nfiles in {outdir}/ (install matplotlib for energy.png)")
        return 0
    fig, ax = plt.subplots(figsize=(7, 4))
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
    return 0
