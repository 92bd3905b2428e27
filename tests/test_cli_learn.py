"""The learning commands: hnnsim train, rollout, analyze, info --model, demo."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import systems
from hnnsim import h5md
from hnnsim.cli import main

SPRING = ["--param", "mass=0.5", "--param", "k=2.0"]


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    """Four short mass-spring trajectories and a longer reference, written by `hnnsim simulate`."""
    d = tmp_path_factory.mktemp("cli")
    files = []
    for i, (q, p) in enumerate([(0.5, 0.0), (0.0, 0.7), (-0.3, 0.3), (0.8, -0.2)]):
        out = str(d / f"spring.{i}.h5")
        assert main(["simulate", "harmonic-oscillator", *SPRING, "--q0", str(q), "--p0", str(p), "--dt", "0.01",
                     "--steps", "300", "--every", "10", "-o", out, "-q"]) == 0
        files.append(out)
    truth = str(d / "truth.h5")
    assert main(["simulate", "harmonic-oscillator", *SPRING, "--q0", "0.6", "--p0", "0.1", "--dt", "0.01",
                 "--steps", "1000", "--every", "10", "-o", truth, "-q"]) == 0
    return d, files, truth


def test_train_rollout_analyze_round_trip(cli_files, capsys, monkeypatch):
    monkeypatch.setenv("HNNSIM_PROGRESS", "1")  # bars are drawn on terminals only; captured output is not one
    d, files, truth = cli_files
    model = str(d / "tiny.hnn")
    capsys.readouterr()
    assert main(["train", *files, "--model", "hnn", "--hidden", "16", "--steps", "200", "--lr", "3e-3",
                 "--seed", "1", "-o", model]) == 0
    out = capsys.readouterr()
    assert "train loss" in out.out and "wrote" in out.out and "sha256" in out.out
    assert "train hnn" in out.err and "test" in out.err  # the progress bar shows the loss
    system = systems.load(model, register=False)
    assert system.name == "tiny" and system.metadata["training"]["seed"] == 1
    assert system.metadata["training"]["steps"] == 200

    ro = str(d / "ro.h5")
    assert main(["rollout", model, "--integrator", "implicit-midpoint", "--dt", "0.05", "--steps", "200",
                 "--every", "2", "--start", truth, "-o", ro, "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    frames = h5md.read_frames(ro)
    assert frames["q"].shape == (101, 1, 1)
    assert frames["info"].system["name"] == "tiny"
    np.testing.assert_array_equal(frames["q"][0], h5md.read_frames(truth)["q"][0])

    assert main(["analyze", ro, "--reference", truth, "--plot"]) == 0
    text = capsys.readouterr().out
    assert "own energy" in text and "coordinates MSE" in text and "101 common frames" in text
    assert "true energy (harmonic-oscillator H) MSE" in text
    for png in (d / "ro-phase.png", d / "ro-energy.png"):
        assert png.exists() and png.stat().st_size > 1000
    assert main(["analyze", ro]) == 0  # without a reference: the drift only
    assert "own energy" in capsys.readouterr().out

    # info on a rollout of a learned system: register the model first
    assert main(["info", ro, "--model", model]) == 0
    assert "tiny" in capsys.readouterr().out


def test_rollout_with_q0_p0_and_separable_leapfrog(cli_files, capsys):
    d, files, _ = cli_files
    model = str(d / "sep.hnn")
    assert main(["train", *files, "--model", "separable", "--hidden", "8", "--steps", "20", "-o", model, "-q"]) == 0
    ro = str(d / "sep-ro.h5")
    assert main(["rollout", model, "--integrator", "leapfrog", "--dt", "0.05", "--steps", "100", "--q0", "0.5",
                 "--p0", "0", "-o", ro, "-q"]) == 0
    assert h5md.read_frames(ro)["q"].shape == (101, 1, 1)
    # a non-separable model refuses leapfrog, with the integrators that work
    hnn = str(d / "hnn-small.hnn")
    assert main(["train", *files, "--hidden", "8", "--steps", "5", "-o", hnn, "-q"]) == 0
    capsys.readouterr()
    assert main(["rollout", hnn, "--integrator", "leapfrog", "--steps", "10", "--q0", "0.5", "--p0", "0",
                 "-o", str(d / "bad.h5"), "-q"]) == 2
    assert "implicit-midpoint" in capsys.readouterr().err


def test_train_errors(cli_files, capsys):
    d, files, _ = cli_files
    assert main(["train", *files, "--model", "baseline", "-o", str(d / "base.hnn")]) == 2
    assert "no Hamiltonian" in capsys.readouterr().err
    existing = str(d / "exists.hnn")
    open(existing, "w").close()
    capsys.readouterr()
    assert main(["train", *files, "--steps", "1", "-o", existing, "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["rollout", existing, "--steps", "1", "-o", str(d / "x.h5")]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["analyze", str(d / "missing.h5")]) == 2


def test_demo_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--outdir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "energy MSE" in text and "coord MSE" in text
    for line in ("baseline   RK45", "hnn        implicit midpoint", "separable  leapfrog"):
        assert line in text
    for name in ("demo.png", "results.json", "spring-hnn.hnn", "spring-separable-hnn.hnn", "truth.0.h5",
                 "rollout-hnn.0.h5", "rollout-separable.1.h5", os.path.join("data", "spring.0.h5")):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {"baseline", "hnn-rk45", "hnn", "separable"}
    for r in results.values():
        assert np.isfinite(r["energy_mse"]) and np.isfinite(r["coordinate_mse"])
    assert results["hnn"]["own_energy_max_rel"] < 1e-2  # the learned H is conserved by implicit midpoint
    back = systems.load(str(out / "spring-hnn.hnn"), register=False)
    assert back.metadata["training"]["model"] == "hnn"


def test_experiment_spring_tiny_budget(tmp_path, capsys):
    assert main(["experiment", "spring", "--outdir", str(tmp_path), "--steps", "5", "--hidden", "8",
                 "--rollouts", "5", "-q"]) == 0
    text = capsys.readouterr().out
    assert "paper HNN" in text and "0.38 ± 0.1" in text and "implicit midpoint (hnnsim)" in text
    res = json.loads((tmp_path / "spring" / "results.json").read_text())
    assert set(res["energy"]) == {"baseline-rk45", "hnn-rk45", "hnn-midpoint"}
    assert res["n_train"] == res["n_test"] == 25 * 30
    assert (tmp_path / "spring" / "results.md").exists() and (tmp_path / "spring" / "spring-hnn.hnn").exists()


def test_train_and_rollout_defaults_pinned(cli_files, capsys):
    """`train` and `rollout` with their defaults left out: an HNN of two tanh hidden layers,
    named after the file; a rollout with implicit midpoint, dt 0.05, every step recorded,
    from the model's default state."""
    d, files, _ = cli_files
    model = str(d / "defaults-model.hnn")
    assert main(["train", *files, "--hidden", "8", "--steps", "3", "-o", model, "-q"]) == 0
    system = systems.load(model, register=False)
    assert system.name == "defaults-model" and not system.separable
    assert system.activation == "tanh" and system.sizes == {"H": (2, 8, 8, 1)}
    training = system.metadata["training"]
    assert training["steps"] == 3 and training["seed"] == 0
    assert (training["lr"], training["weight_decay"], training["batch_size"], training["dtype"]) == \
        (1e-3, 1e-4, None, "float32")
    ro = str(d / "defaults-rollout.h5")
    assert main(["rollout", model, "--steps", "20", "-o", ro, "-q"]) == 0
    capsys.readouterr()
    frames = h5md.read_frames(ro)
    info = frames["info"]
    assert info.integrator["name"] == "implicit-midpoint" and info.dt == 0.05 and info.every == 1
    np.testing.assert_array_equal(frames["step"], np.arange(21))
    q0, p0 = system.default_state()
    np.testing.assert_array_equal(frames["q"][0], q0)
    np.testing.assert_array_equal(frames["p"][0], p0)


def test_no_progress_bars_into_a_log(cli_files, capsys, monkeypatch):
    """Output that is not a terminal gets no bar redraws (a log file stays readable)."""
    monkeypatch.delenv("HNNSIM_PROGRESS", raising=False)
    d, files, _ = cli_files
    assert main(["train", *files, "--hidden", "8", "--steps", "30", "-o", str(d / "quiet.hnn")]) == 0
    assert main(["simulate", "pendulum", "--steps", "2000", "-o", str(d / "quiet.h5")]) == 0
    err = capsys.readouterr().err
    assert "it/s" not in err and "step/s" not in err and "\r" not in err


def test_demo_reruns_replace_their_files_and_refuse_foreign_folders(tmp_path, capsys):
    """A rerun of the demo into the same folder removes exactly the files the previous run
    wrote (a stale file of a larger run would otherwise mix in); a folder holding other files
    is refused before anything is written; files of the user's next to a run are kept."""
    out = str(tmp_path / "ig")
    assert main(["demo", "--integrators", "--quick", "--outdir", out]) == 0
    stale = os.path.join(out, "pendulum-stale.h5")
    with open(stale, "w") as fh:
        fh.write("x")
    manifest = json.load(open(os.path.join(out, ".hnnsim-run.json")))
    manifest["files"].append("pendulum-stale.h5")  # as if an earlier, larger run had written it
    json.dump(manifest, open(os.path.join(out, ".hnnsim-run.json"), "w"))
    mine = os.path.join(out, "my-notes.txt")
    with open(mine, "w") as fh:
        fh.write("keep me")
    assert main(["demo", "--integrators", "--quick", "--outdir", out]) == 0
    assert not os.path.exists(stale) and open(mine).read() == "keep me"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("...")
    capsys.readouterr()
    assert main(["demo", "--integrators", "--quick", "--outdir", str(foreign)]) == 2
    assert "is not empty" in capsys.readouterr().err and os.listdir(foreign) == ["thesis.tex"]


def test_train_interrupted_saves_the_model_so_far_under_its_own_name(cli_files, capsys, monkeypatch):
    from hnnsim import learn

    d, files, _ = cli_files
    out = str(d / "stopped.hnn")
    real = learn.fit

    def interrupting_fit(*a, **k):
        calls = {"n": 0}

        def callback(step, train, test):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
        return real(*a, **{**k, "callback": callback})
    monkeypatch.setattr(learn, "fit", interrupting_fit)
    assert main(["train", *files, "--hidden", "8", "--steps", "500", "--eval-every", "10", "-o", out, "-q"]) == 130
    err = capsys.readouterr().err
    partial = str(d / "stopped.interrupted-at-20.hnn")
    assert f"interrupted at training step 20 of 500: saved the model trained so far as {partial}" in err
    assert not os.path.exists(out)
    model = systems.load(partial, register=False)
    assert model.metadata["training"]["interrupted_at"] == 20


def test_analyze_says_when_rollout_and_reference_do_not_start_together(cli_files, capsys):
    d, files, truth = cli_files
    assert main(["analyze", files[0], "--reference", truth]) == 0  # two different orbits of the spring
    out = capsys.readouterr().out
    assert "do not start from one state" in out
    assert main(["analyze", truth, "--reference", truth]) == 0
    assert "do not start from one state" not in capsys.readouterr().out
