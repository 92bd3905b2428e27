"""hnnsim.learn: data from H5MD files, finite differences, training, export to systems."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import integrators
import systems
from hnnsim import Simulator, h5md, learn

#: the HNN paper's mass-spring, H = q^2 + p^2
SPRING = systems.HarmonicOscillator(mass=0.5, k=2.0)


def _simulate(path, q0, p0, steps=300, every=10, dt=0.01, system=SPRING):
    Simulator(system, integrators.Yoshida4(dt=dt), [q0], [p0]).run(steps, every=every, out=str(path), overwrite=True)
    return str(path)


@pytest.fixture(scope="module")
def spring_files(tmp_path_factory):
    """12 mass-spring trajectories, t in [0, 3], 31 frames, radii in [0.2, 1]."""
    d = tmp_path_factory.mktemp("spring")
    rng = np.random.default_rng(1)
    paths = []
    for i in range(12):
        th, r = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 1.0)
        paths.append(_simulate(d / f"spring.{i}.h5", r * np.cos(th), r * np.sin(th)))
    return paths


@pytest.fixture(scope="module")
def spring_data(spring_files):
    return learn.load(spring_files, test_fraction=0.25, seed=0)


@pytest.fixture(scope="module")
def spring_fit(spring_data):
    return learn.fit(spring_data, model="hnn", hidden=32, steps=300, lr=3e-3, seed=0, eval_every=10)


# -- data -----------------------------------------------------------------------------

def test_load_splits_by_trajectory_with_exact_targets(spring_files, spring_data):
    d = spring_data
    assert d.shape == (1, 1) and d.ndof == 1 and d.name == "harmonic-oscillator"
    assert len(d.train_files) == 9 and len(d.test_files) == 3
    assert not set(d.train_files) & set(d.test_files)
    assert sorted(d.train_files + d.test_files) == sorted(spring_files)
    assert d.x.shape == (9 * 31, 2) and d.x_test.shape == (3 * 31, 2) and d.dxdt.shape == d.x.shape
    # dq/dt = dH/dp = 2p, dp/dt = -dH/dq = -2q: the file's velocity and force
    np.testing.assert_allclose(d.dxdt[:, 0], 2 * d.x[:, 1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(d.dxdt[:, 1], -2 * d.x[:, 0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(d.dxdt_test[:, 0], 2 * d.x_test[:, 1], rtol=0, atol=1e-14)
    # the split depends on the seed only
    again = learn.load(spring_files, test_fraction=0.25, seed=0)
    assert again.test_files == d.test_files
    np.testing.assert_array_equal(again.x, d.x)
    other = learn.load(spring_files, test_fraction=0.25, seed=5)
    assert other.test_files != d.test_files


def test_noise_goes_on_inputs_only(spring_files, spring_data):
    noisy = learn.load(spring_files, noise=0.1, test_fraction=0.25, seed=0)
    assert noisy.test_files == spring_data.test_files
    np.testing.assert_array_equal(noisy.dxdt, spring_data.dxdt)  # targets: those of the clean states
    diff = noisy.x - spring_data.x
    assert 0.08 < diff.std() < 0.12 and abs(diff.mean()) < 0.02
    assert noisy.describe()["noise"] == 0.1


def test_load_refuses_mixed_systems(tmp_path, spring_files):
    pend = _simulate(tmp_path / "pend.h5", 0.5, 0.0, system=systems.Pendulum())
    with pytest.raises(ValueError, match="one system"):
        learn.load([spring_files[0], pend])
    with pytest.raises(ValueError, match="derivatives must be one of"):
        learn.load(spring_files[:2], derivatives="backward")
    with pytest.raises(ValueError, match="test_fraction"):
        learn.load(spring_files[:2], test_fraction=1.0)


def test_finite_difference_orders(tmp_path):
    """Forward differences converge at order 1, central at order 2 in the frame spacing h."""
    errors = {"forward": [], "central": []}
    hs = []
    for every in (10, 20, 40, 80):
        path = _simulate(tmp_path / f"fd{every}.h5", 0.7, -0.3, steps=2400, every=every, dt=0.001)
        exact = learn.load(path, test_fraction=0.0, derivatives="exact")
        hs.append(every * 0.001)
        for scheme in errors:
            fd = learn.load(path, test_fraction=0.0, derivatives=scheme)
            # compare at the same frames: a FD target belongs to the state it is attached to
            idx = np.searchsorted(exact.trajectories[0].time, fd.trajectories[0].time)
            errors[scheme].append(np.max(np.abs(fd.dxdt - exact.dxdt[idx])))
    for scheme, order in (("forward", 1.0), ("central", 2.0)):
        slope = np.polyfit(np.log(hs), np.log(errors[scheme]), 1)[0]
        assert abs(slope - order) < 0.1, (scheme, slope, errors[scheme])
    assert learn.load(path, test_fraction=0.0, derivatives="central").n_train == 2400 // 80 + 1 - 2
    assert learn.load(path, test_fraction=0.0, derivatives="forward").n_train == 2400 // 80 + 1 - 1


def test_central_difference_uneven_spacing_is_second_order():
    rng = np.random.default_rng(0)
    slopes = []
    errs = []
    hs = (0.04, 0.02, 0.01)
    for h in hs:
        t = np.cumsum(h * rng.uniform(0.5, 1.5, 200))
        idx, d = learn.finite_difference(t, np.sin(t)[:, None], "central")
        errs.append(np.max(np.abs(d[:, 0] - np.cos(t[idx]))))
    slopes = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 1.8 < slopes < 2.3
    with pytest.raises(ValueError, match="increasing"):
        learn.finite_difference(np.array([0.0, 1.0, 1.0]), np.zeros((3, 1)))


# -- training ---------------------------------------------------------------------------

def test_fit_lowers_test_loss(spring_fit):
    h = spring_fit.history
    assert set(h) == {"step", "train_loss", "test_loss"}
    assert h["step"][0] == 0 and h["step"][-1] == 299 and len(h["step"]) == len(h["test_loss"])
    assert spring_fit.test_loss < 0.05, spring_fit.test_loss
    assert spring_fit.test_loss < h["test_loss"][0] / 10
    assert np.isfinite(spring_fit.train_stderr) and spring_fit.train_loss < 0.05
    pred = spring_fit.predict(spring_fit.data.x_test[:5])
    assert pred.shape == (5, 2) and pred.dtype == np.float64
    assert spring_fit.predict(spring_fit.data.x_test[0]).shape == (2,)


def test_fit_is_deterministic(spring_data):
    kw = dict(model="hnn", hidden=16, steps=40, lr=3e-3, eval_every=5)
    a = learn.fit(spring_data, seed=3, **kw)
    b = learn.fit(spring_data, seed=3, **kw)
    c = learn.fit(spring_data, seed=4, **kw)
    np.testing.assert_array_equal(a.history["train_loss"], b.history["train_loss"])
    np.testing.assert_array_equal(a.history["test_loss"], b.history["test_loss"])
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.model.parameters(), c.model.parameters()))
    # minibatches are seeded too
    m1 = learn.fit(spring_data, seed=3, batch_size=32, **kw)
    m2 = learn.fit(spring_data, seed=3, batch_size=32, **kw)
    np.testing.assert_array_equal(m1.history["train_loss"], m2.history["train_loss"])
    assert not np.array_equal(m1.history["train_loss"], a.history["train_loss"])


@pytest.mark.parametrize("model", ["hnn", "separable"])
def test_float64_training_and_export_agree_with_numba(spring_data, model):
    fit = learn.fit(spring_data, model=model, hidden=16, steps=30, seed=0, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in fit.model.parameters())
    assert fit.config["dtype"] == "float64"
    system = fit.to_system(name=f"test-spring-{model}-64", register=False)
    assert system.separable == (model == "separable")
    x = np.random.default_rng(2).normal(size=(50, 2))
    dq, dp = system.time_derivative(x[:, :1], x[:, 1:])
    np.testing.assert_allclose(np.hstack([dq, dp]), fit.predict(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(system.energy(x[:, :1], x[:, 1:]), fit.hamiltonian(x), rtol=0, atol=1e-12)


def test_float32_training_stays_float32(spring_data):
    fit = learn.fit(spring_data, model="baseline", hidden=8, steps=5)
    assert all(p.dtype == torch.float32 for p in fit.model.parameters())
    with pytest.raises(ValueError, match="dtype"):
        learn.fit(spring_data, steps=1, dtype=torch.float16)


def test_models_follow_the_layer_convention():
    net = learn.HNN(2, hidden=8, layers=3).net
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert net[-1].out_features == 1 and net[-1].bias is None
    W = net[2].weight.detach()
    np.testing.assert_allclose((W @ W.T).numpy(), np.eye(8), atol=1e-5)  # orthogonal init
    x = torch.randn(4, 4)
    dx = learn.HNN(2, hidden=8).time_derivative(x)
    assert dx.shape == (4, 4)
    assert learn.Baseline(2, hidden=8).time_derivative(x).shape == (4, 4)
    with pytest.raises(ValueError, match="model must be one of"):
        learn.build("lstm", 1)
    with pytest.raises(ValueError, match="activation"):
        learn.HNN(1, activation="relu")


def test_hnn_vector_field_is_symplectic_gradient():
    """dq/dt = dH/dp and dp/dt = -dH/dq, checked by finite differences of the model's H."""
    torch.manual_seed(0)
    model = learn.HNN(2, hidden=16).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    dx = model.time_derivative(x, create_graph=False)
    eps = 1e-6
    for j in range(4):
        e = torch.zeros(4, dtype=torch.float64)
        e[j] = eps
        dH = (model.hamiltonian(x + e) - model.hamiltonian(x - e)) / (2 * eps)
        col = dx[:, j + 2] if j < 2 else dx[:, j - 2]
        sign = -1.0 if j < 2 else 1.0
        torch.testing.assert_close(col.detach(), sign * dH.detach(), atol=1e-8, rtol=0)


# -- export and rollouts ---------------------------------------------------------------

def test_to_system_registers_and_round_trips(spring_fit, tmp_path):
    system = spring_fit.to_system(name="test-spring-hnn", replace=True)
    assert systems.get("test-spring-hnn") is system
    meta = system.metadata
    assert meta["training"]["steps"] == 300 and meta["training"]["lr"] == 3e-3 and meta["training"]["seed"] == 0
    assert meta["training"]["model"] == "hnn" and meta["training"]["hidden"] == 32
    assert sorted(meta["data"]["train_files"]) == sorted(spring_fit.data.train_files)
    assert meta["final"]["test_loss"] == pytest.approx(spring_fit.test_loss)
    json.dumps(meta, allow_nan=False)
    path = system.save(tmp_path / "spring.hnn")
    back = systems.load(path, register=False)
    x = np.random.default_rng(0).normal(size=(20, 2))
    np.testing.assert_array_equal(back.energy(x[:, :1], x[:, 1:]), system.energy(x[:, :1], x[:, 1:]))
    # float32 weights exported exactly as float64: numba agrees with torch to float32 rounding
    dq, dp = system.time_derivative(x[:, :1], x[:, 1:])
    np.testing.assert_allclose(np.hstack([dq, dp]), spring_fit.predict(x), atol=1e-5)
    q0, p0 = system.default_state()
    assert q0.shape == (1, 1) and p0.shape == (1, 1)


def test_baseline_cannot_become_a_system(spring_data):
    fit = learn.fit(spring_data, model="baseline", hidden=16, steps=200, lr=3e-3)
    with pytest.raises(TypeError, match="not J grad H of any scalar H.*rollout"):
        fit.to_system("nope")
    with pytest.raises(TypeError, match="baseline"):
        fit.hamiltonian(spring_data.x[:2])
    # but it rolls out, batched fixed-step RK4 and adaptive RK45 agreeing
    x0 = spring_data.x_test[[0, 31]]
    t = np.linspace(0, 2, 21)
    a = fit.rollout(x0, t, method="RK4", substeps=20)
    b = fit.rollout(x0, t, method="RK45", rtol=1e-10, atol=1e-10)
    assert a.shape == (21, 2, 2)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(a[0], x0)


def test_learned_spring_energy_bounded_over_1e4_steps(spring_fit):
    """A symplectic integrator keeps the learned H bounded (no drift) along 10^4 steps."""
    system = spring_fit.to_system(name="test-spring-hnn-energy", register=False)
    traj = Simulator(system, integrators.ImplicitMidpoint(dt=0.05), q0=[0.6], p0=[0.2]).run(10_000, every=10)
    H = traj.energy
    dH = np.abs(H - H[0])
    assert np.all(np.isfinite(H))
    assert dH.max() < 1e-3 * abs(H[0]), dH.max() / abs(H[0])
    half = len(H) // 2
    assert dH[half:].max() < 2 * dH[:half].max() + 1e-12  # bounded, not growing
    assert abs(traj.energy_drift()["slope"]) * traj.t[-1] < 1e-4 * abs(H[0])
    # and it moves like a spring: the true energy q^2 + p^2 stays close to its start
    true_H = SPRING.energy(traj.q, traj.p)
    assert np.max(np.abs(true_H - true_H[0])) < 0.1 * true_H[0]


def test_separable_learned_spring_runs_with_leapfrog(spring_data):
    fit = learn.fit(spring_data, model="separable", hidden=16, steps=200, lr=3e-3)
    system = fit.to_system(name="test-spring-sep", register=False)
    assert system.separable
    traj = Simulator(system, integrators.Leapfrog(dt=0.05), q0=[0.6], p0=[0.2]).run(10_000, every=10)
    d = np.abs(traj.energy - traj.energy[0])
    assert d.max() < 1e-2 * abs(traj.energy[0])


# -- measured data: Schmidt & Lipson ----------------------------------------------------

def _write_lipson(path, trials=(1,), rows=90, header="% o v"):
    lines = [header]
    omega, amp = 2.4, 0.8
    for k in trials:
        t = 5.0 + np.arange(rows) / 6.0
        angle = amp * k * np.cos(omega * t)
        vel = -amp * k * omega * np.sin(omega * t)
        lines += [f"{k} {float(a)!r} {float(b)!r} {float(c)!r}" for a, b, c in zip(t, angle, vel)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_schmidt_lipson_round_trip(tmp_path):
    src = _write_lipson(tmp_path / "real_pend_h_1.txt")
    m = learn.read_schmidt_lipson(src)
    assert len(m) == 90 and m.columns == ["o", "v"] and m.trials == [1]
    np.testing.assert_allclose(m.time, 5.0 + np.arange(90) / 6.0, rtol=0, atol=0)
    [out] = learn.schmidt_lipson_to_h5md(src, tmp_path / "real.h5")
    frames = h5md.read_frames(out)
    np.testing.assert_array_equal(frames["time"], m.time)
    np.testing.assert_array_equal(frames["q"][:, 0, 0], m.angle)
    np.testing.assert_array_equal(frames["p"][:, 0, 0], m.velocity)
    np.testing.assert_array_equal(frames["step"], np.arange(90))
    assert np.all(np.isnan(frames["velocity"])) and np.all(np.isnan(frames["force"]))
    assert frames["info"].extra["derivatives"] == "none" and frames["info"].extra["trial"] == 1
    # no derivatives in the file: "exact" falls back to central differences, with a warning
    with pytest.warns(UserWarning, match="central finite differences"):
        data = learn.load(out, test_fraction=0.2)
    assert data.split == "time" and data.derivatives == "central"
    assert data.n_train == 70 and data.n_test == 18  # 88 central-difference frames, first 80% train
    t = data.trajectories[0].time
    exact = np.stack([-0.8 * 2.4 * np.sin(2.4 * t), -0.8 * 2.4 ** 2 * np.cos(2.4 * t)], axis=1)
    np.testing.assert_allclose(np.concatenate([data.dxdt, data.dxdt_test]), exact, atol=0.15)
    fwd = learn.load(out, test_fraction=0.2, derivatives="forward")
    assert fwd.n_train + fwd.n_test == 89
    # train on it
    fit = learn.fit(data, model="hnn", hidden=16, steps=20)
    assert np.isfinite(fit.test_loss)


def test_schmidt_lipson_several_trials_and_errors(tmp_path):
    src = _write_lipson(tmp_path / "two.txt", trials=(1, 2), rows=20)
    paths = learn.schmidt_lipson_to_h5md(src, tmp_path / "two.h5")
    assert [os.path.basename(p) for p in paths] == ["two.trial1.h5", "two.trial2.h5"]
    assert h5md.read_frames(paths[1])["q"].shape == (20, 1, 1)
    with pytest.raises(ValueError, match="no trial"):
        learn.schmidt_lipson_to_h5md(src, tmp_path / "x.h5", trials=[3])
    bad = tmp_path / "bad.txt"
    bad.write_text("1 5.0 0.1 0.2\n")
    with pytest.raises(ValueError, match="header line starting with '%'"):
        learn.read_schmidt_lipson(bad)
    bad.write_text("% o v\n1 5.0 0.1\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 4 columns"):
        learn.read_schmidt_lipson(bad)
    bad.write_text("% o v\n1 5.0 0.1 0.2\n1 4.0 0.1 0.2\n")
    with pytest.raises(ValueError, match="do not strictly increase"):
        learn.read_schmidt_lipson(bad)


def test_nan_derivatives_in_a_simulated_file_are_damage_not_measured_data(tmp_path):
    import h5py

    from hnnsim import Simulator
    from hnnsim.learn import read_trajectory

    path = str(tmp_path / "s.h5")
    Simulator(systems.HarmonicOscillator(), integrators.Leapfrog(dt=0.1), q0=[1.0], p0=[0.0]).run(100, out=path)
    with h5py.File(path, "r+") as f:
        f["particles/trajectory/velocity/value"][7, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values in 1 of 101 frames.*written by a simulation.*damaged"):
        read_trajectory(path)
    _, samples = read_trajectory(path, derivatives="central")
    assert samples.derivatives == "central"
