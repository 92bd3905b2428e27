"""Files damaged on purpose, one way at a time: every error names the file and the dataset
or attribute, nothing is fabricated, and nothing consistent is dropped."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import integrators
import systems
from hnnsim import Simulator, TrajectoryError, open_trajectory
from hnnsim.cli import main

N, EVERY = 1000, 10


def sim(integ=None):
    return Simulator(systems.Pendulum(), integ or integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0])


@pytest.fixture(scope="module")
def reference():
    return sim().run(2 * N, every=EVERY)


@pytest.fixture
def good(tmp_path):
    path = str(tmp_path / "good.h5")
    sim().run(N, every=EVERY, out=path)
    return path


def damage(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize("what, fn, message", [
    ("slot 7", lambda f: f["parameters/hnnsim/checkpoint/slot"].__setitem__(0, 7),
     r"checkpoint/slot is 7, expected 0, 1 or -1"),
    ("NaN checkpoint", lambda f: f["parameters/hnnsim/checkpoint/q"].__setitem__(
        (int(f["parameters/hnnsim/checkpoint/slot"][0]), 0), np.nan), r"checkpoint/q\[\d\] \(step 1000\) holds non-finite"),
    ("bad JSON", lambda f: f["parameters/hnnsim"].attrs.__setitem__("system", "{not json"),
     r"attribute /parameters/hnnsim@system cannot be read"),
    ("every 0", lambda f: f["parameters/hnnsim"].attrs.__setitem__("every", 0),
     r"attribute /parameters/hnnsim@every is 0, expected an integer >= 1"),
    ("dt -1", lambda f: f["parameters/hnnsim"].attrs.__setitem__("dt", -1.0),
     r"attribute /parameters/hnnsim@dt is -1.0, expected a finite number > 0"),
    ("step rewritten", lambda f: f["particles/trajectory/position/step"].__setitem__(5, 3),
     r"position/step is damaged at row 5 \(step 3 after 40"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_damaged_metadata_is_refused_naming_file_and_dataset(good, what, fn, message, capsys):
    damage(good, fn)
    with pytest.raises(TrajectoryError, match=message) as info:
        Simulator.resume(good)
    assert good in str(info.value)
    assert main(["simulate", "--resume", good, "--steps", "10", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hnnsim: error: ") and good in err and "Traceback" not in err


def test_a_damaged_checkpoint_still_lets_the_frames_be_read(good):
    damage(good, lambda f: f["parameters/hnnsim/checkpoint/slot"].__setitem__(0, 7))
    with pytest.warns(UserWarning, match=r"checkpoint/slot is 7.*the frames are read without it"):
        traj = open_trajectory(good)
    assert len(traj) == N // EVERY + 1 and traj.checkpoint is None


def test_a_short_dataset_is_cut_to_the_consistent_prefix_never_filled(good, reference):
    """position/value cut to 50 of 101 rows: the 50 frames every dataset holds are kept
    (none comes back as zeros), the run continues from the last of them, and the frames
    after it are recomputed bit-identically."""
    def cut(f):
        f["particles/trajectory/position/value"].resize(50, axis=0)
    damage(good, cut)
    assert len(open_trajectory(good)) == 50
    resumed = Simulator.resume(good)
    assert resumed.step == 490
    resumed.run(2 * N - resumed.step)
    traj = open_trajectory(good)
    np.testing.assert_array_equal(traj.step, reference.step)
    np.testing.assert_array_equal(traj.q, reference.q)
    np.testing.assert_array_equal(traj.p, reference.p)


def test_a_gap_that_cannot_be_recomputed_is_refused(tmp_path):
    """Tao keeps extended copies that only the checkpoint holds: frames lost before it cannot
    be recomputed, so the file is refused, naming the short datasets, rather than continued
    with a gap."""
    path = str(tmp_path / "tao.h5")
    Simulator(systems.DoublePendulum(), integrators.Tao(dt=0.01, omega=20.0)).run(N, every=EVERY, out=path)

    def cut(f):
        f["particles/trajectory/momentum/value"].resize(40, axis=0)
    damage(path, cut)
    with pytest.raises(TrajectoryError, match=r"checkpoint is at step 1000 but its complete frames end at step "
                                              r"390 \(.*momentum/value: 40 rows.*would leave a gap"):
        Simulator.resume(path)


def test_info_and_recover_a_file_a_killed_writer_left(tmp_path, capsys):
    """A writer killed mid-run leaves HDF5's open-for-write flag: hnnsim reads it, plain
    h5py (and MDAnalysis) cannot. `hnnsim info` says so, `hnnsim recover` fixes it in place
    without losing a completed frame."""
    import os
    import subprocess
    import sys
    import textwrap

    path = str(tmp_path / "killed.h5")
    script = textwrap.dedent(f"""
        import integrators, systems
        from hnnsim import Simulator
        Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0]).run(
            100_000, every={EVERY}, out={path!r})
    """)
    env = {**os.environ, "HNNSIM_CRASH_AT": "checkpoint:slot:3"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, timeout=300)
    assert res.returncode == 86, res.stderr
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    before = open_trajectory(path)
    assert main(["info", path]) == 0
    assert f"`hnnsim recover {path}`" in capsys.readouterr().out
    assert main(["recover", path]) == 0
    assert "recovered" in capsys.readouterr().out
    with h5py.File(path, "r") as f:  # any HDF5 client now
        assert f["particles/trajectory/position/value"].shape[0] == len(before)
    after = open_trajectory(path)
    np.testing.assert_array_equal(after.q, before.q)
    assert main(["recover", path]) == 0
    assert "needs no recovery" in capsys.readouterr().out
    assert main(["info", path]) == 0
    assert "hnnsim recover" not in capsys.readouterr().out


def test_summaries_stream_and_match_the_in_memory_drift(tmp_path, monkeypatch):
    """`hnnsim info`, `simulate`'s last line and Trajectory.energy_drift on a file read the
    energy in chunks: the same numbers as the in-memory computation, with memory flat."""
    import tracemalloc

    from hnnsim import h5md
    from hnnsim.trajectory import energy_drift, lazy_trajectory

    path = str(tmp_path / "long.h5")
    Simulator(systems.HenonHeiles(), integrators.Leapfrog(dt=0.05)).run(200_000, every=2, out=path)
    full = open_trajectory(path)
    ref = energy_drift(full.time, full.energy)
    monkeypatch.setattr(h5md, "_SCAN_CHUNK", 4096)  # so that a small file spans many chunks
    tracemalloc.start()
    s = h5md.summary(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert s["frames"] == len(full) == 100_001
    # the frames' steps, times and energies alone are 2.4 MB; the scan holds a few chunks
    assert peak < 0.5 * 2**20, f"{peak / 2**20:.2f} MiB to summarise a {len(full)}-frame file"
    for key in ("H0", "max_abs", "max_rel", "final"):
        assert s["drift"][key] == ref[key], key
    assert s["drift"]["slope"] == pytest.approx(ref["slope"], rel=1e-9, abs=1e-15)
    lazy = lazy_trajectory(path)
    assert lazy.energy_drift()["max_abs"] == ref["max_abs"] and lazy._arrays is None  # nothing loaded


@pytest.mark.parametrize("chunk", [4, 5, 6, 1 << 20])
def test_the_consistency_scan_is_the_same_in_any_chunking(good, monkeypatch, chunk):
    from hnnsim import h5md

    monkeypatch.setattr(h5md, "_SCAN_CHUNK", chunk)
    assert len(open_trajectory(good)) == N // EVERY + 1
    damage(good, lambda f: f["particles/trajectory/position/step"].__setitem__(5, 3))
    with pytest.raises(TrajectoryError, match=r"damaged at row 5 \(step 3 after 40"):
        open_trajectory(good)
