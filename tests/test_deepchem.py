"""hnnsim.deepchem.HNNModel: the DeepChem TorchModel contract, the proposal's promises, and
the checks of DeepChem's own HNN tests (overfit a few points; H nearly constant on an orbit)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

dc = pytest.importorskip("deepchem")
torch = pytest.importorskip("torch")

import integrators  # noqa: E402
import systems  # noqa: E402
from hnnsim import Simulator  # noqa: E402
from hnnsim.deepchem import (HNNModel, SeparableHNNModel, dataset_to_trajectory, trajectories_to_dataset,  # noqa: E402
                             trajectories_to_datasets)


def spring_data(n=256, seed=0):
    """States on several mass-spring orbits and their exact dx/dt (m = k = 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, size=(n, 2))
    y = np.stack([x[:, 1], -x[:, 0]], axis=1)
    return x, y


@pytest.fixture(scope="module")
def spring_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("springs")
    paths = []
    for i, r in enumerate((0.5, 1.0, 1.5, 0.8)):
        path = str(d / f"spring.{i}.h5")
        Simulator(systems.HarmonicOscillator(), integrators.Leapfrog(dt=0.05), q0=[r], p0=[0.0]).run(
            600, every=3, out=path)
        paths.append(path)
    return paths


def test_shapes_and_hamiltons_equations_float64():
    model = HNNModel(n_dof=2, hidden=16, layers=2, dtype="float64", seed=1, batch_size=8)
    X = np.random.default_rng(0).normal(size=(7, 4))
    dxdt = model.predict(dc.data.NumpyDataset(X))
    assert dxdt.shape == (7, 4) and dxdt.dtype == np.float64
    H = model.predict_hamiltonian(X)
    assert H.shape == (7,)
    # dx/dt = J grad H: dq/dt = dH/dp, dp/dt = -dH/dq, checked by central differences of H
    h = 1e-6
    grad = np.empty_like(X)
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        grad[:, j] = (model.predict_hamiltonian(X + e) - model.predict_hamiltonian(X - e)) / (2 * h)
    np.testing.assert_allclose(dxdt[:, :2], grad[:, 2:], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dxdt[:, 2:], -grad[:, :2], rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(model.predict_on_batch(X), dxdt)
    # the predicted field is symplectic-gradient: divergence-free (trace of its Jacobian is 0)
    x = torch.tensor(X[:1], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda z: model.model.time_derivative(z, create_graph=True)[0], x)[:, 0, :]
    assert abs(float(torch.trace(jac))) < 1e-12


def test_float64_is_not_cast_to_float32():
    model = HNNModel(n_dof=1, hidden=8, dtype="float64", batch_size=4)
    X, y = spring_data(8)
    inputs, labels, weights = model._prepare_batch(([X], [y], [np.ones((8, 1))]))
    assert inputs[0].dtype == torch.float64 and labels[0].dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in model.model.parameters())
    model.fit(dc.data.NumpyDataset(X, y), nb_epoch=1, checkpoint_interval=0)
    assert all(p.dtype == torch.float64 for p in model.model.parameters())
    f32 = HNNModel(n_dof=1, hidden=8, batch_size=4)
    assert f32._prepare_batch(([X], [y], [np.ones((8, 1))]))[0][0].dtype == torch.float32


def test_training_lowers_loss_and_reaches_every_layer():
    X, y = spring_data(128)
    ds = dc.data.NumpyDataset(X, y)
    model = HNNModel(n_dof=1, hidden=32, seed=0, batch_size=32, learning_rate=3e-3, log_frequency=10)
    before = [p.detach().clone() for p in model.model.parameters()]
    mse = dc.metrics.Metric(dc.metrics.mean_squared_error)
    start = model.evaluate(ds, [mse])["mean_squared_error"]
    losses = []
    model.fit(ds, nb_epoch=60, checkpoint_interval=0, all_losses=losses)
    end = model.evaluate(ds, [mse])["mean_squared_error"]
    assert end < 0.05 * start, (start, end)
    assert len(losses) == 24 and np.mean(losses[-5:]) < 0.1 * np.mean(losses[:5])
    for (name, p), p0 in zip(model.model.named_parameters(), before):
        assert not torch.equal(p.detach(), p0), f"{name} never moved: backprop did not reach it"


def test_overfits_a_handful_of_points():
    X, y = spring_data(5, seed=3)
    model = HNNModel(n_dof=1, hidden=32, seed=0, batch_size=5, learning_rate=1e-2)
    model.fit(dc.data.NumpyDataset(X, y), nb_epoch=400, checkpoint_interval=0)
    np.testing.assert_allclose(model.predict(dc.data.NumpyDataset(X)), y, atol=0.05)


def test_learned_energy_nearly_constant_along_an_orbit(spring_files):
    train = trajectories_to_dataset(spring_files)
    model = HNNModel(n_dof=1, hidden=64, seed=0, batch_size=64, learning_rate=3e-3)
    model.fit(train, nb_epoch=40, checkpoint_interval=0)
    theta = np.linspace(0, 2 * np.pi, 100)
    orbit = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # H = 0.5 on the whole circle
    wider = np.stack([1.4 * np.cos(theta), 1.4 * np.sin(theta)], axis=1)  # H = 0.98
    H = model.predict_hamiltonian(orbit)
    gap = np.mean(model.predict_hamiltonian(wider)) - np.mean(H)
    assert gap > 0.2  # the learned H separates the two orbits ...
    assert np.std(H) < 0.1 * gap  # ... and is nearly constant along each


def test_restore_gives_identical_predictions(tmp_path):
    X, y = spring_data(64)
    ds = dc.data.NumpyDataset(X, y)
    model = HNNModel(n_dof=1, hidden=16, seed=0, batch_size=16, model_dir=str(tmp_path))
    model.fit(ds, nb_epoch=3)
    other = HNNModel(n_dof=1, hidden=16, seed=5, batch_size=16, model_dir=str(tmp_path))
    assert not np.array_equal(other.predict(ds), model.predict(ds))
    other.restore()
    np.testing.assert_array_equal(other.predict(ds), model.predict(ds))


def test_callbacks_are_called():
    X, y = spring_data(32)
    calls = []
    model = HNNModel(n_dof=1, hidden=8, batch_size=8)
    model.fit(dc.data.NumpyDataset(X, y), nb_epoch=2, checkpoint_interval=0,
              callbacks=[lambda m, step: calls.append(step)])
    assert calls == list(range(1, 9))


def test_to_system_runs_in_the_simulator(spring_files):
    train, test = trajectories_to_datasets(spring_files, test_fraction=0.25)
    assert len(test) > 0 and len(train) == 3 * len(test)
    model = HNNModel(n_dof=1, hidden=32, seed=0, dtype="float64", batch_size=64)
    model.fit(train, nb_epoch=5, checkpoint_interval=0)
    system = model.to_system("spring-deepchem-test", shape=(1, 1), replace=True)
    assert systems.get("spring-deepchem-test") is system
    X = test.X[:20]
    dq, dp = system.time_derivative(X[:, :1], X[:, 1:])
    np.testing.assert_allclose(np.concatenate([dq, dp], axis=1), model.predict_derivatives(X), rtol=1e-10, atol=1e-12)
    traj = Simulator(system, integrators.ImplicitMidpoint(dt=0.05), q0=[1.0], p0=[0.0]).run(2000, every=10)
    drift = traj.energy_drift()
    assert drift["max_rel"] < 1e-2 and np.all(np.isfinite(traj.q))
    sep = SeparableHNNModel(n_dof=1, hidden=16, seed=0)
    sep.fit(train, nb_epoch=2, checkpoint_interval=0)
    sep_system = sep.to_system("spring-deepchem-sep-test", replace=True)
    assert sep_system.separable
    Simulator(sep_system, integrators.Leapfrog(dt=0.05), q0=[1.0], p0=[0.0]).run(100)


def test_dataset_round_trip_through_h5md(spring_files, tmp_path):
    ds = trajectories_to_dataset(spring_files[:1])
    t = np.arange(len(ds)) * 0.15
    path = dataset_to_trajectory(ds, tmp_path / "back.h5", t)
    again = trajectories_to_dataset([path])
    np.testing.assert_array_equal(again.X, ds.X)
    np.testing.assert_array_equal(again.y, ds.y)
    bare = dataset_to_trajectory(dc.data.NumpyDataset(ds.X), tmp_path / "states.h5", t)
    with pytest.warns(UserWarning, match="no derivatives"):
        fd = trajectories_to_dataset([bare])
    np.testing.assert_allclose(fd.y, ds.y[1:-1], atol=0.01)  # central differences, O(dt^2)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"n_dof must be a positive integer"):
        HNNModel(n_dof=0)
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64'"):
        HNNModel(n_dof=1, dtype="float16")
    model = HNNModel(n_dof=2, hidden=4)
    with pytest.raises(ValueError, match=r"states must have shape \[M, 4\].*got \(3, 2\)"):
        model.predict_hamiltonian(np.zeros((3, 2)))
    with pytest.raises(TypeError, match=r"HNNModel sets loss itself"):
        HNNModel(n_dof=1, loss=dc.models.losses.L1Loss())


def test_hnnsim_imports_without_deepchem():
    code = ("import sys; sys.modules['deepchem'] = None\n"
            "import hnnsim, hnnsim.learn\n"
            "try:\n    import hnnsim.deepchem\nexcept ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "ERR hnnsim.deepchem needs DeepChem" in out and "pip install 'hnnsim[deepchem]'" in out


def test_deepchem_import_is_quiet():
    out = subprocess.run([sys.executable, "-c", "import hnnsim.deepchem"], capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""


def test_docs_example_runs(tmp_path):
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "docs", "examples", "deepchem_spring.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
    assert float(lines["test MSE of dx/dt"]) < 0.01
    assert float(lines["energy MSE along the rollout (true H)"]) < 0.01
    assert (tmp_path / "rollout.h5").exists()
