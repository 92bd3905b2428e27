"""Side-by-side timings of hnnsim and its peer engines, in one process.

    .venv/bin/python -m benchmarks.compare                    # all workloads, 5 rounds
    .venv/bin/python -m benchmarks.compare --quick            # small sizes, smoke test (< 60 s)
    .venv/bin/python -m benchmarks.compare --only lj-864,gravity-1024 --rounds 3 --json out.json
    .venv/bin/python -m benchmarks.compare --list

How it measures:

* Each workload builds its state once (untimed) and a list of contenders. Each contender
  is prepared once, untimed (imports, engine objects that do not change, numba
  compilation, the correctness check of a neighbour list). A contender whose preparation
  fails (not installed, hnnsim's API not there yet, ...) is printed as
  ``unavailable: <reason>`` and the others go on.
* Rounds are interleaved: round r runs every contender of the workload once, forwards on
  even rounds and backwards on odd ones, so slow drifts of the machine's load hit all
  contenders alike. Each call times only its own timed part (see ``benchmarks/peers.py``:
  the steps, never setup or compilation) and starts from the same initial state.
* The table shows the best and the median over rounds, the cost per unit of work (from the
  best round) and the ratio of time per unit of work to the workload's named peer (so a
  contender run on fewer steps, like ASE, is compared per atom-step). Ratio < 1: faster
  than the peer. ``target`` states the issue's goal for hnnsim as a maximum ratio.
* ``check`` compares physics between contenders (from the first round): energies and final
  states against the peer, energy drift, equality of pair sets.

Workloads live in the ``WORKLOADS`` registry (``@register``); another workload is a
function ``build(quick, threads) -> (contenders, check)`` plus a :class:`Workload` entry.

Threads: ``--threads`` (default: the number of CPUs) goes to LAMMPS's ``package omp``,
OpenMM's ``Threads`` and vesin's ``n_threads``, and to ``numba.set_num_threads`` for
hnnsim. BLAS pools default to 1 thread (nothing timed here uses BLAS; this avoids
oversubscribing the cores). ASE and REBOUND (no OpenMP in its wheel) run on one thread.

OpenMP wait policy: ``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` here (the environment's
value wins; ``--omp-wait`` overrides both), for LAMMPS's libgomp and numba's ``omp``
threading layer alike. With libgomp's default spinning, a 2-thread OpenMP run on 2 cores
of which another process holds one was measured ~100x slower (LAMMPS lj/cut/omp, N=864:
44 us vs 0.5 us per atom-step); with passive waiting it ran at its 1-thread speed. On an
idle machine active waiting can be a little faster for small systems: compare with
``--omp-wait active`` there.
"""

from __future__ import annotations

import os

_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a file: make ``benchmarks`` (and the repo's packages) importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import peers  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

@dataclass
class Unit:
    """How one call's work turns into the table's unit cost."""

    label: str                      # e.g. "ns/atom-step"
    per_work: bool = True           # True: seconds / work * scale; False: work / seconds * scale
    scale: float = 1e9

    def value(self, seconds: float, work: float) -> float:
        if self.per_work:
            return seconds / work * self.scale
        return work / seconds * self.scale if seconds > 0 else float("inf")


NS_PER_ATOM_STEP = Unit("ns/atom-step", True, 1e9)
M_PAIRS_PER_S = Unit("M pair-int/s", False, 1e-6)
NS_PER_ATOM = Unit("ns/atom", True, 1e9)
NS_PER_MEMBER_STEP = Unit("ns/member-step", True, 1e9)


@dataclass
class Contender:
    """One engine on one workload.

    ``prepare`` runs once, untimed, and may raise (the row then reads ``unavailable``).
    ``run`` is one timed call: it returns a dict with ``seconds`` (its timed part only) and
    whatever ``check`` needs. ``work`` is the amount of work one call does, in the
    workload's unit (atom-steps, pair interactions, atoms).
    """

    key: str
    label: str
    run: Callable[[], Dict[str, Any]]
    work: float
    threads: int = 1
    packages: Tuple[str, ...] = ()
    prepare: Optional[Callable[[], None]] = None
    is_hnnsim: bool = False
    note: str = ""


@dataclass
class Workload:
    name: str
    title: str
    unit: Unit
    peer: str                       # key of the contender ratios are taken to
    build: Callable[[bool, int], Tuple[List[Contender], Callable[[Dict[str, Dict[str, Any]]], Dict[str, str]]]]
    target_ratio: Optional[float] = None  # hnnsim's goal: time per work <= target_ratio * peer's
    target_text: str = ""
    quick_title: str = ""           # what --quick runs instead (smaller sizes)

    def describe(self, quick: bool) -> str:
        return f"QUICK: {self.quick_title}" if quick and self.quick_title else self.title


WORKLOADS: Dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    if workload.name in WORKLOADS:
        raise ValueError(f"workload {workload.name!r} registered twice")
    WORKLOADS[workload.name] = workload
    return workload


# --------------------------------------------------------------------------------------
# Helpers shared by workloads
# --------------------------------------------------------------------------------------

DENSITY = 0.8442
TEMPERATURE = 0.72
RC = 2.5
SKIN = 0.3
DT = 0.005
NLIST_CUTOFF = 2.8


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if np.isfinite(x) else str(x)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def _min_image_maxdiff(a: np.ndarray, b: np.ndarray, box: float) -> float:
    d = np.asarray(a, dtype=np.float64).reshape(-1, 3) - np.asarray(b, dtype=np.float64).reshape(-1, 3)
    d -= box * np.round(d / box)
    return float(np.max(np.abs(d)))


def _set_numba_threads(threads: int) -> None:
    try:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # pragma: no cover
        pass


def _hnnsim_lj_system(n_cells: int):
    """hnnsim's LJ system for the promised API (raises if it is not there yet)."""
    from systems import LennardJones

    return LennardJones(n_cells=n_cells, density=DENSITY, epsilon=1.0, sigma=1.0, cutoff=RC, skin=SKIN)


def _check_box(system, box: float) -> None:
    edges = np.asarray(system.box, dtype=np.float64).ravel()
    if edges.shape != (3,) or not np.allclose(edges, box, rtol=1e-13, atol=0):
        raise RuntimeError(f"hnnsim's box {edges} differs from the peers' L = {box!r}")


def _advance_kwargs(system, integ) -> Dict[str, Any]:
    """A workspace made outside the timing, when the system offers one (neighbour lists)."""
    make = getattr(system, "workspace", None)
    if make is None:
        return {}
    try:
        return {"work": make(1)}
    except Exception:
        return {}


# --------------------------------------------------------------------------------------
# Lennard-Jones workloads
# --------------------------------------------------------------------------------------

def _lj_state(n_cells: int):
    return peers.lj_fcc_state(n_cells, DENSITY, TEMPERATURE, seed=1)


def _hnnsim_lj_contender(n_cells: int, x0: np.ndarray, v0: np.ndarray, box: float, steps: int,
                         threads: int) -> Contender:
    holder: Dict[str, Any] = {}

    def prepare():
        from integrators import Leapfrog

        lj = _hnnsim_lj_system(n_cells)
        _check_box(lj, box)
        integ = Leapfrog(dt=DT)
        _set_numba_threads(threads)
        q = x0.reshape(1, -1).copy()
        p = v0.reshape(1, -1).copy()
        integ.advance(lj, q, p, 10)  # numba compilation, untimed
        holder.update(lj=lj, integ=integ)

    def run():
        lj, integ = holder["lj"], holder["integ"]
        _set_numba_threads(threads)
        q = x0.reshape(1, -1).copy()
        p = v0.reshape(1, -1).copy()
        kw = _advance_kwargs(lj, integ)
        try:
            t0 = time.perf_counter()
            res = integ.advance(lj, q, p, steps, every=steps, **kw)
            seconds = time.perf_counter() - t0
        except TypeError:
            if not kw:
                raise
            t0 = time.perf_counter()
            res = integ.advance(lj, q, p, steps, every=steps)
            seconds = time.perf_counter() - t0
        if hasattr(res, "ok") and not res.ok:
            raise RuntimeError(f"hnnsim advance failed: status {res.status.tolist()}")
        out = {"seconds": seconds, "positions": q.reshape(-1, 3).copy(), "velocities": p.reshape(-1, 3).copy(),
               "ke_end": 0.5 * float(np.sum(p * p)), "steps": steps}
        try:
            e0 = float(np.ravel(lj.energy(x0.reshape(1, -1), v0.reshape(1, -1)))[0])
            e1 = float(np.ravel(lj.energy(q, p))[0])
            out.update(pe_start=e0 - 0.5 * float(np.sum(v0 * v0)), ke_start=0.5 * float(np.sum(v0 * v0)),
                       pe_end=e1 - out["ke_end"])
        except Exception as exc:  # energies are for the check column only
            out["energy_error"] = f"{type(exc).__name__}: {exc}"
        return out

    return Contender("hnnsim", "hnnsim Leapfrog + LennardJones", run, work=x0.shape[0] * steps, threads=threads,
                     packages=("hnnsim", "numba", "numpy"), prepare=prepare, is_hnnsim=True)


def _lj_check_factory(box: float, x0: np.ndarray, v0: np.ndarray, peer_key: str):
    def check(results: Dict[str, Dict[str, Any]]) -> Dict[str, str]:
        out: Dict[str, str] = {}
        ref = results.get(peer_key)
        extra_refs: Dict[int, Dict[str, Any]] = {}
        for key, r in results.items():
            parts = []
            if "pe_end" in r and "pe_start" in r:
                e0, e1 = r["pe_start"] + r["ke_start"], r["pe_end"] + r["ke_end"]
                parts.append(f"drift {_fmt(_rel(e1, e0), 2)}")
            elif "energy_error" in r:
                parts.append("no energy: " + r["energy_error"][:60])
            base = ref if (ref is not None and ref.get("steps") == r.get("steps")) else None
            if base is None and key != peer_key:
                steps = int(r.get("steps", 0))
                if steps not in extra_refs:
                    try:  # an untimed LAMMPS run of the same length, as the oracle
                        extra_refs[steps] = peers.lammps_lj(x0, v0, box, rc=RC, dt=DT, steps=steps, skin=SKIN,
                                                            variant="serial")
                    except Exception:
                        extra_refs[steps] = None
                base = extra_refs[steps]
            if base is not None and key != peer_key and "pe_end" in r:
                eb = base["pe_end"] + base["ke_end"]
                parts.append(f"rel. ΔE vs LAMMPS {_fmt(_rel(r['pe_end'] + r['ke_end'], eb), 2)}")
            if base is not None and key != peer_key:
                parts.append(f"max Δx {_fmt(_min_image_maxdiff(r['positions'], base['positions'], box), 2)}")
            out[key] = ", ".join(parts)
        return out

    return check


def _build_lj(n_cells: int, steps: int, threads: int, *, with_openmm: bool, with_ase: bool, ase_steps: int,
              with_serial: bool):
    x0, v0, box = _lj_state(n_cells)
    n = x0.shape[0]
    cs: List[Contender] = [_hnnsim_lj_contender(n_cells, x0, v0, box, steps, threads)]

    def lammps(variant: str, nthreads: int):
        def prepare():
            peers.load_lammps()
            peers.lammps_lj(x0, v0, box, rc=RC, dt=DT, steps=1, skin=SKIN, threads=nthreads, variant=variant)

        def run():
            return peers.lammps_lj(x0, v0, box, rc=RC, dt=DT, steps=steps, skin=SKIN, threads=nthreads,
                                   variant=variant)

        label = f"LAMMPS lj/cut/omp ({nthreads} thr)" if variant == "omp" else "LAMMPS lj/cut (serial)"
        return Contender(f"lammps-{variant}", label, run, work=n * steps, threads=nthreads, packages=("lammps",),
                         prepare=prepare)

    cs.append(lammps("omp", threads))
    if with_serial:
        cs.append(lammps("serial", 1))
    if with_openmm:
        def run_openmm():
            return peers.openmm_lj(x0, v0, box, rc=RC, dt=DT, steps=steps, threads=threads, platform="CPU")

        def prep_openmm():
            peers.openmm_lj(x0, v0, box, rc=RC, dt=DT, steps=1, threads=threads, platform="CPU")

        cs.append(Contender("openmm", f"OpenMM CPU NonbondedForce ({threads} thr)", run_openmm, work=n * steps,
                            threads=threads, packages=("openmm",), prepare=prep_openmm,
                            note="single-precision forces; truncated LJ, energies shift-corrected"))
    if with_ase:
        def run_ase():
            return peers.ase_lj(x0, v0, box, rc=RC, dt=DT, steps=ase_steps)

        def prep_ase():
            peers.ase_lj(x0, v0, box, rc=RC, dt=DT, steps=1)

        cs.append(Contender("ase", f"ASE LennardJones + VelocityVerlet ({ase_steps} steps)", run_ase,
                            work=n * ase_steps, threads=1, packages=("ase",), prepare=prep_ase))
    return cs, _lj_check_factory(box, x0, v0, "lammps-omp")


def build_lj_small(quick: bool, threads: int):
    if quick:
        return _build_lj(4, 100, threads, with_openmm=True, with_ase=True, ase_steps=5, with_serial=True)
    return _build_lj(6, 1000, threads, with_openmm=True, with_ase=True, ase_steps=20, with_serial=True)


def build_lj_large(quick: bool, threads: int):
    if quick:
        return _build_lj(6, 50, threads, with_openmm=False, with_ase=False, ase_steps=0, with_serial=False)
    return _build_lj(20, 1000, threads, with_openmm=False, with_ase=False, ase_steps=0, with_serial=False)


register(Workload(
    "lj-864", "LJ fcc 6^3 (N=864), rho 0.8442, T 0.72, rc 2.5 shifted, skin 0.3, dt 0.005, 1000 steps",
    NS_PER_ATOM_STEP, "lammps-omp", build_lj_small, target_ratio=1.0, target_text="hnnsim <= 1.0x LAMMPS",
    quick_title="LJ fcc 4^3 (N=256), 100 steps (ASE 5)"))
register(Workload(
    "lj-32000", "LJ fcc 20^3 (N=32000), rho 0.8442, T 0.72, rc 2.5 shifted, skin 0.3, dt 0.005, 1000 steps",
    NS_PER_ATOM_STEP, "lammps-omp", build_lj_large, target_ratio=1.0, target_text="hnnsim <= 1.0x LAMMPS",
    quick_title="LJ fcc 6^3 (N=864), 50 steps"))


# --------------------------------------------------------------------------------------
# Neighbour-list workloads
# --------------------------------------------------------------------------------------

NLIST_REPEAT = 5  # builds per call; a call reports its fastest


def _nlist_points(n_cells: int):
    x, _, box = peers.lj_fcc_state(n_cells, DENSITY, TEMPERATURE, seed=1)
    rng = np.random.default_rng(5)
    return peers.wrap_positions(x + 0.05 * rng.standard_normal(x.shape), box), box


def _build_nlist(n_cells: int, threads: int):
    pts, box = _nlist_points(n_cells)
    n = pts.shape[0]
    state: Dict[str, Any] = {}

    def reference_pairs():
        if "ref" not in state:
            try:
                state["ref"] = peers.vesin_pairs(pts, box, NLIST_CUTOFF, threads=threads)["pairs"]
                state["ref_by"] = "vesin"
            except ImportError:
                from scipy.spatial import cKDTree

                state["ref"] = peers.sort_pairs(cKDTree(pts, boxsize=box).query_pairs(NLIST_CUTOFF,
                                                                                      output_type="ndarray"))
                state["ref_by"] = "scipy cKDTree"
        return state["ref"]

    def run_vesin():
        r = peers.vesin_pairs(pts, box, NLIST_CUTOFF, threads=threads, repeat=NLIST_REPEAT)
        return {"seconds": r["seconds"], "pairs": r["pairs"]}

    def prep_vesin():
        peers.vesin_pairs(pts, box, NLIST_CUTOFF, threads=threads)

    holder: Dict[str, Any] = {}

    def prep_hnnsim():
        lj = _hnnsim_lj_system(n_cells)
        _check_box(lj, box)
        _set_numba_threads(threads)
        got = peers.sort_pairs(np.asarray(lj.neighbour_pairs(pts, cutoff=NLIST_CUTOFF)))
        ref = reference_pairs()
        if not np.array_equal(got, ref):
            a = {tuple(r) for r in got.tolist()}
            b = {tuple(r) for r in ref.tolist()}
            raise RuntimeError(f"pair set differs from {state['ref_by']}'s: {len(got)} vs {len(ref)} pairs, "
                               f"{len(a - b)} extra, {len(b - a)} missing")
        holder["lj"] = lj

    def run_hnnsim():
        lj = holder["lj"]
        _set_numba_threads(threads)
        best = float("inf")
        pairs = None
        for _ in range(NLIST_REPEAT):
            t0 = time.perf_counter()
            pairs = lj.neighbour_pairs(pts, cutoff=NLIST_CUTOFF)
            best = min(best, time.perf_counter() - t0)
        return {"seconds": best, "pairs": peers.sort_pairs(np.asarray(pairs))}

    cs = [
        Contender("hnnsim", "hnnsim LennardJones.neighbour_pairs", run_hnnsim, work=n, threads=threads,
                  packages=("hnnsim", "numba", "numpy"), prepare=prep_hnnsim, is_hnnsim=True,
                  note=f"best of {NLIST_REPEAT} builds per call"),
        Contender("vesin", f"vesin NeighborList half ({threads} thr)", run_vesin, work=n, threads=threads,
                  packages=("vesin",), prepare=prep_vesin, note=f"best of {NLIST_REPEAT} builds per call"),
    ]

    def check(results):
        ref = results.get("vesin")
        out = {}
        for key, r in results.items():
            m = len(r["pairs"])
            if ref is None or key == "vesin":
                out[key] = f"{m} pairs"
            else:
                out[key] = f"{m} pairs, " + ("same set as vesin" if np.array_equal(r["pairs"], ref["pairs"])
                                             else "DIFFERENT set from vesin")
        return out

    return cs, check


def build_nlist_small(quick: bool, threads: int):
    return _build_nlist(6 if quick else 10, threads)


def build_nlist_large(quick: bool, threads: int):
    return _build_nlist(8 if quick else 20, threads)


register(Workload("nlist-4000", "neighbour pairs, fcc 10^3 (N=4000) at rho 0.8442 (+0.05 noise), cutoff 2.8, periodic",
                  NS_PER_ATOM, "vesin", build_nlist_small, target_ratio=1.0, target_text="faster than vesin",
                  quick_title="neighbour pairs, fcc 6^3 (N=864), cutoff 2.8"))
register(Workload("nlist-32000", "neighbour pairs, fcc 20^3 (N=32000) at rho 0.8442 (+0.05 noise), cutoff 2.8, periodic",
                  NS_PER_ATOM, "vesin", build_nlist_large, target_ratio=1.0, target_text="faster than vesin",
                  quick_title="neighbour pairs, fcc 8^3 (N=2048), cutoff 2.8"))


# --------------------------------------------------------------------------------------
# Gravity workload
# --------------------------------------------------------------------------------------

GRAVITY_SOFTENING = 0.05
GRAVITY_DT = 1e-3


def gravity_state(n: int, seed: int = 7):
    """N equal masses (total 1) uniform in the unit ball, small random velocities, zero momentum."""
    rng = np.random.default_rng(seed)
    m = np.full(n, 1.0 / n)
    u = rng.standard_normal((n, 3))
    x = u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(0, 1, (n, 1)) ** (1 / 3)
    v = 0.3 * rng.standard_normal((n, 3))
    x -= x.mean(axis=0)
    v -= v.mean(axis=0)
    return m, x, v


def _build_gravity(n: int, steps: int, threads: int):
    m, x0, v0 = gravity_state(n)
    pairs_per_call = n * (n - 1) / 2 * steps

    def run_rebound():
        return peers.rebound_gravity(m, x0, v0, G=1.0, softening=GRAVITY_SOFTENING, dt=GRAVITY_DT, steps=steps)

    def prep_rebound():
        peers.rebound_gravity(m, x0, v0, G=1.0, softening=GRAVITY_SOFTENING, dt=GRAVITY_DT, steps=1)

    holder: Dict[str, Any] = {}

    def prep_hnnsim():
        from integrators import Leapfrog
        from systems import NBodyGravity

        g = NBodyGravity(masses=m, dim=3, G=1.0, softening=GRAVITY_SOFTENING)
        integ = Leapfrog(dt=GRAVITY_DT)
        _set_numba_threads(threads)
        q = x0.reshape(1, -1).copy()
        p = (m[:, None] * v0).reshape(1, -1).copy()
        integ.advance(g, q, p, 2)  # compile
        holder.update(g=g, integ=integ)

    def run_hnnsim():
        g, integ = holder["g"], holder["integ"]
        _set_numba_threads(threads)
        q = x0.reshape(1, -1).copy()
        p = (m[:, None] * v0).reshape(1, -1).copy()
        t0 = time.perf_counter()
        res = integ.advance(g, q, p, steps, every=steps)
        seconds = time.perf_counter() - t0
        if hasattr(res, "ok") and not res.ok:
            raise RuntimeError(f"hnnsim advance failed: status {res.status.tolist()}")
        xs = q.reshape(-1, 3).copy()
        vs = p.reshape(-1, 3) / m[:, None]
        return {"seconds": seconds, "positions": xs, "velocities": vs,
                "energy_start": peers.gravity_energy(m, x0, v0, 1.0, GRAVITY_SOFTENING),
                "energy_end": peers.gravity_energy(m, xs, vs, 1.0, GRAVITY_SOFTENING)}

    cs = [
        Contender("hnnsim", "hnnsim Leapfrog (KDK) + NBodyGravity", run_hnnsim, work=pairs_per_call, threads=threads,
                  packages=("hnnsim", "numba", "numpy"), prepare=prep_hnnsim, is_hnnsim=True),
        Contender("rebound", "REBOUND leapfrog (DKD), gravity basic", run_rebound, work=pairs_per_call, threads=1,
                  packages=("rebound",), prepare=prep_rebound, note="no OpenMP in the wheel: serial"),
    ]

    def check(results):
        ref = results.get("rebound")
        out = {}
        for key, r in results.items():
            parts = [f"drift {_fmt(_rel(r['energy_end'], r['energy_start']), 2)}"]
            if ref is not None and key != "rebound":
                parts.append(f"max Δx vs REBOUND {_fmt(float(np.max(np.abs(r['positions'] - ref['positions']))), 2)}"
                             " (KDK vs DKD)")
            out[key] = ", ".join(parts)
        return out

    return cs, check


def build_gravity(quick: bool, threads: int):
    return _build_gravity(128 if quick else 1024, 20 if quick else 100, threads)


register(Workload("gravity-1024", f"direct-sum gravity N=1024, G 1, softening {GRAVITY_SOFTENING}, dt {GRAVITY_DT}, "
                  "100 steps; work = N(N-1)/2 pair interactions per step", M_PAIRS_PER_S, "rebound", build_gravity,
                  target_ratio=1 / 6, target_text=">= 6x REBOUND", quick_title="direct-sum gravity N=128, 20 steps"))


# --------------------------------------------------------------------------------------
# Ensemble workload: many one-degree-of-freedom members (SIMD lanes)
# --------------------------------------------------------------------------------------

ENSEMBLE_DT = 0.01
ENSEMBLE_MASS, ENSEMBLE_LENGTH, ENSEMBLE_G = 1.0, 1.0, 9.81
#: torch.compile unrolls a Python loop: the compiled function takes this many steps per call
#: (and carries the force between calls); 1000 steps in one graph would take far too long to
#: compile. Per-call overhead at 50 steps: ~4 % of the call (measured 2.1 vs 2.5 ns at 10).
TORCH_CHUNK = 50


def ensemble_state(members: int, seed: int = 3):
    """Pendulum amplitudes spread over (-2, 2) rad, released from rest."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, members), np.zeros(members)


def _build_ensemble_pendulum(members: int, steps: int, threads: int, chunk: int):
    q0, p0 = ensemble_state(members)
    work = float(members * steps)
    m, l, g, dt = ENSEMBLE_MASS, ENSEMBLE_LENGTH, ENSEMBLE_G, ENSEMBLE_DT
    mgl, inertia, half = m * g * l, m * l * l, 0.5 * dt  # the member functions' constants, same rounding
    holder: Dict[str, Any] = {}

    def energy(q, p):
        return 0.5 * p * p / inertia + mgl * (1.0 - np.cos(q))

    def result(seconds, q, p):
        q, p = np.asarray(q, dtype=np.float64).ravel(), np.asarray(p, dtype=np.float64).ravel()
        return {"seconds": seconds, "q": q.copy(), "p": p.copy()}

    # -- hnnsim: Integrator.advance on [B, 1] states (the lane kernel) ------------------
    def prep_hnnsim():
        from integrators import Leapfrog
        from systems import Pendulum

        _set_numba_threads(threads)
        holder["pendulum"] = Pendulum(mass=m, length=l, g=g)
        holder["integ"] = Leapfrog(dt=dt)
        holder["integ"].advance(holder["pendulum"], q0.reshape(-1, 1).copy(), p0.reshape(-1, 1).copy(), 3)

    def run_hnnsim():
        _set_numba_threads(threads)
        q, p = q0.reshape(-1, 1).copy(), p0.reshape(-1, 1).copy()
        t0 = time.perf_counter()
        res = holder["integ"].advance(holder["pendulum"], q, p, steps, every=steps)
        seconds = time.perf_counter() - t0
        if not res.ok:
            raise RuntimeError(f"hnnsim advance failed: status {res.status[res.status[:, 0] != 0][:3].tolist()}")
        return result(seconds, q, p)

    # -- numba: the plain loop a user writes (prange over members, libm sin) -------------
    def prep_numba():
        import math

        import numba

        @numba.njit(parallel=True, error_model="numpy")
        def leapfrog(q, p, nsteps):
            for b in numba.prange(q.size):
                qb, pb = q[b], p[b]
                force = mgl * math.sin(qb)
                for _ in range(nsteps):
                    pb -= half * force
                    qb += dt * (pb / inertia)
                    force = mgl * math.sin(qb)
                    pb -= half * force
                q[b], p[b] = qb, pb

        _set_numba_threads(threads)
        leapfrog(q0.copy(), p0.copy(), 3)
        holder["numba"] = leapfrog

    def run_numba():
        _set_numba_threads(threads)
        q, p = q0.copy(), p0.copy()
        t0 = time.perf_counter()
        holder["numba"](q, p, steps)
        return result(time.perf_counter() - t0, q, p)

    # -- numba, hand-written lanes: blocks of 64 members, steps inside, vectorised sin ---
    def prep_numba_lanes():
        import numba
        from systems import vector_math as vm

        width = 64

        @numba.njit(parallel=True, error_model="numpy")
        def leapfrog(q, p, nsteps):
            n = q.size
            for blk in numba.prange((n + width - 1) // width):
                b0 = blk * width
                w = min(width, n - b0)
                Q, P, F = q[b0:b0 + w].copy(), p[b0:b0 + w].copy(), np.empty(w)
                for i in range(w):
                    F[i] = mgl * vm.sin_fast_core(Q[i])
                for _ in range(nsteps):
                    for i in range(w):
                        P[i] -= half * F[i]
                    for i in range(w):
                        Q[i] += dt * (P[i] / inertia)
                    for i in range(w):
                        F[i] = mgl * vm.sin_fast_core(Q[i])  # |q| < 2^20 here: no range test
                    for i in range(w):
                        P[i] -= half * F[i]
                q[b0:b0 + w] = Q
                p[b0:b0 + w] = P

        _set_numba_threads(threads)
        leapfrog(q0.copy(), p0.copy(), 3)
        holder["numba-lanes"] = leapfrog

    def run_numba_lanes():
        _set_numba_threads(threads)
        q, p = q0.copy(), p0.copy()
        t0 = time.perf_counter()
        holder["numba-lanes"](q, p, steps)
        return result(time.perf_counter() - t0, q, p)

    # -- torch.compile and torch eager (float64, CPU) -------------------------------------
    def _torch():
        import torch

        torch.set_num_threads(threads)
        return torch

    def prep_torch_compile():
        torch = _torch()

        def chunk_fn(q, p, force):
            for _ in range(chunk):
                p = p - half * force
                q = q + dt * (p / inertia)
                force = mgl * torch.sin(q)
                p = p - half * force
            return q, p, force

        compiled = torch.compile(chunk_fn)
        q = torch.from_numpy(q0.copy())
        compiled(q, torch.from_numpy(p0.copy()), mgl * torch.sin(q))  # compile (inductor, C++), untimed
        holder["torch-compile"] = compiled

    def run_torch_compile():
        torch = _torch()
        compiled = holder["torch-compile"]
        q, p = torch.from_numpy(q0.copy()), torch.from_numpy(p0.copy())
        t0 = time.perf_counter()
        force = mgl * torch.sin(q)
        for _ in range(steps // chunk):
            q, p, force = compiled(q, p, force)
        seconds = time.perf_counter() - t0
        return result(seconds, q.numpy(), p.numpy())

    def prep_torch_eager():
        _torch()

    def run_torch_eager():
        torch = _torch()
        q, p = torch.from_numpy(q0.copy()), torch.from_numpy(p0.copy())
        force, tmp = torch.empty_like(q), torch.empty_like(q)
        t0 = time.perf_counter()
        torch.sin(q, out=force).mul_(mgl)
        for _ in range(steps):
            p.sub_(torch.mul(force, half, out=tmp))
            q.add_(torch.div(p, inertia, out=tmp).mul_(dt))
            torch.sin(q, out=force).mul_(mgl)
            p.sub_(torch.mul(force, half, out=tmp))
        return result(time.perf_counter() - t0, q.numpy(), p.numpy())

    # -- NumPy, in place --------------------------------------------------------------
    def run_numpy():
        q, p = q0.copy(), p0.copy()
        force, tmp = np.empty_like(q), np.empty_like(q)
        t0 = time.perf_counter()
        np.multiply(np.sin(q, out=force), mgl, out=force)
        for _ in range(steps):
            p -= np.multiply(force, half, out=tmp)
            tmp = np.divide(p, inertia, out=tmp)
            q += np.multiply(tmp, dt, out=tmp)
            np.multiply(np.sin(q, out=force), mgl, out=force)
            p -= np.multiply(force, half, out=tmp)
        return result(time.perf_counter() - t0, q, p)

    cs = [
        Contender("hnnsim", "hnnsim Leapfrog.advance, [B, 1] states (lane kernel)", run_hnnsim, work, threads=threads,
                  packages=("hnnsim", "numba", "numpy"), prepare=prep_hnnsim, is_hnnsim=True,
                  note="issue's goal also <= 0.7 ns/member-step on 2 cores"),
        Contender("numba", f"numba prange over members, math.sin ({threads} thr)", run_numba, work, threads=threads,
                  packages=("numba",), prepare=prep_numba),
        Contender("numba-lanes", f"numba hand-written lanes of 64, vector_math.sin_fast_core ({threads} thr)",
                  run_numba_lanes, work, threads=threads, packages=("numba",), prepare=prep_numba_lanes,
                  note="no finite check, no frames: the floor"),
        Contender("torch-compile", f"torch.compile (inductor, CPU, float64, {threads} thr)", run_torch_compile, work,
                  threads=threads, packages=("torch",), prepare=prep_torch_compile,
                  note=f"{chunk} steps per compiled call"),
        Contender("torch-eager", f"torch eager, in place (float64, {threads} thr)", run_torch_eager, work,
                  threads=threads, packages=("torch",), prepare=prep_torch_eager),
        Contender("numpy", "NumPy in place (1 thr)", run_numpy, work, threads=1, packages=("numpy",)),
    ]

    def check(results):
        ref = results.get("hnnsim")
        e0 = energy(q0, p0)
        out = {}
        for key, r in results.items():
            drift = float(np.max(np.abs(energy(r["q"], r["p"]) - e0)))
            parts = [f"max |ΔE| {_fmt(drift, 2)}"]
            if ref is not None and key != "hnnsim":
                parts.append(f"max |Δq| vs hnnsim {_fmt(float(np.max(np.abs(r['q'] - ref['q']))), 2)}")
            out[key] = ", ".join(parts)
        return out

    return cs, check


def build_ensemble_pendulum(quick: bool, threads: int):
    if quick:
        return _build_ensemble_pendulum(1000, 100, threads, chunk=10)
    return _build_ensemble_pendulum(10_000, 1000, threads, chunk=TORCH_CHUNK)


register(Workload(
    "ensemble-pendulum", f"10^4 pendulums x 10^3 leapfrog steps, dt {ENSEMBLE_DT}, amplitudes uniform in (-2, 2) rad, "
    "from rest; work = member-steps", NS_PER_MEMBER_STEP, "torch-compile", build_ensemble_pendulum,
    target_ratio=1 / 1.5, target_text=">= 1.5x torch.compile",
    quick_title="10^3 pendulums x 100 steps (torch.compile: 10 steps per call)"))


# --------------------------------------------------------------------------------------
# Machine / versions header
# --------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> Tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover
        return (float("nan"),) * 3


def package_version(name: str) -> str:
    if name == "hnnsim":
        try:
            from importlib.metadata import version

            v = version("hnnsim")
        except Exception:
            v = "?"
        try:
            head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
            dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            if head:
                v += f" (git {head}{'+dirty' if dirty else ''})"
        except Exception:
            pass
        return v
    if name == "lammps":
        try:
            return peers.lammps_version()
        except Exception as exc:
            return f"unavailable ({exc})"
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "not installed"


# --------------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------------

@dataclass
class Row:
    workload: str
    key: str
    label: str
    threads: int
    work: float
    status: str = "ok"              # ok | unavailable: ... | failed: ...
    times: List[float] = field(default_factory=list)
    check: str = ""
    note: str = ""
    is_hnnsim: bool = False

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    return text if len(text) <= 160 else text[:157] + "..."


def run_workload(wl: Workload, rounds: int, quick: bool, threads: int, verbose: bool = True
                 ) -> Tuple[List[Row], List[Contender]]:
    contenders, check = wl.build(quick, threads)
    rows: Dict[str, Row] = {}
    live: List[Contender] = []
    for c in contenders:
        row = Row(wl.name, c.key, c.label, c.threads, c.work, note=c.note, is_hnnsim=c.is_hnnsim)
        rows[c.key] = row
        t0 = time.perf_counter()
        try:
            if c.prepare is not None:
                c.prepare()
            live.append(c)
            if verbose:
                print(f"  [{wl.name}] prepared {c.key} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        except Exception as exc:
            row.status = "unavailable: " + _reason(exc)
            if verbose:
                print(f"  [{wl.name}] {c.key} {row.status}", file=sys.stderr)
    first: Dict[str, Dict[str, Any]] = {}
    for r in range(rounds):
        order = live if r % 2 == 0 else list(reversed(live))
        for c in order:
            row = rows[c.key]
            if row.status != "ok":
                continue
            try:
                res = c.run()
            except Exception as exc:
                row.status = "failed: " + _reason(exc)
                if verbose:
                    traceback.print_exc(file=sys.stderr)
                continue
            row.times.append(float(res["seconds"]))
            first.setdefault(c.key, res)
        if verbose:
            done = ", ".join(f"{k} {rows[k].times[-1]:.3g}s" for k in rows if rows[k].status == "ok" and rows[k].times)
            print(f"  [{wl.name}] round {r + 1}/{rounds}: {done}  (load {load_average()[0]:.2f})", file=sys.stderr)
    try:
        for key, text in check(first).items():
            rows[key].check = text
    except Exception as exc:
        for key in first:
            rows[key].check = "check failed: " + _reason(exc)
    return list(rows.values()), live


def ratio_to_peer(row: Row, peer: Optional[Row]) -> float:
    if peer is None or not row.times or not peer.times:
        return float("nan")
    return (row.best / row.work) / (peer.best / peer.work)


def render(results: List[Tuple[Workload, List[Row]]], header: Dict[str, Any]) -> str:
    lines = ["# hnnsim vs peers", ""]
    lines.append(f"- machine: {header['cpu']}, {header['cpus']} CPUs available to this process; "
                 f"load average (1/5/15 min) at start {header['load_start']}, at end {header['load_end']}")
    lines.append(f"- Python {header['python']}; threads per contender: --threads {header['threads']} "
                 f"(OMP_NUM_THREADS={header['env'].get('OMP_NUM_THREADS')}, "
                 f"NUMBA_NUM_THREADS={header['env'].get('NUMBA_NUM_THREADS')}, "
                 f"OMP_WAIT_POLICY={header['env'].get('OMP_WAIT_POLICY')}, "
                 f"OPENBLAS_NUM_THREADS={header['env'].get('OPENBLAS_NUM_THREADS')})")
    lines.append("- versions: " + "; ".join(f"{k} {v}" for k, v in header["versions"].items()))
    lines.append(f"- rounds: {header['rounds']} (interleaved, alternating order){' — QUICK sizes' if header['quick'] else ''}; "
                 f"wall time {header['wall_s']:.0f} s")
    lines.append("")
    lines.append("| workload | contender | thr | best | median | unit cost (best) | ratio to peer (time/work) | target | check |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    for wl, rows in results:
        peer = next((r for r in rows if r.key == wl.peer and r.times), None)
        peer_label = next((r.label for r in rows if r.key == wl.peer), wl.peer)
        for r in rows:
            if r.status != "ok" or not r.times:
                lines.append(f"| {wl.name} | {r.label} | {r.threads} | {r.status} | | | | | |")
                continue
            ratio = ratio_to_peer(r, peer)
            target = ""
            if r.is_hnnsim and wl.target_ratio is not None and np.isfinite(ratio):
                met = ratio <= wl.target_ratio
                target = f"{wl.target_text}: {'met' if met else 'NOT met'}"
            unit = wl.unit.value(r.best, r.work)
            ratio_s = "peer" if r.key == wl.peer else (f"{ratio:.3f}× ({1 / ratio:.2f}× speed)" if np.isfinite(ratio)
                                                         else "n/a")
            note = f" ({r.note})" if r.note else ""
            lines.append(f"| {wl.name} | {r.label}{note} | {r.threads} | {_time(r.best)} | {_time(r.median)} | "
                         f"{_fmt(unit, 4)} {wl.unit.label} | {ratio_s} | {target} | {r.check} |")
        lines.append(f"| | *{wl.describe(header['quick'])}; peer: {peer_label}* | | | | | | | |")
    return "\n".join(lines)


def _time(s: float) -> str:
    if not np.isfinite(s):
        return "n/a"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


from benchmarks import learned_workloads  # noqa: E402,F401  (registers learned-2-200-200-1*)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare",
                                 description="Time hnnsim against peer engines, side by side in one process.")
    ap.add_argument("--only", default="", help="comma-separated workloads (default: all); see --list")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, --quick 2)")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test (< 60 s)")
    ap.add_argument("--threads", type=int, default=_CPUS, help=f"threads for threaded contenders (default {_CPUS})")
    ap.add_argument("--omp-wait", choices=("passive", "active"), default=None,
                    help="OMP_WAIT_POLICY for every OpenMP runtime in the process (LAMMPS's libgomp, numba's omp "
                         "layer); default: the environment's, else passive (see the module docstring)")
    ap.add_argument("--json", metavar="PATH", help="also write all numbers as JSON")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)

    if args.list:
        for wl in WORKLOADS.values():
            print(f"{wl.name:14s} {wl.title} (peer: {wl.peer}; target: {wl.target_text or '-'})")
        return 0
    names = [s.strip() for s in args.only.split(",") if s.strip()] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; known: {', '.join(WORKLOADS)}")
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    if rounds < 1:
        ap.error("--rounds must be >= 1")

    # before any OpenMP runtime loads (LAMMPS and numba's pool load lazily, in the preparations)
    if args.omp_wait is not None:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait.upper()
    else:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    t_start = time.perf_counter()
    load_start = load_average()
    results: List[Tuple[Workload, List[Row]]] = []
    packages: Dict[str, None] = {}
    for name in names:
        wl = WORKLOADS[name]
        if not args.quiet:
            print(f"== {name}: {wl.describe(args.quick)}", file=sys.stderr)
        rows, live = run_workload(wl, rounds, args.quick, args.threads, verbose=not args.quiet)
        results.append((wl, rows))
        for c in live:
            for p in c.packages:
                packages[p] = None
    load_end = load_average()
    header = {
        "cpu": cpu_model(), "cpus": _CPUS, "threads": args.threads,
        "load_start": " ".join(f"{x:.2f}" for x in load_start), "load_end": " ".join(f"{x:.2f}" for x in load_end),
        "python": platform.python_version(), "quick": args.quick, "rounds": rounds,
        "wall_s": time.perf_counter() - t_start,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "NUMBA_NUM_THREADS",
                                                 "OPENBLAS_NUM_THREADS",
                                                 "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")},
        "versions": {p: package_version(p) for p in packages},
    }
    print(render(results, header))
    if args.json:
        payload = {"header": header, "workloads": []}
        for wl, rows in results:
            peer = next((r for r in rows if r.key == wl.peer and r.times), None)
            payload["workloads"].append({
                "name": wl.name, "title": wl.describe(args.quick), "unit": wl.unit.label, "peer": wl.peer,
                "target_ratio": wl.target_ratio, "target": wl.target_text,
                "rows": [{"key": r.key, "label": r.label, "threads": r.threads, "status": r.status, "work": r.work,
                          "times_s": r.times, "best_s": r.best if r.times else None,
                          "median_s": r.median if r.times else None,
                          "unit_cost_best": wl.unit.value(r.best, r.work) if r.times else None,
                          "ratio_to_peer": ratio_to_peer(r, peer) if r.times and peer else None,
                          "check": r.check, "note": r.note} for r in rows],
            })
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
