"""The ``hnnsim`` command line: simulate, resume, info, list, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import integrators
import systems
from hnnsim import Simulator, open_trajectory
from hnnsim.cli import main


def test_simulate_then_info(tmp_path, capsys):
    out = str(tmp_path / "pend.h5")
    assert main(["simulate", "pendulum", "--integrator", "leapfrog", "--dt", "0.01", "--steps", "2000",
                 "--every", "10", "-o", out, "-q"]) == 0
    traj = open_trajectory(out)
    ref = Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01)).run(2000, every=10)
    np.testing.assert_array_equal(traj.q, ref.q)  # default state, same numbers as the API
    capsys.readouterr()
    assert main(["info", out]) == 0
    text = capsys.readouterr().out
    assert "pendulum" in text and '"length": 1.0' in text and "leapfrog" in text
    assert "frames      201  (every 10 steps)" in text
    assert "max |H - H0|" in text and "checkpoint  step 2000" in text


def test_parameters_initial_state_and_resume(tmp_path):
    out = str(tmp_path / "p2.h5")
    assert main(["simulate", "pendulum", "--param", "length=2.0", "--q0", "0.5", "--p0", "0.1", "--dt", "0.02",
                 "--steps", "300", "--every", "3", "-o", out, "-q"]) == 0
    assert main(["simulate", "--resume", out, "--steps", "300", "-q"]) == 0
    traj = open_trajectory(out)
    ref = Simulator(systems.Pendulum(length=2.0), integrators.Leapfrog(dt=0.02), q0=[0.5], p0=[0.1]).run(600, every=3)
    np.testing.assert_array_equal(traj.step, ref.step)
    np.testing.assert_array_equal(traj.q, ref.q)


def test_non_separable_with_tao(tmp_path):
    out = str(tmp_path / "dp.h5")
    assert main(["simulate", "double-pendulum", "--integrator", "tao", "--integrator-param", "omega=50",
                 "--integrator-param", "order=4", "--dt", "0.001", "--steps", "200", "--every", "50", "-o", out, "-q"]) == 0
    traj = open_trajectory(out)
    assert traj.integrator == integrators.Tao(dt=0.001, omega=50.0, order=4)
    assert traj.q.shape == (5, 2, 1)


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    out = str(tmp_path / "x.h5")
    assert main(["simulate", "pendulm", "--steps", "10", "-o", out]) == 2
    assert "unknown system 'pendulm'. Did you mean 'pendulum'" in capsys.readouterr().err
    assert main(["simulate", "double-pendulum", "--steps", "10", "-o", out]) == 2
    assert "not separable" in capsys.readouterr().err
    assert main(["simulate", "pendulum", "--dt", "-1", "--steps", "10", "-o", out]) == 2
    assert "dt must be finite and > 0" in capsys.readouterr().err
    (tmp_path / "notes.h5").write_text("not hdf5")
    assert main(["info", str(tmp_path / "notes.h5")]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert main(["simulate", "pendulum", "--steps", "10", "-q"]) == 2
    assert "give an output file with -o FILE.h5" in capsys.readouterr().err
    assert main(["simulate", "pendulum", "--steps", "10", "--q0", "1.0", "-o", out]) == 2
    assert "give both --q0 and --p0" in capsys.readouterr().err
    assert main(["simulate", "pendulum", "--steps", "10", "-o", out, "-q"]) == 0
    assert main(["simulate", "pendulum", "--steps", "10", "-o", out, "-q"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_list_and_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "hnnsim", "list"], capture_output=True, text=True, check=True)
    from conftest import LEARNED_TEST_SYSTEMS  # registered in this process only

    test_only = {s.name for s in LEARNED_TEST_SYSTEMS}
    for name in [s for s in systems.available() if s not in test_only] + integrators.available():
        assert name in res.stdout
    assert "double-pendulum" in res.stdout and "non-separable" in res.stdout


def test_simulate_defaults_pinned(tmp_path):
    """Options left out take the documented defaults: leapfrog, dt 0.01, a frame every step,
    the system's default initial state (every default that changes what is written)."""
    out = str(tmp_path / "defaults.h5")
    assert main(["simulate", "pendulum", "--steps", "50", "-o", out, "-q"]) == 0
    traj = open_trajectory(out)
    assert traj.integrator == integrators.Leapfrog(dt=0.01)
    assert traj.system == systems.Pendulum()
    np.testing.assert_array_equal(traj.step, np.arange(51))
    q0, p0 = systems.Pendulum().default_state()
    np.testing.assert_array_equal(traj.q[0], q0)
    np.testing.assert_array_equal(traj.p[0], p0)
    ref = Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0, p0).run(50, every=1)
    np.testing.assert_array_equal(traj.q, ref.q)
    # resume keeps the file's interval when --every is left out
    assert main(["simulate", "--resume", out, "--steps", "7", "-q"]) == 0
    np.testing.assert_array_equal(open_trajectory(out).step, np.arange(58))


def test_resume_refuses_options_that_contradict_the_file(tmp_path, capsys):
    out = str(tmp_path / "r.h5")
    assert main(["simulate", "pendulum", "--steps", "100", "--every", "10", "-o", out, "-q"]) == 0
    before = open_trajectory(out)
    for extra in (["pendulum"], ["--dt", "0.02"], ["--integrator", "yoshida4"], ["--every", "5"],
                  ["-o", str(tmp_path / "other.h5")], ["--param", "length=2"], ["--q0", "1", "--p0", "0"]):
        capsys.readouterr()
        assert main(["simulate", *extra, "--resume", out, "--steps", "100", "-q"]) == 2
        err = capsys.readouterr().err
        assert "--resume continues" in err and "drop" in err, (extra, err)
    np.testing.assert_array_equal(open_trajectory(out).step, before.step)
    assert not (tmp_path / "other.h5").exists()
    assert main(["simulate", "--resume", out, "--steps", "100", "-q"]) == 0
    np.testing.assert_array_equal(open_trajectory(out).step, np.arange(0, 201, 10))


def test_energy_error_warning_on_the_command_line(tmp_path, capsys):
    out = str(tmp_path / "bad.h5")
    assert main(["simulate", "pendulum", "--dt", "0.9", "--q0", "3.0", "--p0", "0", "--steps", "200", "-o", out,
                 "-q"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("hnnsim: warning: the relative energy error reached") and "reduce dt" in err
    assert main(["simulate", "pendulum", "--dt", "0.9", "--q0", "3.0", "--p0", "0", "--steps", "200", "-o",
                 str(tmp_path / "b2.h5"), "-q", "--energy-tolerance", "none"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["simulate", "pendulum", "--steps", "200", "-o", str(tmp_path / "ok.h5"), "-q"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_interrupt_messages_say_what_was_left(tmp_path, capsys, monkeypatch):
    """Ctrl-C during a run: the message names the file, its checkpoint and how to continue;
    before any file exists, it says nothing was written."""
    from hnnsim import simulator

    out = str(tmp_path / "i.h5")
    calls = {"n": 0}
    real = Simulator.irun

    def interrupted_irun(self, *a, **k):
        for frames in real(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            yield frames
    monkeypatch.setattr(simulator.Simulator, "irun", interrupted_irun)
    assert main(["simulate", "pendulum", "--steps", "100000", "--every", "10", "-o", out, "-q"]) == 130
    err = capsys.readouterr().err
    assert f"{out} holds every completed frame and a checkpoint at step" in err
    assert f"hnnsim simulate --resume {out}" in err

    def interrupted_early(self, *a, **k):
        raise KeyboardInterrupt
        yield
    monkeypatch.setattr(simulator.Simulator, "irun", interrupted_early)
    missing = str(tmp_path / "never.h5")
    assert main(["simulate", "pendulum", "--steps", "10", "-o", missing, "-q"]) == 130
    assert f"nothing was written ({missing} was not created yet)" in capsys.readouterr().err
