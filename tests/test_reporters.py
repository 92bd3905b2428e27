"""The reporter protocol: one way (simulator to reporter), a frozen run description, a
checkpoint hook on every reporter, per-reporter intervals, and resumable formats that need no
change to the simulator."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import integrators
import systems
from hnnsim import CallbackReporter, H5MDReporter, Simulator, open_trajectory
from hnnsim import h5md
from hnnsim.reporters import Reporter, ResumableReporter
from hnnsim.run import RunInfo, State


def pendulum_sim(**kw):
    return Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0], **kw)


class Recorder(Reporter):
    def __init__(self, interval=None):
        self.interval = interval
        self.calls = []
        self.steps = []

    def start(self, run, state, steps):
        self.calls.append(("start", state.step, steps))
        self.run = run
        self.first = state

    def report(self, frames, state):
        self.calls.append(("report", state.step))
        self.steps.extend(frames.step.tolist())

    def checkpoint(self, state):
        self.calls.append(("checkpoint", state.step))

    def finish(self, state, error=None):
        self.calls.append(("finish", state.step, error))


def test_lifecycle_run_description_and_read_only_state(tmp_path):
    rec = Recorder()
    pendulum_sim(reporters=[rec]).run(1000, every=10)
    assert rec.calls[0] == ("start", 0, 1000) and rec.calls[-1] == ("finish", 1000, None)
    kinds = [c[0] for c in rec.calls[1:-1]]
    # every block: the reports, then the checkpoint (never ahead of the frames)
    assert kinds[0] == "report" and kinds[-1] == "checkpoint"
    for a, b in zip(kinds, kinds[1:]):
        assert (a, b) != ("checkpoint", "checkpoint")
    assert rec.steps == list(range(0, 1001, 10))
    run = rec.run
    assert isinstance(run, RunInfo) and run.every == 10 and run.shape == (1, 1) and run.dt == 0.01
    assert run.system == systems.Pendulum().describe() and run.integrator["name"] == "leapfrog"
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.every = 5
    assert isinstance(rec.first, State) and rec.first.members == 1
    with pytest.raises(ValueError, match="read-only"):
        rec.first.q[0, 0] = 2.0


def test_each_reporter_gets_frames_on_its_own_interval(tmp_path):
    """OpenMM's per-reporter interval: the file every 10 steps, one reporter every 25, one
    every 4; the kernel records at their gcd and each gets only its own frames."""
    path = str(tmp_path / "i.h5")
    a, b, c = Recorder(interval=25), Recorder(interval=4), Recorder()
    seen = []
    sim = pendulum_sim(reporters=[a, b, c, CallbackReporter(lambda f: seen.extend(f.step.tolist()), interval=50)])
    traj = sim.run(1000, every=10, out=path)
    np.testing.assert_array_equal(traj.step, np.arange(0, 1001, 10))
    assert a.steps == list(range(0, 1001, 25))
    assert b.steps == list(range(0, 1001, 4))
    assert c.steps == list(range(0, 1001, 10))
    assert seen == list(range(0, 1001, 50))
    # the extra recording does not change the trajectory
    np.testing.assert_array_equal(traj.q, pendulum_sim().run(1000, every=10).q)
    mem = pendulum_sim(reporters=[Recorder(interval=3)]).run(100, every=10)
    np.testing.assert_array_equal(mem.step, np.arange(0, 101, 10))
    with pytest.raises(ValueError, match=r"Recorder.interval must be a positive integer or None, got 0"):
        pendulum_sim(reporters=[Recorder(interval=0)]).run(10)


class NpzReporter(ResumableReporter):
    """A second resumable format, written here in the test: frames and checkpoint in .npz
    files. Resuming it must need nothing from the simulator beyond the protocol."""

    @classmethod
    def read_checkpoint(cls, path):
        with np.load(path + ".ck.npz", allow_pickle=False) as f:
            info = RunInfo(system={"name": str(f["system"]), "parameters": {}},
                           integrator={"name": "leapfrog", "parameters": {"dt": float(f["dt"])}}, shape=(1, 1),
                           every=int(f["every"]), t0=0.0, dt=float(f["dt"]), n_aux=0, separable=True)
            state = State(step=int(f["step"]), time=float(f["step"]) * info.dt, q=f["q"], p=f["p"], aux=f["aux"])
        return info, state

    def trajectories(self, members):
        return [dict(np.load(self.path + ".frames.npz"))]

    def start(self, run, state, steps):
        self.run = run
        if self.append:
            with np.load(self.path + ".frames.npz") as f:
                self.frames = {k: list(f[k]) for k in f.files}
        else:
            self.frames = {"step": [], "q": []}
            self.checkpoint(state)
        self.append = True

    def report(self, frames, state):
        for s, q in zip(frames.step, frames.q[:, 0]):
            if not self.frames["step"] or s > self.frames["step"][-1]:
                self.frames["step"].append(s)
                self.frames["q"].append(q)

    def checkpoint(self, state):
        np.savez(self.path + ".frames.npz", step=np.array(self.frames["step"], dtype=np.int64),
                 q=np.array(self.frames["q"]).reshape(-1, 1))
        np.savez(self.path + ".ck.npz", system=self.run.system["name"], dt=self.run.dt, every=self.run.every,
                 step=state.step, q=state.q, p=state.p, aux=state.aux)


def test_a_second_resumable_format_needs_no_change_to_the_simulator(tmp_path):
    path = str(tmp_path / "run")
    pendulum_sim().run(1234, every=10, out=NpzReporter(path))
    resumed = Simulator.resume(path, format=NpzReporter)
    assert resumed.step == 1234
    out = resumed.run(2000 - 1234)
    ref = pendulum_sim().run(2000, every=10)
    np.testing.assert_array_equal(out["step"], ref.step)
    np.testing.assert_array_equal(out["q"], ref.q[:, 0, :])


def test_resume_reads_the_checkpoint_not_the_frames(tmp_path, monkeypatch):
    path = str(tmp_path / "r.h5")
    pendulum_sim().run(2000, every=10, out=path)

    def no_frames(*a, **k):
        raise AssertionError("resume read every frame")
    monkeypatch.setattr(h5md, "read_frames", no_frames)
    sim = Simulator.resume(path)
    assert sim.step == 2000
    monkeypatch.undo()
    sim.run(1000)
    np.testing.assert_array_equal(open_trajectory(path).q, pendulum_sim().run(3000, every=10).q)


def test_continuing_with_another_interval_or_system_is_refused(tmp_path):
    path = str(tmp_path / "c.h5")
    pendulum_sim().run(100, every=10, out=path)
    with pytest.raises(ValueError, match=r"records every 10 steps; continue it with every=10"):
        Simulator.resume(path).run(100, every=5)
    before = open_trajectory(path)
    other = Simulator(systems.Pendulum(length=2.0), integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0])
    other.step = 100
    with pytest.raises(ValueError, match=r"written by another system or integrator"):
        other.run(100, every=10, out=H5MDReporter(path, append=True))
    after = open_trajectory(path)
    np.testing.assert_array_equal(after.q, before.q)
    assert os.path.exists(path)
