"""The ``hnnsim`` command line: simulate, info, list, demo.

Examples
--------
::

    hnnsim simulate pendulum --integrator leapfrog --dt 0.01 --steps 100000 --every 10 -o pend.h5
    hnnsim simulate pendulum --param length=2.0 --q0 1.0 --p0 0.0 --dt 0.01 --steps 1000 -o p2.h5
    hnnsim simulate double-pendulum --integrator tao --integrator-param omega=50 --dt 0.001 --steps 10000 -o dp.h5
    hnnsim simulate --resume pend.h5 --steps 50000
    hnnsim info pend.h5
    hnnsim list
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Sequence


import integrators
import systems


def _key_values(items: Optional[Sequence[str]], what: str) -> dict:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"hnnsim: error: {what} must look like NAME=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _floats(text: Optional[str], what: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise SystemExit(f"hnnsim: error: {what} must be numbers separated by spaces or commas, got {text!r}") from None


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import Simulator

    if args.resume:
        sim = Simulator.resume(args.resume)
        print(f"resuming {args.resume} at step {sim.step} (t = {sim.time:.6g}) with {sim.integrator!r}", file=sys.stderr)
        traj = sim.run(args.steps, progress=not args.quiet)
    else:
        if not args.system:
            raise SystemExit("hnnsim: error: name a system (see `hnnsim list`) or pass --resume FILE")
        if not args.output:
            raise SystemExit("hnnsim: error: give an output file with -o FILE.h5")
        system = systems.get(args.system, **_key_values(args.param, "--param"))
        integrator = integrators.get(args.integrator, dt=args.dt, **_key_values(args.integrator_param, "--integrator-param"))
        q0, p0 = _floats(args.q0, "--q0"), _floats(args.p0, "--p0")
        if (q0 is None) != (p0 is None):
            raise SystemExit("hnnsim: error: give both --q0 and --p0, or neither (default initial state)")
        sim = Simulator(system, integrator, q0, p0)
        traj = sim.run(args.steps, args.every, out=args.output, progress=not args.quiet, overwrite=args.overwrite)
    drift = traj.energy_drift()
    print(f"wrote {traj.path}: {len(traj)} frames, steps {int(traj.step[0])}..{int(traj.step[-1])}, "
          f"max |dH|/|H0| = {drift['max_rel']:.3e}")
    return 0


def describe_file(path: str) -> str:
    """Human-readable summary of a trajectory file (what ``hnnsim info`` prints)."""
    from . import h5md
    from .trajectory import open_trajectory

    traj = open_trajectory(path)
    info = h5md.read_info(path)
    lines = [f"file        {path}",
             f"system      {info.system['name']}  {json.dumps(info.system.get('parameters', {}))}",
             f"state       {info.shape[0]} x {info.shape[1]} (N x D), separable: {info.separable}",
             f"integrator  {info.integrator['name']}  {json.dumps(info.integrator.get('parameters', {}))}",
             f"frames      {len(traj)}  (every {info.every} steps)"]
    if len(traj):
        drift = traj.energy_drift()
        lines += [f"steps       {int(traj.step[0])} .. {int(traj.step[-1])}",
                  f"time        {traj.t[0]:.6g} .. {traj.t[-1]:.6g}",
                  f"energy      H0 = {traj.energy[0]:.12g}, max |H - H0| = {drift['max_abs']:.3e} "
                  f"(relative {drift['max_rel']:.3e}), drift slope {drift['slope']:.3e} per unit time"]
    ck = traj.checkpoint
    lines.append(f"checkpoint  step {ck['step']}" if ck else "checkpoint  none")
    if info.extra:
        lines.append(f"extra       {json.dumps(info.extra)}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    for i, path in enumerate(args.files):
        if i:
            print()
        print(describe_file(path))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print("systems:")
    for name in systems.available():
        cls = systems.registry.factory(name)
        defaults = getattr(cls, "defaults", {})
        sep = "separable" if getattr(cls, "separable", False) else "non-separable"
        print(f"  {name:20s} {sep:14s} {' '.join(f'{k}={v}' for k, v in defaults.items())}")
    print("integrators:")
    for name in integrators.available():
        cls = integrators.registry.factory(name)
        kind = "symplectic" if cls.symplectic else "non-symplectic"
        needs = "separable H" if cls.requires_separable else "any H"
        print(f"  {name:20s} order {cls.order}  {kind:15s} {needs}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(outdir=args.outdir, quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="hnnsim", description="Simulate analytic and learned Hamiltonian systems.")
    parser.add_argument("--version", action="version", version=f"hnnsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="integrate a system and stream the trajectory to an H5MD file")
    s.add_argument("system", nargs="?", help="system name (hnnsim list)")
    s.add_argument("--integrator", default="leapfrog", help="integrator name (default leapfrog)")
    s.add_argument("--dt", type=float, default=0.01, help="step size (default 0.01)")
    s.add_argument("--steps", type=int, required=True, help="number of steps")
    s.add_argument("--every", type=int, default=None, help="steps between frames (default 1)")
    s.add_argument("--param", action="append", metavar="NAME=VALUE", help="system parameter, repeatable")
    s.add_argument("--integrator-param", action="append", metavar="NAME=VALUE", help="integrator parameter (omega, order, max_iter)")
    s.add_argument("--q0", help="initial coordinates, e.g. '1.0' or '0 0.1'")
    s.add_argument("--p0", help="initial momenta")
    s.add_argument("-o", "--output", help="output H5MD file")
    s.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    s.add_argument("--resume", metavar="FILE", help="continue FILE from its checkpoint")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)

    i = sub.add_parser("info", help="describe trajectory files")
    i.add_argument("files", nargs="+")
    i.set_defaults(func=cmd_info)

    l = sub.add_parser("list", help="list the registered systems and integrators")
    l.set_defaults(func=cmd_list)

    d = sub.add_parser("demo", help="the built-in demonstration run")
    d.add_argument("--outdir", default="hnnsim-demo", help="where to write files (default ./hnnsim-demo)")
    d.add_argument("--quick", action="store_true", help="a tiny budget (seconds), for tests")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .errors import IntegratorError, TrajectoryError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "simulate" and args.every is None and not args.resume:
        args.every = 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hnnsim: interrupted; files hold every completed frame and a checkpoint", file=sys.stderr)
        return 130
    except (KeyError, ValueError, TypeError, FileNotFoundError, FileExistsError, TrajectoryError, IntegratorError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"hnnsim: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
