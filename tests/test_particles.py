"""Lennard-Jones particles: forces against brute force and LAMMPS, neighbour lists, the box in
H5MD, bad input. (The registry-wide physics suites cover the system too: order of accuracy
is not among them, because a cutoff makes H only C1; see tests/conftest.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import integrators
import systems
from hnnsim import Simulator
from hnnsim.errors import InputError
from systems import LennardJones, neighbours

REFERENCE = Path(__file__).resolve().parent / "data" / "lammps_lj_reference.npz"


def brute_force(lj: LennardJones, x: np.ndarray):
    """Slow, obvious O(N^2) minimum-image forces, potential and pair virial (NumPy)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    rc, eps, sig = lj.cutoff, lj.epsilon, lj.sigma
    d = x[:, None, :] - x[None, :, :]
    d -= lj.box * np.floor(d / lj.box + 0.5)
    r2 = np.einsum("ijk,ijk->ij", d, d)
    np.fill_diagonal(r2, np.inf)
    inside = r2 < rc * rc
    r = np.sqrt(r2)
    sr6 = (sig * sig / r2) ** 3
    u = 4 * eps * sr6 * (sr6 - 1)
    f_over_r = 24 * eps * sr6 * (2 * sr6 - 1) / r2
    src6 = (sig / rc) ** 6
    u_rc = 4 * eps * src6 * (src6 - 1)
    f_rc = 24 * eps * src6 * (2 * src6 - 1) / rc
    if lj.shift == "force":
        u = u - u_rc + (r - rc) * f_rc
        f_over_r = f_over_r - f_rc / r
    else:
        u = u - u_rc
    f_over_r = np.where(inside, f_over_r, 0.0)
    F = np.einsum("ij,ijk->ik", f_over_r, d)
    V = 0.5 * np.sum(np.where(inside, u, 0.0))
    W = 0.5 * np.sum(np.where(inside, f_over_r * np.where(inside, r2, 0.0), 0.0))
    return F, V, W


def displaced(lj: LennardJones, amount: float, seed: int, offset: float = 0.0):
    q, p = lj.lattice_state(0.72, seed=seed)
    return q + amount * np.random.default_rng(seed).standard_normal(q.shape) + offset, p


@pytest.mark.parametrize("kwargs", [dict(n_cells=4), dict(n_cells=4, shift="force"),
                                    dict(n_cells=2, density=0.3, cutoff=2.0),
                                    dict(n_atoms=200, box=[7.0, 6.5, 8.2], cutoff=2.2)],
                         ids=["cells", "cells-shifted-force", "pair-scan", "orthorhombic"])
def test_forces_energy_virial_match_brute_force(kwargs):
    """Cell-list + Verlet-list forces equal the O(N^2) reference to round-off, for unwrapped
    positions several boxes away from the origin."""
    lj = LennardJones(**kwargs)
    if "box" in kwargs:
        rng = np.random.default_rng(5)
        q = rng.uniform(0, 1, (lj.n_atoms, 3)) * lj.box
        q = q[np.argsort(q[:, 0])]  # spread: reject pairs closer than 0.8 below
        keep = [0]
        for i in range(1, len(q)):
            d = q[keep] - q[i]
            d -= lj.box * np.floor(d / lj.box + 0.5)
            if np.min(np.sum(d * d, axis=1)) > 0.8 ** 2:
                keep.append(i)
        lj = LennardJones(n_atoms=len(keep), box=lj.box, cutoff=2.2)
        q, p = q[keep] - 2.5 * lj.box, np.zeros((len(keep), 3))
    else:
        q, p = displaced(lj, 0.05, seed=3, offset=-17.3)
    F, V, W = brute_force(lj, q)
    gq, _ = lj.gradients(q, p)
    scale = np.max(np.abs(F))
    assert np.max(np.abs(gq + F)) <= 1e-13 * scale
    obs = lj.observables(q.reshape(1, -1), p.reshape(1, -1))
    assert obs["potential_energy"][0] == pytest.approx(V, rel=1e-13)
    extra = lj.extra_observables(q.reshape(1, -1), p.reshape(1, -1))
    kinetic = 0.5 * np.sum(p * p) / lj.mass
    assert extra["pressure"][0] == pytest.approx((2 * kinetic + W) / (3 * lj.volume), rel=1e-12, abs=1e-14)


def test_step_zero_agrees_with_lammps():
    """Energy, forces, pressure and temperature at step 0 against LAMMPS (lj/cut 2.5, shift
    yes; tests/data, written by benchmarks/make_lammps_reference.py) to 1e-10 relative."""
    ref = np.load(REFERENCE)
    lj = LennardJones(n_cells=4, density=float(ref["density"]), cutoff=float(ref["rc"]), skin=float(ref["skin"]))
    assert lj.box[0] == pytest.approx(float(ref["box_edge"]), rel=1e-15)
    q, p = ref["positions0"], ref["velocities0"]  # mass 1
    gq, _ = lj.gradients(q, p)
    np.testing.assert_allclose(-gq, ref["forces0"], rtol=0, atol=1e-10 * np.abs(ref["forces0"]).max())
    obs = lj.observables(q.reshape(1, -1), p.reshape(1, -1))
    assert obs["potential_energy"][0] == pytest.approx(float(ref["pe0"]), rel=1e-10)
    assert obs["kinetic_energy"][0] == pytest.approx(float(ref["ke0"]), rel=1e-10)
    extra = lj.extra_observables(q.reshape(1, -1), p.reshape(1, -1))
    assert extra["pressure"][0] == pytest.approx(float(ref["pressure0"]), rel=1e-10)
    assert extra["temperature"][0] == pytest.approx(float(ref["temperature0"]), rel=1e-10)


def test_trajectory_agrees_with_lammps_nve():
    """100 steps of leapfrog (velocity Verlet, dt 0.005) against LAMMPS's ``fix nve`` from the
    same float64 state. The two sum forces in different orders, so they differ by round-off
    that chaos amplifies (Lyapunov time ~ 0.2 tau here); measured: 1e-14 at step 10 growing
    to ~1e-12 at step 100. The bound is 1e-10."""
    ref = np.load(REFERENCE)
    lj = LennardJones(n_cells=4, density=float(ref["density"]), cutoff=float(ref["rc"]), skin=float(ref["skin"]))
    q = ref["positions0"].reshape(1, -1).copy()
    p = ref["velocities0"].reshape(1, -1).copy()
    res = integrators.Leapfrog(dt=float(ref["dt"])).advance(lj, q, p, int(ref["steps"]), every=10)
    assert res.ok and np.array_equal(res.steps, ref["saved_steps"])
    dev = np.max(np.abs(res.q[:, 0].reshape(len(res.steps), -1, 3) - ref["positions"]), axis=(1, 2))
    assert dev[-1] < 1e-10, f"deviation from LAMMPS by saved step: {dev}"
    assert np.max(np.abs(res.p[-1, 0].reshape(-1, 3) - ref["velocities"][-1])) < 1e-10


def test_parallel_serial_and_ensemble_bit_identical():
    """One member's forces spread over threads (B = 1) equal the serial ones bit for bit, and
    a member's trajectory does not depend on the ensemble around it."""
    lj = LennardJones(n_cells=4)
    q, p = displaced(lj, 0.03, seed=1)
    outs = []
    for parallel in (False, True):
        dHdq, _ = lj.kernel_functions(parallel)
        work = lj.workspace(1)
        out = np.empty(lj.ndof)
        dHdq(q.reshape(-1), p.reshape(-1), lj.params, work.iwork[0], work.fwork[0], out)
        outs.append(out)
    assert np.array_equal(outs[0], outs[1])
    leap = integrators.Leapfrog(dt=0.005)
    q1, p1 = q.reshape(1, -1).copy(), p.reshape(1, -1).copy()
    q2, p2 = displaced(lj, 0.03, seed=2)
    Q = np.stack([q2.reshape(-1), q.reshape(-1), q2.reshape(-1)])
    P = np.stack([p2.reshape(-1), p.reshape(-1), p2.reshape(-1)])
    assert leap.advance(lj, q1, p1, 60).ok and leap.advance(lj, Q, P, 60).ok
    assert np.array_equal(q1[0], Q[1]) and np.array_equal(p1[0], P[1])


def test_forces_do_not_depend_on_the_lists_history():
    """A list built at an earlier state (with the skin still covering every pair) and a fresh
    one give bit-identical forces: lists are sorted, skin pairs add exact zeros."""
    lj = LennardJones(n_cells=4)
    q, p = displaced(lj, 0.03, seed=4)
    moved = q + 0.02 * np.random.default_rng(9).standard_normal(q.shape)  # < skin / 2 each
    dHdq, _ = lj.kernel_functions(False)
    old = lj.workspace(1)
    scratch = np.empty(lj.ndof)
    dHdq(q.reshape(-1), p.reshape(-1), lj.params, old.iwork[0], old.fwork[0], scratch)  # built at q
    fresh = lj.workspace(1)
    a, b = np.empty(lj.ndof), np.empty(lj.ndof)
    dHdq(moved.reshape(-1), p.reshape(-1), lj.params, old.iwork[0], old.fwork[0], a)
    dHdq(moved.reshape(-1), p.reshape(-1), lj.params, fresh.iwork[0], fresh.fwork[0], b)
    assert old.iwork[0, 3] == 1 and fresh.iwork[0, 3] == 1  # the old list was reused, not rebuilt
    assert np.array_equal(a, b)


def test_list_overflow_grows_the_list_and_repeats_the_call():
    """A list too short for the neighbours is never used: the kernel stops, the workspace grows
    and the call runs again from its start; the result equals a run with room from the start."""
    lj = LennardJones(n_cells=4)
    q, p = displaced(lj, 0.03, seed=6)
    leap = integrators.Leapfrog(dt=0.005)
    q1, p1 = q.reshape(1, -1).copy(), p.reshape(1, -1).copy()
    q2, p2 = q1.copy(), p1.copy()
    small = lj.workspace(1, capacity=5)
    res = leap.advance(lj, q1, p1, 40, work=small)
    assert res.ok and small.iwork[0, 1] > 5 and small.iwork[0, 2] <= small.iwork[0, 1]
    assert leap.advance(lj, q2, p2, 40).ok
    assert np.array_equal(q1, q2) and np.array_equal(p1, p2)
    # the Python-side evaluation grows its list too
    np.testing.assert_array_equal(lj.energy(q1[0], p1[0]), lj.energy(q2[0], p2[0]))


def test_resume_is_bit_identical(tmp_path):
    lj = LennardJones(n_cells=3, cutoff=2.0)
    q0, p0 = lj.lattice_state(0.72, seed=2)
    whole = Simulator(lj, integrators.Leapfrog(dt=0.005), q0, p0).run(steps=120, every=20, out=tmp_path / "a.h5")
    Simulator(lj, integrators.Leapfrog(dt=0.005), q0, p0).run(steps=60, every=20, out=tmp_path / "b.h5")
    sim = Simulator.resume(tmp_path / "b.h5")
    assert sim.system == lj
    halves = sim.run(steps=60)
    assert np.array_equal(whole.q, halves.q) and np.array_equal(whole.p, halves.p)
    assert np.array_equal(whole.temperature, halves.temperature)


def test_h5md_records_the_periodic_box_and_observables(tmp_path):
    """``/particles/trajectory/box``: boundary periodic, edges per frame (MDAnalysis reads them
    as the unit cell); temperature and pressure as observables, equal to the in-memory run."""
    h5py = pytest.importorskip("h5py")
    lj = LennardJones(n_cells=3, cutoff=2.0)
    q0, p0 = lj.lattice_state(0.72, seed=1)
    path = tmp_path / "lj.h5"
    traj = Simulator(lj, integrators.Leapfrog(dt=0.005), q0, p0).run(steps=100, every=25, out=path)
    mem = Simulator(lj, integrators.Leapfrog(dt=0.005), q0, p0).run(steps=100, every=25)
    assert traj.temperature.shape == (5,) and traj.temperature[0] == pytest.approx(0.72, rel=1e-12)
    np.testing.assert_array_equal(traj.pressure, mem.pressure)
    with h5py.File(path, "r") as f:
        box = f["particles/trajectory/box"]
        assert [b.decode() for b in box.attrs["boundary"]] == ["periodic"] * 3
        np.testing.assert_array_equal(box["edges/value"][...], np.tile(lj.box, (5, 1)))
        assert "unwrapped" in f["parameters/hnnsim"].attrs["positions"]
    mda_h5md = pytest.importorskip("MDAnalysis.coordinates.H5MD")
    ts = mda_h5md.H5MDReader(str(path), convert_units=False)[2]
    np.testing.assert_allclose(ts.dimensions, list(lj.box) + [90, 90, 90], rtol=1e-6)
    with pytest.raises(AttributeError, match="observables are temperature, pressure"):
        traj.density


def test_momentum_conserved_and_memory_linear():
    lj = LennardJones(n_cells=3, cutoff=2.0)
    q, p = lj.lattice_state(1.0, seed=3)
    assert np.max(np.abs(p.sum(axis=0))) < 1e-13
    Q, P = q.reshape(1, -1).copy(), p.reshape(1, -1).copy()
    assert integrators.Leapfrog(dt=0.005).advance(lj, Q, P, 500).ok
    assert np.max(np.abs(P.reshape(-1, 3).sum(axis=0))) < 1e-11 * np.abs(P).sum()
    # workspace per atom does not grow with N (no N x N arrays)
    per_atom = [LennardJones(n_cells=k).workspace(1).iwork.nbytes / (4 * k ** 3) for k in (4, 8)]
    assert per_atom[1] <= 1.05 * per_atom[0]


def test_images_follow_particles_across_the_faces_of_the_box():
    """Between builds, particles that cross a face of the box (their wrapped position jumps
    by an edge) carry the images of their list entries along: with a drift that takes many
    across faces while the list is reused, the forces of the carried list equal, bit for
    bit, those of a fresh list at every step, and the brute-force forces at the end."""
    lj = LennardJones(n_cells=6)  # a 7^3 grid of cells
    q, p = displaced(lj, 0.03, seed=11, offset=-2.0 * lj.box[0])
    x = q.reshape(-1).copy()
    v = p.reshape(-1) + np.tile([0.9, -0.6, 0.4], lj.n_atoms)  # drift: crossings at every face
    dHdq, _ = lj.kernel_functions(False)
    carried = lj.workspace(1)
    f, g = np.empty(lj.ndof), np.empty(lj.ndof)
    images = np.floor(x / np.tile(lj.box, lj.n_atoms))
    crossed = 0
    for step in range(30):
        dHdq(x, v, lj.params, carried.iwork[0], carried.fwork[0], f)
        fresh = lj.workspace(1)
        dHdq(x, v, lj.params, fresh.iwork[0], fresh.fwork[0], g)
        assert np.array_equal(f, g), f"step {step}"
        x += 0.005 * v
        v -= 0.005 * f
        now = np.floor(x / np.tile(lj.box, lj.n_atoms))
        crossed += int(np.sum(now != images))
        images = now
    assert crossed > 50 and carried.iwork[0, 3] < 10  # many crossings between few builds
    dHdq(x, v, lj.params, carried.iwork[0], carried.fwork[0], f)
    F, _, _ = brute_force(lj, x)
    assert np.max(np.abs(f + F.reshape(-1))) <= 1e-13 * np.max(np.abs(F))


@pytest.mark.parametrize("kwargs", [dict(n_cells=6), dict(n_atoms=250, box=[7.2, 7.2, 7.2]),
                                    dict(n_atoms=150, box=[15.0, 15.0, 15.0]), dict(n_cells=4)],
                         ids=["cells-of-half-reach", "five-cells", "whole-reach-cells", "pair-scan"])
def test_lists_are_symmetric_sorted_and_independent_of_threads(kwargs):
    """A build gives the same list on 1, 2 or 3 threads; each row is sorted by index, and j
    is in i's row, at image s, exactly when i is in j's row at image -s."""
    lj = LennardJones(**kwargs)
    rng = np.random.default_rng(2)
    x = (rng.uniform(0, 1, (lj.n_atoms, 3)) * lj.box - 3.0 * lj.box).reshape(-1)
    n = lj.n_atoms
    edges, grid = lj.params[5:8].copy(), lj.params[11:15].astype(np.int64)
    reach2 = (lj.cutoff + lj.skin) ** 2
    lists = []
    for tasks in (1, 2, 3):
        work = lj.workspace(1)
        build = neighbours._build_serial if tasks == 1 else neighbours._build_parallel
        build(x, edges, reach2, grid, work.iwork[0], work.fwork[0], n, tasks)
        assert work.iwork[0, 0] == 0
        counts = work.iwork[0, neighbours.HEADER:neighbours.HEADER + n].copy()
        table = neighbours.lists(work.iwork[0], n)[0].reshape(n, -1)
        lists.append([table[i, :counts[i]].copy() for i in range(n)])
    assert all(np.array_equal(a, b) for other in lists[1:] for a, b in zip(lists[0], other))
    entries = set()
    for i, row in enumerate(lists[0]):
        j = (row >> neighbours.IMAGE_BITS).astype(np.int64)
        assert np.all(np.diff(j) > 0)
        entries.update(zip([i] * len(row), j.tolist(), (row & 31).tolist()))
    assert entries and all((j, i, 26 - s) in entries for i, j, s in entries)


def test_parallel_forces_do_not_depend_on_the_thread_count():
    numba = pytest.importorskip("numba")
    lj = LennardJones(n_cells=6)
    q, p = displaced(lj, 0.03, seed=12)
    dHdq, _ = lj.kernel_functions(True)
    before = numba.get_num_threads()
    outs = []
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            work = lj.workspace(1)
            out = np.empty(lj.ndof)
            dHdq(q.reshape(-1), p.reshape(-1), lj.params, work.iwork[0], work.fwork[0], out)
            outs.append(out)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_neighbour_pairs_match_brute_force():
    lj = LennardJones(n_cells=5)
    q, _ = displaced(lj, 0.1, seed=8, offset=3.1)
    pairs = lj.neighbour_pairs(q, cutoff=2.8)
    d = q[:, None] - q[None]
    d -= lj.box * np.floor(d / lj.box + 0.5)
    i, j = np.nonzero(np.triu(np.einsum("ijk,ijk->ij", d, d) < 2.8 ** 2, k=1))
    np.testing.assert_array_equal(pairs, np.stack([i, j], axis=1))


# -- bad input ---------------------------------------------------------------------

def test_box_shorter_than_twice_cutoff_plus_skin_is_refused():
    with pytest.raises(InputError, match=r"shorter than twice the cutoff plus skin \(2 \* \(2.5 \+ 0.3\) = 5.6\)"):
        LennardJones(n_cells=2)


def test_overlapping_atoms_are_refused_before_anything_is_written(tmp_path):
    lj = LennardJones(n_cells=3, cutoff=2.0)
    q, p = lj.lattice_state(0.5, seed=0)
    q[7] = q[3]
    with pytest.raises(InputError, match="atoms 3 and 7 overlap"):
        Simulator(lj, integrators.Leapfrog(dt=0.005), q, p).run(steps=10, out=tmp_path / "x.h5")
    assert not list(tmp_path.iterdir())


def test_atom_count_that_does_not_fill_the_lattice_is_refused():
    lj = LennardJones(n_atoms=100, box=[6.0, 6.0, 6.0], cutoff=2.0)
    with pytest.raises(InputError, match="100 atoms .* do not fill an fcc lattice"):
        lj.lattice_state(0.72)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_cells=2.5), "whole number of fcc cells"),
    (dict(shift="smooth"), "shift must be 'energy'"),
    (dict(n_atoms=10), "give both n_atoms and box"),
    (dict(n_atoms=10, box=[6.0, -1.0, 6.0]), "box must be 3 finite edges > 0"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(InputError, match=message):
        LennardJones(**kwargs)


def test_registry_and_description_round_trip():
    lj = systems.get("lennard-jones", n_cells=3, cutoff=2.0, shift="force")
    assert systems.from_description(lj.describe()) == lj
    box = LennardJones(n_atoms=20, box=[6.0, 6.0, 7.0], cutoff=2.0)
    assert systems.from_description(box.describe()) == box


def test_cli_simulates_a_thermal_lattice(tmp_path, capsys):
    """`hnnsim simulate lennard-jones --param ... --temperature T --seed S`: the lattice start at
    exactly T, the observables summarised; --temperature with --q0 or without such a state refused."""
    from hnnsim import cli
    from hnnsim.trajectory import open_trajectory

    out = tmp_path / "lj.h5"
    assert cli.main(["simulate", "lennard-jones", "--param", "n_cells=3", "--param", "cutoff=2.0", "--temperature",
                     "0.9", "--seed", "4", "--dt", "0.005", "--steps", "40", "--every", "20", "-q", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "temperature: 0.9 ->" in printed and "pressure:" in printed
    traj = open_trajectory(out)
    q0, p0 = LennardJones(n_cells=3, cutoff=2.0).lattice_state(0.9, seed=4)
    np.testing.assert_array_equal(traj.q[0], q0)
    np.testing.assert_array_equal(traj.p[0], p0)
    assert cli.main(["simulate", "pendulum", "--temperature", "1", "--steps", "1", "-o", str(tmp_path / "p.h5")]) == 2
    assert "pendulum has no thermal initial state" in capsys.readouterr().err
