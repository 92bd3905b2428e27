"""The ``hnnsim`` command line: simulate, info, list, train, rollout, analyze, demo.

Examples
--------
::

    hnnsim simulate pendulum --integrator leapfrog --dt 0.01 --steps 100000 --every 10 -o pend.h5
    hnnsim simulate pendulum --param length=2.0 --q0 1.0 --p0 0.0 --dt 0.01 --steps 1000 -o p2.h5
    hnnsim simulate lennard-jones --param n_cells=6 --temperature 0.72 --dt 0.005 --steps 10000 --every 100 -o lj.h5
    hnnsim simulate double-pendulum --integrator tao --integrator-param omega=50 --dt 0.001 --steps 10000 -o dp.h5
    hnnsim simulate --resume pend.h5 --steps 50000
    hnnsim info pend.h5
    hnnsim list
    hnnsim train spring.*.h5 --model hnn --steps 2000 -o spring-hnn.hnn
    hnnsim rollout spring-hnn.hnn --integrator implicit-midpoint --dt 0.05 --steps 400 --q0 0.5 --p0 0 -o ro.h5
    hnnsim analyze ro.h5 --reference truth.h5 --plot
    hnnsim experiment two-body --quick
    hnnsim experiment real --data real_pend_h_1.txt
    hnnsim demo
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import List, Optional, Sequence

import numpy as np

import integrators
import systems

from .errors import HnnsimError, InputError, MissingFileError, OutputExistsError


class UsageError(InputError):
    """A command line that cannot work as given (``hnnsim`` prints it and exits with status 2)."""


def _key_values(items: Optional[Sequence[str]], what: str) -> dict:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must look like NAME=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _tolerance(text: str) -> Optional[float]:
    if text.strip().lower() == "none":
        return None
    value = float(text)
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number > 0 or 'none', got {text!r}")
    return value


def _floats(text: Optional[str], what: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"{what} must be numbers separated by spaces or commas, got {text!r}") from None


def _integrator_and_state(args: argparse.Namespace, start: str):
    """The integrator named on the command line and ``--q0``/``--p0`` (both or neither)."""
    integrator = integrators.get(args.integrator, dt=args.dt, **_key_values(args.integrator_param, "--integrator-param"))
    q0, p0 = _floats(args.q0, "--q0"), _floats(args.p0, "--p0")
    if (q0 is None) != (p0 is None):
        raise UsageError(f"give both --q0 and --p0, or neither ({start})")
    return integrator, q0, p0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import Simulator

    if args.resume:
        given = [flag for flag, value in (("a system name", args.system), ("--integrator", args.integrator),
                                          ("--dt", args.dt), ("--every", args.every), ("--param", args.param),
                                          ("--integrator-param", args.integrator_param), ("--q0", args.q0),
                                          ("--p0", args.p0), ("-o", args.output), ("--overwrite", args.overwrite or None),
                                          ("--temperature", args.temperature), ("--seed", args.seed))
                 if value is not None]
        if given:
            raise UsageError(f"--resume continues {args.resume} with the system, integrator, step, report interval "
                             f"and output file it records; drop {', '.join(given)} (or start a new run without "
                             "--resume)")
        sim = Simulator.resume(args.resume)
        print(f"resuming {args.resume} at step {sim.step} (t = {sim.time:.6g}) with {sim.integrator!r}", file=sys.stderr)
        traj = sim.run(args.steps, progress=not args.quiet, energy_tolerance=args.energy_tolerance)
    else:
        if not args.system:
            raise UsageError("name a system (see `hnnsim list`) or pass --resume FILE")
        if not args.output:
            raise UsageError("give an output file with -o FILE.h5")
        system = systems.get(args.system, **_key_values(args.param, "--param"))
        args.integrator = args.integrator or "leapfrog"
        args.dt = 0.01 if args.dt is None else args.dt
        integrator, q0, p0 = _integrator_and_state(args, "default initial state")
        if args.temperature is not None:
            if q0 is not None:
                raise UsageError("--temperature draws the initial state: drop --q0/--p0, or --temperature")
            if not hasattr(system, "lattice_state"):
                raise UsageError(f"{system.name} has no thermal initial state; give --q0 and --p0 instead of "
                                 "--temperature")
            q0, p0 = system.lattice_state(temperature=args.temperature, seed=args.seed)
        elif args.seed is not None:
            raise UsageError("--seed draws the momenta of --temperature; give --temperature too")
        sim = Simulator(system, integrator, q0, p0)
        traj = sim.run(args.steps, args.every or 1, out=args.output, progress=not args.quiet, overwrite=args.overwrite,
                       energy_tolerance=args.energy_tolerance)
    drift = traj.energy_drift()
    print(f"wrote {traj.path}: {len(traj)} frames, steps {int(traj.step[0])}..{int(traj.step[-1])}, "
          f"max |dH|/|H0| = {drift['max_rel']:.3e}")
    for name, values in traj.observables.items():
        if values.ndim == 1 and len(values):
            print(f"{name}: {values[0]:.6g} -> {values[-1]:.6g} (mean {np.mean(values):.6g})")
    return 0


def describe_file(path: str) -> str:
    """Human-readable summary of a trajectory file (what ``hnnsim info`` prints)."""
    from . import h5md
    from .trajectory import lazy_trajectory

    lazy_trajectory(path)  # checks that the system is known (a learned one must be registered)
    s = h5md.summary(path)  # streams: memory flat in the file's size
    info = s["info"]
    lines = [f"file        {path}",
             f"system      {info.system['name']}  {json.dumps(info.system.get('parameters', {}))}",
             f"state       {info.shape[0]} x {info.shape[1]} (N x D), separable: {info.separable}",
             f"integrator  {info.integrator['name']}  {json.dumps(info.integrator.get('parameters', {}))}",
             f"frames      {s['frames']}  (every {info.every} steps)"]
    if s["frames"]:
        drift = s["drift"]
        lines += [f"steps       {s['first_step']} .. {s['last_step']}",
                  f"time        {s['first_time']:.6g} .. {s['last_time']:.6g}",
                  f"energy      H0 = {drift['H0']:.12g}, max |H - H0| = {drift['max_abs']:.3e} "
                  f"(relative {drift['max_rel']:.3e}), drift slope {drift['slope']:.3e} per unit time"]
    ck = s["checkpoint"]
    lines.append(f"checkpoint  step {ck['step']}" if ck else "checkpoint  none")
    state = h5md.writer_state(path)
    if state == "live":
        lines.append("writer      a live process is writing this file (hnnsim reads it as it grows)")
    elif state == "needs-recovery":
        lines.append(f"recovery    its writer was killed: hnnsim reads and resumes it, but MDAnalysis and plain h5py "
                     f"cannot open it until `hnnsim recover {path}` (no completed frame is lost)")
    if info.extra:
        lines.append(f"extra       {json.dumps(info.extra)}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    for model in args.model or ():
        _load_model(model)
    for i, path in enumerate(args.files):
        if i:
            print()
        print(describe_file(path))
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from . import h5md

    for path in args.files:
        state = h5md.writer_state(path)
        if state == "clean":
            print(f"{path}: needs no recovery (any HDF5 client opens it)")
            continue
        frames = h5md.recover_file(path)
        print(f"{path}: recovered, {frames} frames; MDAnalysis and plain h5py open it now")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print("systems:")
    for name in systems.available():
        entry = systems.registry.entry(name)
        sep = "separable" if entry.separable else "non-separable"
        print(f"  {name:20s} {sep:14s} {' '.join(f'{k}={v}' for k, v in entry.defaults.items())}")
    print("integrators:")
    for name in integrators.available():
        cls = integrators.registry.factory(name)
        kind = "symplectic" if cls.symplectic else "non-symplectic"
        needs = "separable H" if cls.requires_separable else "any H"
        print(f"  {name:20s} order {cls.order}  {kind:15s} {needs}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from .extras import require

    torch = require("torch", "hnnsim train")
    from . import learn

    if args.model == "baseline":
        raise UsageError("the baseline predicts dx/dt directly and has no Hamiltonian, so it cannot be "
                         "saved as a learned system to roll out with hnnsim's integrators; train --model hnn or "
                         "--model separable (`hnnsim demo` compares both with the baseline)")
    if os.path.exists(args.output) and not args.overwrite:
        raise OutputExistsError(f"{args.output} already exists; pass --overwrite to replace it")
    data = learn.load(args.files, noise=args.noise, test_fraction=args.test_fraction, seed=args.seed,
                      derivatives=args.derivatives)
    print(f"{data!r}", file=sys.stderr)
    fit = learn.fit(data, model=args.model, hidden=args.hidden, layers=args.layers, steps=args.steps, lr=args.lr,
                    weight_decay=args.weight_decay, batch_size=args.batch_size, seed=args.seed,
                    dtype=torch.float64 if args.float64 else torch.float32, progress=not args.quiet,
                    activation=args.activation, eval_every=args.eval_every, stop_on_interrupt=True)
    name = args.name or os.path.splitext(os.path.basename(args.output))[0]
    system = fit.to_system(name=name, register=False)
    if fit.interrupted_at is not None:
        stem, ext = os.path.splitext(args.output)
        partial = f"{stem}.interrupted-at-{fit.interrupted_at}{ext or '.hnn'}"
        system.save(partial)
        print(f"hnnsim: interrupted at training step {fit.interrupted_at} of {args.steps}: saved the model trained so "
              f"far as {partial} (train loss {fit.train_loss:.3e}, test loss {fit.test_loss:.3e}); {args.output} "
              "was not written", file=sys.stderr)
        return 130
    system.save(args.output)
    print(f"trained {fit.config['model']} ({args.layers} x {args.hidden}, {args.activation}) for {args.steps} steps in "
          f"{fit.seconds:.1f} s: train loss {fit.train_loss:.3e}, test loss {fit.test_loss:.3e}")
    print(f"wrote {args.output}: learned system {system.name!r}, sha256 {system.model_hash[:16]}...")
    return 0


def _load_model(path: str):
    return systems.load(path, register=True, replace=True)


def cmd_rollout(args: argparse.Namespace) -> int:
    from . import h5md
    from .simulator import Simulator

    system = _load_model(args.model)
    integrator, q0, p0 = _integrator_and_state(args, "the model's default state")
    if args.start:
        if q0 is not None:
            raise UsageError("give --start FILE or --q0/--p0, not both")
        first = h5md.read_frame(args.start, 0)  # that frame alone, not the whole file
        q0, p0 = first["q"], first["p"]
        start_system = h5md.read_info(args.start).system.get("name")
        print(f"starting from frame 0 of {args.start} (step {first['step']}, system {start_system!r}; "
              f"the model is {system.name!r})", file=sys.stderr)
    sim = Simulator(system, integrator, q0, p0)
    traj = sim.run(args.steps, args.every, out=args.output, progress=not args.quiet, overwrite=args.overwrite,
                   energy_tolerance=args.energy_tolerance)
    drift = traj.energy_drift()
    print(f"wrote {traj.path}: {system.name} with {integrator!r}, {len(traj)} frames, "
          f"max |dH|/|H0| (learned H) = {drift['max_rel']:.3e}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    import os

    from . import analysis

    for path in [args.rollout] + ([args.reference] if args.reference else []):
        if not os.path.exists(path):
            raise MissingFileError(f"no such trajectory file: {path}")
    metrics = analysis.compare(args.rollout, args.reference)
    print(analysis.report(metrics, args.rollout, args.reference or ""))
    if args.plot:
        prefix = args.plot_prefix or os.path.splitext(args.rollout)[0]
        paths = analysis.plot(args.rollout, args.reference, prefix=prefix, metrics=metrics)
        print(f"plots       {', '.join(paths)}")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from .apps.experiment import run_experiment

    if args.data is not None and args.task != "real":
        raise UsageError("--data is for `hnnsim experiment real` (the measured pendulum)")
    if args.trajectories is not None and args.task == "real":
        raise UsageError("--trajectories is for the simulated tasks; `real` uses the measured file")
    run_experiment(args.task, outdir=args.outdir, seed=args.seed, steps=args.steps, hidden=args.hidden,
                   rollouts=args.rollouts, progress=not args.quiet, trajectories=args.trajectories,
                   quick=args.quick, data=args.data)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .apps.demo import run_demo, run_integrator_demo

    if args.integrators:
        return run_integrator_demo(outdir=args.outdir or "hnnsim-demo-integrators", quick=args.quick)
    return run_demo(outdir=args.outdir or "hnnsim-demo", quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="hnnsim", description="Simulate analytic and learned Hamiltonian systems.")
    parser.add_argument("--version", action="version", version=f"hnnsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="integrate a system and stream the trajectory to an H5MD file")
    s.add_argument("system", nargs="?", help="system name (hnnsim list)")
    s.add_argument("--integrator", default=None, help="integrator name (default leapfrog)")
    s.add_argument("--dt", type=float, default=None, help="step size (default 0.01)")
    s.add_argument("--steps", type=int, required=True, help="number of steps")
    s.add_argument("--every", type=int, default=None, help="steps between frames (default 1)")
    s.add_argument("--param", action="append", metavar="NAME=VALUE", help="system parameter, repeatable")
    s.add_argument("--integrator-param", action="append", metavar="NAME=VALUE", help="integrator parameter (omega, order, max_iter)")
    s.add_argument("--q0", help="initial coordinates, e.g. '1.0' or '0 0.1'")
    s.add_argument("--p0", help="initial momenta")
    s.add_argument("--temperature", type=float, default=None,
                   help="particle systems: start from the lattice with Maxwell-Boltzmann momenta at this temperature")
    s.add_argument("--seed", type=int, default=None, help="random seed of the --temperature momenta")
    s.add_argument("-o", "--output", help="output H5MD file")
    s.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    s.add_argument("--resume", metavar="FILE", help="continue FILE from its checkpoint")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument("--energy-tolerance", type=_tolerance, default=1e-2, metavar="REL",
                   help="warn when max |H - H0| / |H0| passes REL (default 0.01; 'none': no check)")
    s.set_defaults(func=cmd_simulate)

    i = sub.add_parser("info", help="describe trajectory files")
    i.add_argument("files", nargs="+")
    i.add_argument("--model", action="append", metavar="FILE",
                   help="register this learned model first (for rollouts of a learned system), repeatable")
    i.set_defaults(func=cmd_info)

    rc = sub.add_parser("recover", help="make files a killed writer left readable by every HDF5 client")
    rc.add_argument("files", nargs="+")
    rc.set_defaults(func=cmd_recover)

    l = sub.add_parser("list", help="list the registered systems and integrators")
    l.set_defaults(func=cmd_list)

    t = sub.add_parser("train", help="train a Hamiltonian neural network on trajectory files")
    t.add_argument("files", nargs="+", help="H5MD trajectories of one system (split into train/test by file)")
    t.add_argument("--model", default="hnn", choices=["hnn", "separable", "baseline"],
                   help="hnn: H(q, p) from one MLP; separable: T(p) + V(q) (leapfrog works on it)")
    t.add_argument("-o", "--output", required=True, help="model file to write (e.g. spring-hnn.hnn)")
    t.add_argument("--name", help="registry name of the learned system (default: the output file's stem)")
    t.add_argument("--hidden", type=int, default=200, help="hidden width (default 200)")
    t.add_argument("--layers", type=int, default=2, help="hidden layers (default 2)")
    t.add_argument("--activation", default="tanh", help="tanh (default), softplus, sigmoid or sin")
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--weight-decay", type=float, default=1e-4, help="L2 weight decay (default 1e-4)")
    t.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: full batch)")
    t.add_argument("--seed", type=int, default=0, help="seed of the split, noise and initialisation (default 0)")
    t.add_argument("--noise", type=float, default=0.0, help="Gaussian noise std added to the input states")
    t.add_argument("--test-fraction", type=float, default=0.2, help="share of files held out (default 0.2)")
    t.add_argument("--derivatives", default="exact", choices=["exact", "forward", "central"],
                   help="targets: the files' exact derivatives (default) or finite differences")
    t.add_argument("--float64", action="store_true", help="train in float64 (default float32)")
    t.add_argument("--eval-every", type=int, default=10, help="steps between test-loss evaluations (default 10)")
    t.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("rollout", help="integrate a learned system (a model file) and write an H5MD trajectory")
    r.add_argument("model", help="model file written by `hnnsim train` or LearnedSystem.save")
    r.add_argument("--integrator", default="implicit-midpoint",
                   help="integrator name (default implicit-midpoint; leapfrog etc. need a separable model)")
    r.add_argument("--dt", type=float, default=0.05, help="step size (default 0.05)")
    r.add_argument("--steps", type=int, required=True, help="number of steps")
    r.add_argument("--every", type=int, default=1, help="steps between frames (default 1)")
    r.add_argument("--integrator-param", action="append", metavar="NAME=VALUE", help="integrator parameter")
    r.add_argument("--q0", help="initial coordinates")
    r.add_argument("--p0", help="initial momenta")
    r.add_argument("--start", metavar="FILE", help="start from the first frame of this trajectory file")
    r.add_argument("-o", "--output", required=True, help="output H5MD file")
    r.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.add_argument("--energy-tolerance", type=_tolerance, default=1e-2, metavar="REL",
                   help="warn when the learned H's max |H - H0| / |H0| passes REL (default 0.01; 'none': no check)")
    r.set_defaults(func=cmd_rollout)

    a = sub.add_parser("analyze", help="energy drift of a rollout and its error against a reference trajectory")
    a.add_argument("rollout", help="trajectory to analyse (e.g. from `hnnsim rollout`)")
    a.add_argument("--reference", help="reference trajectory (e.g. the true system from the same state)")
    a.add_argument("--plot", action="store_true", help="write phase-portrait and energy PNGs (matplotlib)")
    a.add_argument("--plot-prefix", help="PNG path prefix (default: the rollout path without .h5)")
    a.set_defaults(func=cmd_analyze)

    e = sub.add_parser("experiment", help="reproduce a task of the HNN paper (Greydanus et al. 2019)")
    e.add_argument("task", choices=["spring", "pendulum", "two-body", "real"],
                   help="mass-spring, ideal pendulum, two-body, or the measured pendulum (real, needs --data)")
    e.add_argument("--data", metavar="FILE", help="real: the Schmidt & Lipson file real_pend_h_1.txt (not shipped)")
    e.add_argument("--outdir", default="hnnsim-experiment", help="where to write files (default ./hnnsim-experiment)")
    e.add_argument("--seed", type=int, default=0, help="seed of data, split, noise and training (default 0)")
    e.add_argument("--steps", type=int, default=None,
                   help="training steps (default the paper's: 2000; two-body 10000)")
    e.add_argument("--hidden", type=int, default=None, help="hidden width (default the paper's 200)")
    e.add_argument("--rollouts", type=int, default=None, help="test rollouts for the energy MSE (default 15)")
    e.add_argument("--trajectories", type=int, default=None,
                   help="simulated trajectories (default the paper's: 50; two-body 1000)")
    e.add_argument("--quick", action="store_true",
                   help="a tiny budget (40 trajectories, 300 steps, width 32, 5 rollouts) unless given explicitly")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_experiment)

    d = sub.add_parser("demo", help="the built-in demonstration: simulate, train an HNN, roll it out, compare")
    d.add_argument("--outdir", default=None,
                   help="where to write files (default ./hnnsim-demo, or ./hnnsim-demo-integrators with --integrators); "
                        "a rerun replaces the files of the previous run there, a folder with other files is refused")
    d.add_argument("--quick", action="store_true", help="a tiny budget (seconds), for tests")
    d.add_argument("--integrators", action="store_true",
                   help="instead: the integrator demonstration (pendulum and double pendulum, energy errors)")
    d.set_defaults(func=cmd_demo)
    return parser


def _interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left, said truthfully for the command that was running."""
    import os

    if args.command in ("simulate", "rollout"):
        path = args.resume if getattr(args, "resume", None) else args.output
        if path and os.path.exists(path):
            from . import h5md

            try:
                _, ck = h5md.read_checkpoint(path)
            except HnnsimError:
                ck = None
            at = f"step {ck['step']}" if ck else "its start"
            return (f"{path} holds every completed frame and a checkpoint at {at}; continue with "
                    f"hnnsim simulate --resume {path} --steps N")
        return f"nothing was written ({path} was not created yet)"
    if args.command == "train":
        return f"no model was saved ({args.output} was not written)"
    return "stopped"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"hnnsim: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"hnnsim: interrupted; {_interrupted(args)}", file=sys.stderr)
        return 130
    except (HnnsimError, OSError) as exc:
        # every error hnnsim raises on purpose, and the system's own (disk full, permission
        # denied); anything else is a bug and keeps its traceback
        print(f"hnnsim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
