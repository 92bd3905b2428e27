"""`hnnsim experiment two-body` and `hnnsim experiment real` on tiny budgets (the paper's budgets are documented
in docs/hnn-experiments.md, not run here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import integrators
import systems
from hnnsim import learn
from hnnsim.cli import main
from hnnsim.apps import experiment
from hnnsim.learn import sampling


def _check_results(res, scale_label, text):
    assert scale_label in text and "paper HNN" in text and "implicit midpoint (hnnsim)" in text
    assert set(res["models"]) == {"baseline", "hnn"}
    for kind in ("baseline", "hnn"):
        for split in ("train", "test"):
            mean, err = res["models"][kind][split]
            assert np.isfinite(mean) and np.isfinite(err) and mean > 0 and err >= 0
    assert set(res["energy"]) == {"baseline-rk45", "hnn-rk45", "hnn-midpoint"}
    for mean, err in res["energy"].values():
        assert np.isfinite(mean) and mean >= 0 and np.isfinite(err)


def test_two_body_initial_states_are_the_papers():
    rng = np.random.default_rng(0)
    x = sampling.two_body_states(rng, 200, (0.5, 1.5), 0.0)
    q, p = x[:, :4].reshape(-1, 2, 2), x[:, 4:].reshape(-1, 2, 2)
    r = np.linalg.norm(q[:, 0], axis=1)
    assert np.all((r >= 0.5) & (r <= 1.5))
    np.testing.assert_allclose(q[:, 1], -q[:, 0])       # body 2 mirrored
    np.testing.assert_allclose(p.sum(axis=1), 0, atol=1e-15)  # zero total momentum
    np.testing.assert_allclose(np.einsum("bi,bi->b", q[:, 0], p[:, 0]), 0, atol=1e-12)  # tangential
    np.testing.assert_allclose(np.linalg.norm(p[:, 0], axis=1), 0.5 / np.sqrt(r))  # circular speed
    # without orbit noise the orbit is circular: the separation stays 2 r
    tb = systems.get("two-body")
    traj = sampling.simulate_state(tb, integrators.Yoshida4(dt=0.01), x[0], 500, 50)
    sep = np.linalg.norm(traj[:, 0:2] - traj[:, 2:4], axis=1)
    np.testing.assert_allclose(sep, 2 * r[0], rtol=1e-8)
    # with the paper's 5% noise: near-circular, bound
    y = sampling.two_body_states(rng, 200, (0.5, 1.5), 0.05)
    assert np.all(tb.energy(y[:, :4], y[:, 4:]) < 0)


def test_experiment_two_body_quick(tmp_path, capsys):
    assert main(["experiment", "two-body", "--quick", "--trajectories", "8", "--steps", "60", "--hidden", "16",
                 "--rollouts", "3", "--outdir", str(tmp_path), "-q"]) == 0
    assert "experiment-two-body-hnn" in systems.available()  # the learned system was registered
    text = capsys.readouterr().out
    res = json.loads((tmp_path / "two-body" / "results.json").read_text())
    _check_results(res, "x 1e6", text)
    assert "6.3e4 ± 3e4" in text and "39 ± 5" in text
    assert res["trajectories"] == 8 and res["rollouts"] == 3 and res["batch_size"] == 200 and res["quick"]
    assert res["n_train"] + res["n_test"] == 8 * 50 and res["n_test"] == 2 * 50  # 20% of the trajectories
    model = tmp_path / "two-body" / "two-body-hnn.hnn"
    back = systems.load(str(model), register=False)
    assert tuple(back.state_shape()) == (2, 2)
    assert (tmp_path / "two-body" / "results.md").exists()
    assert (tmp_path / "two-body" / "data" / "two-body.7.h5").exists()


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("real") / "synthetic_pend.txt")
    return experiment.write_synthetic_pendulum(path, seconds=15.0, interval=0.05, noise=1e-3, seed=0)


def test_synthetic_file_is_in_the_schmidt_lipson_format(synthetic_file):
    m = learn.read_schmidt_lipson(synthetic_file)
    assert m.columns == ["o", "v"] and m.trials == [1] and len(m) == 301
    np.testing.assert_allclose(np.diff(m.time), 0.05, atol=1e-9)
    assert abs(m.angle[0] - 1.0) < 0.01 and np.max(np.abs(m.angle)) <= 1.01


def test_experiment_real_on_a_synthetic_file(synthetic_file, tmp_path, capsys):
    assert main(["experiment", "real", "--data", synthetic_file, "--quick", "--steps", "200",
                 "--outdir", str(tmp_path), "-q"]) == 0
    assert "experiment-real-hnn" in systems.available()
    text = capsys.readouterr().out
    res = json.loads((tmp_path / "real" / "results.json").read_text())
    _check_results(res, "x 1e3", text)
    assert "390 ± 69" in text and "first 80% of the series trains" in text
    # 301 rows, 80/20 in time, forward differences drop the last frame
    assert res["n_train"] == 240 and res["n_test"] == 60
    assert abs(res["energy_a"] - 9.81) < 0.5  # the fitted g/l of the synthetic pendulum
    # even at this budget the HNN's rollouts keep the energy better than the baseline's (seeds 0-5: 3-5x)
    e = res["energy"]
    assert e["hnn-midpoint"][0] < e["baseline-rk45"][0] and e["hnn-rk45"][0] < e["baseline-rk45"][0]
    assert (tmp_path / "real" / "real-hnn.hnn").exists() and (tmp_path / "real" / "real-pendulum.h5").exists()


def test_experiment_real_needs_the_file(tmp_path, capsys):
    assert main(["experiment", "real", "--outdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "real_pend_h_1.txt" in err and "Schmidt & Lipson" in err and "not shipped" in err and "--data" in err
    assert main(["experiment", "real", "--data", str(tmp_path / "missing.txt"), "--outdir", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["experiment", "spring", "--data", "x.txt"]) == 2
    assert "hnnsim: error: --data is for" in capsys.readouterr().err
