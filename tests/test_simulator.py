"""Simulator, trajectories, H5MD files, restart and recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import integrators
import systems
from hnnsim import (CallbackReporter, ConvergenceError, EnergyReporter, IncompatibleSystemError, SimulationDiverged, Simulator,
                    TrajectoryError, open_trajectory)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pendulum_sim(**kw):
    return Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0], **kw)


def test_issue_example_shapes_and_file_round_trip(tmp_path):
    path = tmp_path / "pend.h5"
    traj = pendulum_sim().run(steps=10_000, every=10, out=str(path))
    assert traj.t.shape == (1001,) and traj.step.shape == (1001,)
    assert traj.q.shape == traj.p.shape == traj.velocity.shape == traj.force.shape == (1001, 1, 1)
    assert traj.energy.shape == (1001,)
    np.testing.assert_array_equal(traj.step, np.arange(0, 10_001, 10))
    # time is t0 + step * dt, computed, not accumulated
    np.testing.assert_array_equal(traj.t, traj.step * 0.01)
    again = open_trajectory(path)
    for key in ("step", "t", "q", "p", "velocity", "force", "energy", "kinetic_energy", "potential_energy"):
        np.testing.assert_array_equal(getattr(again, key), getattr(traj, key))
    assert again.system == systems.Pendulum() and again.integrator == integrators.Leapfrog(dt=0.01)


def test_in_memory_matches_file_and_derived_quantities(tmp_path):
    mem = pendulum_sim().run(2000, every=7)
    disk = pendulum_sim().run(2000, every=7, out=str(tmp_path / "a.h5"))
    np.testing.assert_array_equal(mem.q, disk.q)
    np.testing.assert_array_equal(mem.energy, disk.energy)
    sysm = systems.Pendulum()
    gq, gp = sysm.gradients(disk.q, disk.p)
    np.testing.assert_array_equal(disk.velocity, gp)
    np.testing.assert_array_equal(disk.force, -gq)
    np.testing.assert_array_equal(disk.energy, sysm.energy(disk.q, disk.p))
    np.testing.assert_allclose(disk.kinetic_energy + disk.potential_energy, disk.energy, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(disk.kinetic_energy, disk.p[:, 0, 0] ** 2 / 2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("integ", [integrators.Leapfrog(dt=0.01), integrators.Tao(dt=0.01, omega=20.0, order=4)],
                         ids=["leapfrog", "tao4"])
def test_resume_is_bit_identical(tmp_path, integ):
    system = systems.HenonHeiles()
    q0, p0 = system.default_state()
    ref = Simulator(system, integ, q0, p0).run(3000, every=10)
    path = str(tmp_path / "r.h5")
    Simulator(system, integ, q0, p0).run(1234, every=10, out=path)  # stops between two frames
    sim = Simulator.resume(path)
    assert sim.step == 1234
    cont = sim.run(3000 - 1234)
    np.testing.assert_array_equal(cont.step, ref.step)
    np.testing.assert_array_equal(cont.q, ref.q)
    np.testing.assert_array_equal(cont.p, ref.p)
    np.testing.assert_array_equal(cont.energy, ref.energy)


def test_chunking_does_not_change_results():
    a = pendulum_sim().run(50_000, every=10)
    sim = pendulum_sim()
    blocks = list(sim.irun(50_000, every=10, block_seconds=1e-5))
    assert len(blocks) > 5
    np.testing.assert_array_equal(np.concatenate([b.q for b in blocks])[:, 0].reshape(a.q.shape), a.q)


def test_second_run_continues_the_same_file(tmp_path):
    path = str(tmp_path / "c.h5")
    sim = pendulum_sim()
    sim.run(500, every=10, out=path)
    traj = sim.run(500)
    np.testing.assert_array_equal(traj.step, np.arange(0, 1001, 10))
    np.testing.assert_array_equal(traj.q, pendulum_sim().run(1000, every=10).q)


def test_irun_break_leaves_consistent_file_and_state(tmp_path):
    path = str(tmp_path / "b.h5")
    sim = pendulum_sim()
    for i, frames in enumerate(sim.irun(100_000, every=10, out=path, block_seconds=1e-4)):
        if i == 3:
            stop = int(frames.step[-1])
            break
    assert sim.step >= stop
    traj = open_trajectory(path)
    assert traj.checkpoint["step"] == sim.step
    assert int(traj.step[-1]) <= sim.step
    cont = Simulator.resume(path).run(20_000 - sim.step)
    np.testing.assert_array_equal(cont.q, pendulum_sim().run(20_000, every=10).q)


def test_divergence_raises_with_step_and_keeps_frames(tmp_path):
    # RK4 is unstable on the oscillator for h*omega > 2.83: |R| = 1.5 per step; the energy overflows first
    path = str(tmp_path / "d.h5")
    sim = Simulator(systems.HarmonicOscillator(), integrators.RK4(dt=3.0), q0=[1.0], p0=[0.0])
    with pytest.raises(SimulationDiverged, match=r"non-finite at step \d+") as info:
        sim.run(5000, every=10, out=path)
    assert 500 < info.value.step < 3000  # H = (q^2 + p^2)/2 overflows (step ~870) before q, p do (~1750)
    traj = open_trajectory(path)
    assert int(traj.step[-1]) < info.value.step
    assert int(traj.step[-1]) >= info.value.step - 10
    assert np.all(np.isfinite(traj.q))


def test_implicit_midpoint_non_convergence_is_an_error():
    sim = Simulator(systems.Pendulum(), integrators.ImplicitMidpoint(dt=5.0), q0=[3.0], p0=[5.0])
    with pytest.raises((ConvergenceError, SimulationDiverged), match=r"did not converge at step 1 |non-finite at step 1 "):
        sim.run(10)


def test_ensemble_members_match_single_runs(tmp_path):
    system = systems.Pendulum()
    q0 = np.array([[[0.5]], [[1.0]], [[2.0]]])
    p0 = np.zeros_like(q0)
    path = str(tmp_path / "e.h5")
    trajs = Simulator(system, integrators.Yoshida4(dt=0.02), q0, p0).run(1000, every=10, out=path)
    assert [os.path.basename(t.path) for t in trajs] == ["e.0.h5", "e.1.h5", "e.2.h5"]
    mem = Simulator(system, integrators.Yoshida4(dt=0.02), q0, p0).run(1000, every=10)
    assert mem.q.shape == (101, 3, 1, 1) and mem.energy.shape == (101, 3)
    for b in range(3):
        single = Simulator(system, integrators.Yoshida4(dt=0.02), q0[b], p0[b]).run(1000, every=10)
        np.testing.assert_array_equal(trajs[b].q, single.q)
        np.testing.assert_array_equal(mem.q[:, b], single.q)


def test_reporters_receive_every_frame(tmp_path):
    seen = []
    log = open(tmp_path / "energy.txt", "w")
    sim = pendulum_sim(reporters=[CallbackReporter(lambda f: seen.append(f.step.copy())), EnergyReporter(log)])
    sim.run(5000, every=50)
    log.close()
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(0, 5001, 50))
    lines = open(tmp_path / "energy.txt").read().splitlines()
    assert lines[0].startswith("#") and int(lines[-1].split()[0]) == 5000


def test_mdanalysis_reads_the_file(tmp_path):
    mda_h5md = pytest.importorskip("MDAnalysis.coordinates.H5MD")
    system = systems.TwoBody()
    q0, p0 = system.default_state()
    path = str(tmp_path / "kepler.h5")
    traj = Simulator(system, integrators.Leapfrog(dt=0.001), q0, p0).run(1000, every=100, out=path)
    reader = mda_h5md.H5MDReader(path, convert_units=False)
    assert reader.n_frames == len(traj) and reader.n_atoms == 2
    ts = reader[4]
    np.testing.assert_allclose(ts.positions[:, :2], traj.q[4], rtol=1e-6)  # MDAnalysis stores float32
    np.testing.assert_array_equal(ts.positions[:, 2], 0.0)
    np.testing.assert_allclose(ts.velocities[:, :2], traj.velocity[4], rtol=1e-6)
    np.testing.assert_allclose(ts.forces[:, :2], traj.force[4], rtol=1e-5)
    assert ts.time == pytest.approx(traj.t[4])
    assert ts.data["hamiltonian"] == pytest.approx(traj.energy[4], rel=1e-12)
    assert ts.data["step"] == 400


def test_file_layout_is_h5md(tmp_path):
    path = str(tmp_path / "l.h5")
    pendulum_sim().run(100, every=10, out=path)
    with h5py.File(path, "r") as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/creator"].attrs["name"] == "hnnsim"
        traj = f["particles/trajectory"]
        assert traj["box"].attrs["dimension"] == 3
        for name in ("position", "velocity", "momentum", "force"):
            assert traj[f"{name}/value"].shape == (11, 1, 3)
            # step/time are one dataset hard-linked everywhere
            assert traj[f"{name}/step"].id == traj["position/step"].id
        assert f["observables/hamiltonian/step"].id == traj["position/step"].id
        assert f["parameters/hnnsim"].attrs["every"] == 10


# -- bad input -----------------------------------------------------------------

def test_bad_initial_state_messages():
    with pytest.raises(ValueError, match=r"q0 for pendulum must have shape \(1, 1\) or \(1,\).*got shape \(3,\)"):
        Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.1), q0=[1.0, 2.0, 3.0], p0=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"q0 must be finite, found nan"):
        Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.1), q0=[np.nan], p0=[0.0])
    with pytest.raises(ValueError, match=r"give both q0 and p0"):
        Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.1), q0=[1.0])
    with pytest.raises(IncompatibleSystemError, match=r"not separable.*implicit-midpoint.*rk4.*tao"):
        Simulator(systems.DoublePendulum(), integrators.Leapfrog(dt=0.1))
    with pytest.raises(TypeError, match=r"steps must be an integer"):
        pendulum_sim().run(1.5)
    with pytest.raises(ValueError, match=r"every must be >= 1, got 0"):
        pendulum_sim().run(10, every=0)


def test_existing_output_is_not_overwritten(tmp_path):
    path = str(tmp_path / "x.h5")
    pendulum_sim().run(100, every=10, out=path)
    before = open(path, "rb").read()
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
        pendulum_sim().run(100, every=10, out=path)
    assert open(path, "rb").read() == before
    pendulum_sim().run(200, every=10, out=path, overwrite=True)
    assert len(open_trajectory(path)) == 21


def test_files_that_are_not_trajectories(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(TrajectoryError, match=r"not a readable HDF5 file"):
        open_trajectory(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(TrajectoryError, match=r"not an H5MD trajectory"):
        open_trajectory(other)
    with pytest.raises(TrajectoryError, match=r"not an H5MD trajectory"):
        Simulator.resume(other)
    with pytest.raises(FileNotFoundError, match=r"no such trajectory file"):
        open_trajectory(tmp_path / "missing.h5")


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "t.h5"
    pendulum_sim().run(20_000, every=1, out=str(path))
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrajectoryError, match=r"truncated|damaged"):
        open_trajectory(cut)


# -- crash safety ----------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import sys
    import integrators, systems
    from hnnsim import Simulator
    sim = Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0])
    for frames in sim.irun(10**10, every=10, out=sys.argv[1], block_seconds=0.01):
        print(int(frames.step[-1]), flush=True)
""")


def _start_writer(path):
    return subprocess.Popen([sys.executable, "-c", _WRITER, path], stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _wait_for_blocks(proc, n):
    for _ in range(n):
        line = proc.stdout.readline()
        assert line, "writer exited early"
    return int(line)


def test_sigkill_mid_write_leaves_a_readable_resumable_file(tmp_path):
    path = str(tmp_path / "killed.h5")
    proc = _start_writer(path)
    try:
        _wait_for_blocks(proc, 20)
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    traj = open_trajectory(path)
    steps = traj.step
    assert len(steps) > 100
    np.testing.assert_array_equal(steps, np.arange(0, 10 * len(steps), 10))
    np.testing.assert_array_equal(traj.energy, systems.Pendulum().energy(traj.q, traj.p))
    ck = traj.checkpoint["step"]
    sim = Simulator.resume(path)
    # leapfrog's state is (q, p): resume continues from the last complete frame if it is past
    # the checkpoint (killed between a block and its checkpoint)
    assert sim.step == max(ck, int(steps[-1]))
    target = sim.step + 5000
    cont = sim.run(5000)
    ref = pendulum_sim().run(target, every=10)
    np.testing.assert_array_equal(cont.step, ref.step)
    np.testing.assert_array_equal(cont.q, ref.q)


def test_ctrl_c_stops_cleanly(tmp_path):
    path = str(tmp_path / "int.h5")
    proc = _start_writer(path)
    _wait_for_blocks(proc, 10)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0  # KeyboardInterrupt propagates after the file is closed
    last = int(out.split()[-1]) if out.split() else None
    traj = open_trajectory(path)
    assert traj.checkpoint["step"] >= int(traj.step[-1])
    if last is not None:
        assert int(traj.step[-1]) == last


# -- the writer's own contract ----------------------------------------------------

def test_writer_reopen_keeps_frames_up_to_the_checkpoint(tmp_path):
    """Reopening a file to continue it (``H5MDWriter(mode="a")``) keeps every frame at or
    before the checkpoint, whether the checkpoint sits on a frame or between two, and cuts
    exactly the frames written after it (a run killed between a block and its checkpoint)."""
    from hnnsim import h5md

    on = str(tmp_path / "on.h5")
    pendulum_sim().run(1000, every=10, out=on)  # checkpoint at step 1000, a frame
    before = h5md.read_frames(on)
    with h5md.H5MDWriter(on, mode="a") as w:
        assert (w.n_frames, w.last_step()) == (101, 1000)
    after = h5md.read_frames(on)
    assert after["checkpoint"]["step"] == 1000
    for key in ("step", "time", "q", "p", "energy"):
        np.testing.assert_array_equal(after[key], before[key])

    between = str(tmp_path / "between.h5")
    pendulum_sim().run(1005, every=10, out=between)  # checkpoint at 1005, last frame 1000
    with h5md.H5MDWriter(between, mode="a") as w:
        assert (w.n_frames, w.last_step()) == (101, 1000)

    # frames past the checkpoint (their checkpoint never came) are cut on reopen
    with h5md.H5MDWriter(on, mode="a") as w:
        one = np.ones((2, 1))
        w.append(np.array([1010, 1020]), np.array([10.1, 10.2]), one, one, one, one, np.ones(2), np.ones(2), np.ones(2))
        assert (w.n_frames, w.last_step()) == (103, 1020)
    assert h5md.read_frames(on)["step"][-1] == 1020
    with h5md.H5MDWriter(on, mode="a") as w:
        assert (w.n_frames, w.last_step()) == (101, 1000)
    np.testing.assert_array_equal(h5md.read_frames(on)["q"], before["q"])


# -- one error root -----------------------------------------------------------------

def test_every_error_is_an_hnnsim_error_and_the_builtin_users_expect(tmp_path):
    """Each refusal is an HnnsimError and also the built-in a Python user would catch."""
    import hnnsim
    from hnnsim import HnnsimError

    cases = [
        (lambda: systems.get("pendulm"), KeyError, "unknown system 'pendulm'"),
        (lambda: systems.Pendulum(length=-1.0), ValueError, "length"),
        (lambda: integrators.Leapfrog(dt="x"), TypeError, "dt must be a positive number"),
        (lambda: Simulator(systems.DoublePendulum(), integrators.Leapfrog(dt=0.1)), ValueError, "not separable"),
        (lambda: open_trajectory(tmp_path / "missing.h5"), FileNotFoundError, "no such trajectory file"),
        (lambda: systems.load(tmp_path / "missing.hnn"), OSError, "cannot read model file"),
    ]
    (tmp_path / "notes.h5").write_text("not hdf5")
    cases.append((lambda: open_trajectory(tmp_path / "notes.h5"), OSError, "not a readable HDF5 file"))
    path = str(tmp_path / "x.h5")
    pendulum_sim().run(10, out=path)
    cases.append((lambda: pendulum_sim().run(10, out=path), FileExistsError, "already exists"))
    for call, builtin, text in cases:
        with pytest.raises(HnnsimError, match=text) as info:
            call()
        assert isinstance(info.value, builtin), f"{type(info.value).__name__} is not a {builtin.__name__}"
    # an unconverged implicit solve is not a divergence: its state is finite
    assert not issubclass(hnnsim.ConvergenceError, hnnsim.SimulationDiverged)
    assert issubclass(hnnsim.ConvergenceError, hnnsim.IntegratorError)
    with pytest.raises(ConvergenceError) as info:
        Simulator(systems.Pendulum(), integrators.ImplicitMidpoint(dt=0.5, max_iter=2), q0=[3.0], p0=[5.0]).run(10)
    assert info.value.step == 1 and info.value.member == 0
    assert str(KeyError("x")) == "'x'" and str(hnnsim.UnknownNameError("unknown x")) == "unknown x"


def test_energy_error_above_tolerance_warns_and_non_finite_energy_is_divergence(tmp_path):
    """dt far too large for the orbit: the run finishes, but warns with the error it
    reached; below the tolerance, or with energy_tolerance=None, nothing is said."""
    import warnings

    from hnnsim import EnergyDriftWarning

    big = Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.9), q0=[3.0], p0=[0.0])
    with pytest.warns(EnergyDriftWarning, match=r"relative energy error reached [\d.e+-]+, above energy_tolerance = 0.01"):
        big.run(200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pendulum_sim().run(1000)
        Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.9), q0=[3.0], p0=[0.0]).run(200, energy_tolerance=None)
        Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.9), q0=[3.0], p0=[0.0]).run(200, energy_tolerance=1e6)
    with pytest.raises(ValueError, match=r"energy_tolerance must be a finite number > 0 or None"):
        pendulum_sim().run(10, energy_tolerance=0)


def test_an_in_memory_run_that_cannot_fit_is_refused_up_front():
    sim = Simulator(systems.TwoBody(), integrators.Leapfrog(dt=0.001))
    with pytest.raises(ValueError, match=r"keeping \d+ frames of 1 x 4 values in memory needs [\d.]+ GiB.*out='run.h5'"):
        sim.run(10**13, every=1)
    assert sim.step == 0  # nothing ran
