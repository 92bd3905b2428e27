"""Tests of :mod:`systems.learned`: a trained MLP as a numba-evaluated Hamiltonian.

The numba forward and backward passes are checked against torch autograd (float64) and
against central differences, for 1-3 hidden layers, both architectures and every
activation; the learned systems run in the compiled integrators (separable ones in
leapfrog, checked against a naive leapfrog on torch gradients; general ones in implicit
midpoint); a hand-built network reproduces a known closed-form H; model files round-trip
bit for bit and every kind of bad file is refused with a typed error. torch is used here
only, never by ``systems``.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import integrators
import systems
from systems import LearnedSystem, ModelFileError
from systems.network_kernels import ACTIVATIONS
from systems.network_kernels import learned_dHdp as _learned_dHdp
from systems.network_kernels import learned_dHdq as _learned_dHdq
from systems.network_kernels import learned_H as _learned_H

NO_INT, NO_FLOAT = np.zeros(0, dtype=np.int64), np.zeros(0)  # no workspace

torch = pytest.importorskip("torch")

HIDDEN = {1: [13], 2: [11, 17], 3: [9, 14, 6]}
REL = 1e-12  # numba vs autograd, relative to the largest value compared


class Sin(torch.nn.Module):
    def forward(self, x):
        return torch.sin(x)


def Softplus():
    """torch's softplus without its switch to the identity at z > 20 (a ~2e-9 kink): the
    learned system evaluates the smooth log(1 + e^z) everywhere."""
    return torch.nn.Softplus(threshold=60.0)


TORCH_ACT = {"tanh": torch.nn.Tanh, "softplus": Softplus, "sigmoid": torch.nn.Sigmoid, "sin": Sin}


def torch_mlp(n_in, hidden, activation, seed):
    """``nn.Sequential(Linear, act, ..., Linear(., 1))`` in float64 with weights large enough
    to drive every activation into its nonlinear range."""
    gen = torch.Generator().manual_seed(seed)
    mods, s = [], n_in
    for h in hidden:
        mods += [torch.nn.Linear(s, h), TORCH_ACT[activation]()]
        s = h
    mods.append(torch.nn.Linear(s, 1))
    net = torch.nn.Sequential(*mods).double()
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen, dtype=torch.float64) * 1.5 / math.sqrt(m.in_features))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=torch.float64) * 0.5)
    return net


def export(net):
    """``[(W, b), ...]`` as the training side hands them over."""
    return [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
            for m in net if isinstance(m, torch.nn.Linear)]


def build(kind, activation="tanh", depth=2, shape=(2, 1), seed=0, name="test-learned", **kwargs):
    """A LearnedSystem and the torch function ``H(q, p)`` it was exported from."""
    n = shape[0] * shape[1]
    if kind == "hamiltonian":
        net = torch_mlp(2 * n, HIDDEN[depth], activation, seed)
        sys_ = LearnedSystem(name, shape, {"H": export(net)}, activation=activation, **kwargs)
        return sys_, lambda q, p: net(torch.cat([q, p], dim=-1))[..., 0]
    T = torch_mlp(n, HIDDEN[depth], activation, seed)
    V = torch_mlp(n, HIDDEN[depth][::-1], activation, seed + 1000)
    sys_ = LearnedSystem(name, shape, {"T": export(T), "V": export(V)}, activation=activation, separable=True,
                         **kwargs)
    return sys_, lambda q, p: T(p)[..., 0] + V(q)[..., 0]


def autograd(H, q, p):
    """``H, dH/dq, dH/dp`` by torch autograd at the rows of ``q, p`` ``[M, n]``."""
    qt = torch.tensor(q, requires_grad=True)
    pt = torch.tensor(p, requires_grad=True)
    h = H(qt, pt)
    gq, gp = torch.autograd.grad(h.sum(), (qt, pt))
    return h.detach().numpy(), gq.numpy(), gp.numpy()


def random_states(n, count=8, seed=1, scale=1.5):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((count, n)), scale * rng.standard_normal((count, n))


def assert_close(found, ref, rel=REL):
    found, ref = np.asarray(found), np.asarray(ref)
    scale = float(np.max(np.abs(ref)))
    assert scale > 1e-6, "degenerate reference: the comparison would be empty"
    err = float(np.max(np.abs(found - ref)))
    assert err <= rel * scale, f"max error {err:.3e} > {rel:.0e} x {scale:.3e}"


def members(q, p):
    """``[1, n]`` C-contiguous float64 copies of one state."""
    return np.array(q, dtype=np.float64).reshape(1, -1), np.array(p, dtype=np.float64).reshape(1, -1)


@pytest.fixture
def registered():
    """Names registered by a test, removed afterwards so no other test sees them."""
    names = []
    yield names
    for name in names:
        if name in systems.registry:
            systems.registry.unregister(name)


# -- numba vs autograd and finite differences ------------------------------------------

@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("kind", ["hamiltonian", "separable"])
def test_matches_torch_autograd(kind, depth, activation):
    sys_, H = build(kind, activation, depth, seed=depth)
    q, p = random_states(sys_.ndof, seed=depth)
    h_ref, gq_ref, gp_ref = autograd(H, q, p)
    gq, gp = sys_.gradients(q, p)
    assert_close(sys_.energy(q, p), h_ref)
    assert_close(gq, gq_ref)
    assert_close(gp, gp_ref)
    # the kernels themselves, called as an integrator calls them, on one state
    out = np.empty(sys_.ndof)
    _learned_dHdq(q[0], p[0], sys_.params, NO_INT, NO_FLOAT, out)
    assert_close(out, gq_ref[0])
    _learned_dHdp(q[0], p[0], sys_.params, NO_INT, NO_FLOAT, out)
    assert_close(out, gp_ref[0])
    assert abs(_learned_H(q[0], p[0], sys_.params, NO_INT, NO_FLOAT) - h_ref[0]) <= REL * max(1.0, abs(h_ref[0]))


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", ["hamiltonian", "separable"])
def test_gradients_match_finite_differences(kind, activation):
    sys_, _ = build(kind, activation, depth=3, shape=(1, 2), seed=5)
    q, p = random_states(sys_.ndof, count=3, seed=9)
    gq, gp = sys_.gradients(q, p)
    n = sys_.ndof
    for m in range(q.shape[0]):
        y = np.concatenate([q[m], p[m]])
        fd = np.empty(2 * n)
        for j in range(2 * n):
            e = np.zeros(2 * n)
            e[j] = 1e-5 * max(1.0, abs(y[j]))
            fd[j] = (sys_.energy(y[:n] + e[:n], y[n:] + e[n:]) - sys_.energy(y[:n] - e[:n], y[n:] - e[n:])) / (2 * e[j])
        assert_close(np.concatenate([gq[m], gp[m]]), fd, rel=1e-7)


def test_wide_network_like_the_paper():
    """The HNN paper's 2 -> 200 -> 200 -> 1 tanh network, with ndof = 4."""
    net = torch_mlp(8, [200, 200], "tanh", seed=3)
    sys_ = LearnedSystem("wide", (2, 2), {"H": export(net)})
    q, p = random_states(4, count=4)
    h_ref, gq_ref, gp_ref = autograd(lambda q, p: net(torch.cat([q, p], -1))[..., 0], q, p)
    gq, gp = sys_.gradients(q, p)
    assert_close(sys_.energy(q, p), h_ref)
    assert_close(gq, gq_ref)
    assert_close(gp, gp_ref)


def test_no_hidden_layer_is_affine():
    W, b = np.array([[0.5, -2.0]]), np.array([0.25])
    sys_ = LearnedSystem("affine", (1, 1), {"H": [(W, b)]})
    assert sys_.energy([3.0], [1.0]) == 0.5 * 3.0 - 2.0 + 0.25
    gq, gp = sys_.gradients([3.0], [1.0])
    assert gq[0] == 0.5 and gp[0] == -2.0


def test_bias_none_means_no_bias():
    """The paper's last layer has no bias (``nn.Linear(200, 1, bias=False)``)."""
    net = torch_mlp(2, [7], "tanh", seed=1)
    layers = export(net)
    with torch.no_grad():
        net[-1].bias.zero_()
    sys_ = LearnedSystem("nobias", (1, 1), {"H": layers[:-1] + [(layers[-1][0], None)]})
    q, p = random_states(1, count=3)
    assert_close(sys_.energy(q, p), autograd(lambda q, p: net(torch.cat([q, p], -1))[..., 0], q, p)[0])


def test_kernels_refuse_a_state_of_the_wrong_length():
    sys_, _ = build("hamiltonian", shape=(1, 2))
    out = np.zeros(3)
    _learned_dHdq(np.zeros(3), np.zeros(3), sys_.params, NO_INT, NO_FLOAT, out)
    assert np.all(np.isnan(out))
    assert np.isnan(_learned_H(np.zeros(1), np.zeros(1), sys_.params, NO_INT, NO_FLOAT))


# -- a network that is a known Hamiltonian -------------------------------------------

def confining_layers(ndof, weight=1.0):
    """Hidden softplus units ``x_j`` and ``-x_j`` for every input, summed: the network is
    ``sum_j [softplus(x_j) + softplus(-x_j)] - 2 log 2 * ndof_in``, whose gradient is
    ``tanh(x_j / 2)`` (because ``sigmoid(x) - sigmoid(-x) = tanh(x / 2)``)."""
    eye = np.eye(ndof)
    W0 = np.concatenate([eye, -eye])
    return [(W0, np.zeros(2 * ndof)), (weight * np.ones((1, 2 * ndof)), np.array([-2.0 * math.log(2.0) * ndof * weight]))]


def test_hand_built_network_is_the_known_hamiltonian():
    """H(q, p) = sum over q and p of log(2 + 2 cosh x) - 2 log 2 ~ (q^2 + p^2) / 4, both ways."""
    full = LearnedSystem("known", (1, 2), {"H": confining_layers(4)}, activation="softplus")
    split = LearnedSystem("known-split", (1, 2), {"T": confining_layers(2), "V": confining_layers(2)},
                          activation="softplus", separable=True)
    q, p = random_states(2, count=5, scale=2.0)
    exact = np.sum(np.log(2.0 + 2.0 * np.cosh(q)), -1) + np.sum(np.log(2.0 + 2.0 * np.cosh(p)), -1) - 8 * math.log(2.0)
    for sys_ in (full, split):
        np.testing.assert_allclose(sys_.energy(q, p), exact, rtol=1e-14, atol=1e-14)
        gq, gp = sys_.gradients(q, p)
        np.testing.assert_allclose(gq, np.tanh(q / 2), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(gp, np.tanh(p / 2), rtol=1e-14, atol=1e-15)
        assert sys_.energy([0.0, 0.0], [0.0, 0.0]) == pytest.approx(0.0, abs=1e-15)
    # the two architectures give the same implicit-midpoint trajectory
    integ = integrators.ImplicitMidpoint(dt=0.1)
    (q1, p1), (q2, p2) = members(q[0], p[0]), members(q[0], p[0])
    assert integ.advance(full, q1, p1, 200).ok and integ.advance(split, q2, p2, 200).ok
    np.testing.assert_allclose(np.concatenate([q1, p1]), np.concatenate([q2, p2]), rtol=0, atol=1e-12)
    assert np.max(np.abs(q1 - q[0])) > 0.1  # it moved


# -- integrators ---------------------------------------------------------------------

def test_separable_runs_in_leapfrog_like_a_naive_leapfrog():
    sys_, H = build("separable", "tanh", depth=2, shape=(1, 2), seed=4)
    assert sys_.separable and sys_.kind == "separable"
    integrators.Leapfrog(dt=0.01).check_system(sys_)
    q0, p0 = random_states(2, count=1, seed=2, scale=0.5)
    q, p = members(q0, p0)
    dt, nsteps = 0.02, 50
    res = integrators.Leapfrog(dt=dt).advance(sys_, q, p, nsteps, every=nsteps)
    assert res.ok
    # kick-drift-kick with torch gradients
    qr, pr = q0.copy(), p0.copy()
    for _ in range(nsteps):
        pr = pr - 0.5 * dt * autograd(H, qr, pr)[1]
        qr = qr + dt * autograd(H, qr, pr)[2]
        pr = pr - 0.5 * dt * autograd(H, qr, pr)[1]
    assert np.max(np.abs(q - q0)) > 1e-3
    np.testing.assert_allclose(np.concatenate([q, p]), np.concatenate([qr, pr]), rtol=0, atol=1e-12)
    # kinetic and potential split with the convention T(0) = 0
    T, V = sys_.split_energy(q, p)
    np.testing.assert_allclose(T + V, sys_.energy(q, p), rtol=1e-14)
    assert sys_.split_energy(q, np.zeros_like(p))[0] == pytest.approx(0.0, abs=1e-14)
    obs = sys_.observables(q, p)
    np.testing.assert_allclose(obs["kinetic_energy"], T, rtol=1e-13, atol=1e-14)


def test_non_separable_refused_by_leapfrog_and_run_by_implicit_midpoint():
    sys_, _ = build("hamiltonian", "tanh", depth=2, shape=(1, 2), seed=6)
    assert not sys_.separable
    q, p = members(*random_states(2, count=1, scale=0.5))
    with pytest.raises(integrators.IncompatibleSystemError, match=r"not separable"):
        integrators.Leapfrog(dt=0.01).advance(sys_, q, p, 10)
    with pytest.raises(TypeError, match=r"not separable"):
        sys_.split_energy(q, p)
    q0, p0 = q.copy(), p.copy()
    res = integrators.ImplicitMidpoint(dt=0.01).advance(sys_, q, p, 100)
    assert res.ok and res.q.shape == (100, 1, 2)
    assert np.max(np.abs(q - q0)) > 1e-3
    assert abs(sys_.energy(q[0], p[0]) - sys_.energy(q0[0], p0[0])) < 1e-4  # O(dt^2)
    # time-symmetric: stepping back returns to the start
    integrators.ImplicitMidpoint(dt=0.01).advance(sys_, q, p, 100, backward=True)
    np.testing.assert_allclose(np.concatenate([q, p]), np.concatenate([q0, p0]), rtol=0, atol=1e-12)


def test_energy_bounded_over_ten_thousand_implicit_midpoint_steps():
    """A random softplus net plus confining units (so that the level sets are closed and the
    orbit stays in the trained-like region) keeps its own energy to O(dt^2), without drift."""
    rng = np.random.default_rng(7)
    n, width = 1, 12
    conf_W0, conf_b0 = confining_layers(2 * n, weight=1.0)[0]
    W0 = np.concatenate([rng.normal(size=(width, 2 * n)), conf_W0])
    b0 = np.concatenate([rng.normal(size=width), conf_b0])
    W1 = np.concatenate([0.1 * rng.normal(size=(1, width)), np.ones((1, 4 * n))], axis=1)
    sys_ = LearnedSystem("bounded", (1, 1), {"H": [(W0, b0), (W1, np.zeros(1))]}, activation="softplus")
    q, p = members([1.0], [0.0])
    res = integrators.ImplicitMidpoint(dt=0.05).advance(sys_, q, p, 10_000, every=10)
    assert res.ok
    e = sys_.energy(res.q[:, 0], res.p[:, 0])
    e0 = sys_.energy([1.0], [0.0])
    err = np.abs(e - e0)
    assert np.max(np.abs(res.q)) < 5 and np.max(np.abs(res.q)) > 0.5  # bounded, and it oscillates
    assert np.max(err) < 1e-3
    first, last = np.max(err[:100]), np.max(err[-100:])
    assert last < 2.0 * first + 1e-12  # no secular growth


def test_ensemble_members_are_independent_of_threads():
    """The parallel kernel (one scratch buffer per call) gives each member its serial result."""
    sys_, _ = build("hamiltonian", "sigmoid", depth=2, shape=(1, 1), seed=8)
    q0, p0 = random_states(1, count=4, seed=3, scale=0.5)
    qb, pb = q0.copy(), p0.copy()
    integ = integrators.ImplicitMidpoint(dt=0.05)
    assert integ.advance(sys_, qb, pb, 50).ok
    for m in range(4):
        q, p = members(q0[m], p0[m])
        assert integ.advance(sys_, q, p, 50).ok
        assert np.array_equal(q[0], qb[m]) and np.array_equal(p[0], pb[m])


# -- identity, description, registry ----------------------------------------------------

def test_description_hash_and_immutability():
    sys_, _ = build("hamiltonian", name="desc-test", metadata={"seed": np.int64(3), "loss": np.float32(0.5)})
    desc = sys_.describe()
    assert desc == {"name": "desc-test", "parameters": {}, "model_hash": sys_.model_hash}
    assert json.loads(json.dumps(desc)) == desc
    assert len(sys_.model_hash) == 64 and int(sys_.model_hash, 16) >= 0
    assert sys_.metadata == {"seed": 3, "loss": 0.5}
    assert sys_.parameters == {} and sys_.shape == (2, 1) and sys_.ndof == 2
    assert sys_.hidden == {"H": (11, 17)} and sys_.sizes == {"H": (4, 11, 17, 1)}
    assert "desc-test" in repr(sys_) and sys_.model_hash[:12] in repr(sys_)
    with pytest.raises(ValueError, match=r"read-only"):
        sys_.params[10] = 0.0
    with pytest.raises(ValueError, match=r"read-only"):
        sys_.networks["H"][0][0][0, 0] = 0.0
    # one ulp in one weight changes the hash; the caller's arrays are copied
    layers = [(W.copy(), b.copy()) for W, b in sys_.networks["H"]]
    same = LearnedSystem("desc-test", (2, 1), {"H": layers}, metadata=sys_.metadata)
    assert same.model_hash == sys_.model_hash and same == sys_
    layers[1][0][0, 0] = np.nextafter(layers[1][0][0, 0], np.inf)
    assert same.model_hash == sys_.model_hash
    other = LearnedSystem("desc-test", (2, 1), {"H": layers}, metadata=sys_.metadata)
    assert other.model_hash != sys_.model_hash and other != sys_
    renamed = LearnedSystem("desc-test-2", (2, 1), {"H": sys_.networks["H"]}, metadata=sys_.metadata)
    assert renamed.model_hash != sys_.model_hash


def test_registry_round_trip(registered):
    sys_, _ = build("separable", name="spring-hnn-test", default_state=([0.5, 0.0], [0.0, 0.1]))
    registered.append(sys_.name)
    assert sys_.register() is sys_
    assert systems.get("spring-hnn-test") is sys_
    assert systems.get("Spring_HNN_test") is sys_
    assert systems.from_description(sys_.describe()) is sys_
    assert systems.registry.entry(sys_.name).separable is True
    assert sys_.register() is sys_  # the same model again: a no-op
    other, _ = build("separable", name="spring-hnn-test", seed=99)
    with pytest.raises(ValueError, match=r"already registered.*spring-hnn-test.*replace=True"):
        other.register()
    assert systems.get("spring-hnn-test") is sys_
    with pytest.raises(ValueError, match=r"model hash"):
        systems.get("spring-hnn-test", model_hash=other.model_hash)
    assert other.register(replace=True) is other and systems.get("spring-hnn-test") is other
    clash, _ = build("hamiltonian", name="pendulum")
    with pytest.raises(ValueError, match=r"'pendulum' is already registered"):
        clash.register()
    assert isinstance(systems.get("pendulum"), systems.Pendulum)


def test_runs_in_the_simulator_and_its_files_find_it(registered, tmp_path):
    """A trajectory file records ``describe()``; reopening it finds the registered model."""
    from hnnsim import Simulator, open_trajectory

    sys_, _ = build("hamiltonian", shape=(1, 1), name="sim-hnn-test", default_state=([0.3], [0.0]))
    registered.append(sys_.register().name)
    sim = Simulator(sys_, integrators.ImplicitMidpoint(dt=0.01))
    out = tmp_path / "run.h5"
    sim.run(steps=20, every=5, out=out)
    assert sim.step == 20 and np.all(np.isfinite(sim.q))
    traj = open_trajectory(out)
    assert traj.system is sys_
    np.testing.assert_array_equal(np.asarray(traj.q)[-1].reshape(-1), sim.q.reshape(-1))


def test_a_file_refuses_a_different_model_under_its_name(registered, tmp_path):
    """The file records the model hash: another model registered under the same name is not
    silently used to reopen or continue it."""
    from hnnsim import Simulator, TrajectoryError, open_trajectory

    first, _ = build("hamiltonian", shape=(1, 1), name="swap-hnn-test", seed=0, default_state=([0.3], [0.0]))
    registered.append(first.register().name)
    out = tmp_path / "run.h5"
    Simulator(first, integrators.ImplicitMidpoint(dt=0.01)).run(steps=10, every=5, out=out)
    other, _ = build("hamiltonian", shape=(1, 1), name="swap-hnn-test", seed=1, default_state=([0.3], [0.0]))
    other.register(replace=True)
    with pytest.raises((TrajectoryError, ValueError), match=r"hash"):
        open_trajectory(out)
    with pytest.raises((TrajectoryError, ValueError), match=r"hash"):
        Simulator.resume(out)


# -- model files ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["hamiltonian", "separable"])
def test_save_load_round_trip_is_bit_identical(kind, tmp_path, registered):
    meta = {"data": ["spring-0.h5"], "seed": 0, "steps": 2000, "test_loss": np.float64(0.0123), "lr": 1e-3}
    sys_, _ = build(kind, "softplus", depth=3, shape=(2, 1), name=f"rt-{kind}", metadata=meta,
                    default_state=([[0.1], [0.2]], [[0.3], [-0.4]]), masses=[1.0, 2.5])
    path = tmp_path / "model.hnn"
    assert sys_.save(path) == str(path)
    assert path.exists() and not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
    back = LearnedSystem.load(path)
    assert back == sys_ and back.model_hash == sys_.model_hash and back is not sys_
    assert (back.name, back.shape, back.kind, back.activation, back.separable, back.sizes) == \
           (sys_.name, sys_.shape, sys_.kind, sys_.activation, sys_.separable, sys_.sizes)
    assert back.metadata == sys_.metadata and back.metadata["test_loss"] == 0.0123
    assert np.array_equal(back.params, sys_.params)
    assert np.array_equal(back.masses(), [1.0, 2.5])
    for a, b in zip(back.default_state(), sys_.default_state()):
        assert np.array_equal(a, b)
    q, p = random_states(2, count=16)
    assert np.array_equal(back.energy(q, p), sys_.energy(q, p))
    for a, b in zip(back.gradients(q, p), sys_.gradients(q, p)):
        assert np.array_equal(a, b)
    # systems.load registers it; loading the same file again is harmless
    registered.append(sys_.name)
    loaded = systems.load(path)
    assert systems.get(sys_.name) is loaded and systems.load(path) is loaded
    assert systems.load(path, register=False) is not loaded


def saved(tmp_path, **kwargs):
    sys_, _ = build("hamiltonian", name="file-test", **kwargs)
    path = tmp_path / "model.hnn"
    sys_.save(path)
    return sys_, path


def rewrite(path, out, change):
    """Copy the npz at ``path`` to ``out`` as a valid zip, after ``change(arrays)``."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    with open(out, "wb") as fh:
        np.savez(fh, **arrays)
    return out


def header_of(arrays):
    return json.loads(arrays["header"].tobytes())


def set_header(arrays, header):
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


def test_flipped_byte_is_refused(tmp_path):
    sys_, path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    weight = sys_.networks["H"][1][0].astype("<f8").tobytes()
    at = data.find(weight)
    assert at > 0
    data[at + 37] ^= 0x01
    bad = tmp_path / "flipped.hnn"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"flipped\.hnn: corrupt or modified file \(Bad CRC-32"):
        LearnedSystem.load(bad)


def test_modified_weight_with_consistent_zip_is_refused_by_the_hash(tmp_path):
    sys_, path = saved(tmp_path)

    def change(a):
        a["H.1.weight"] = a["H.1.weight"].copy()
        a["H.1.weight"][0, 0] += 1e-12
    with pytest.raises(ModelFileError, match=r"hash mismatch.*modified \(tampered or corrupted\)"):
        LearnedSystem.load(rewrite(path, tmp_path / "w.hnn", change))

    def change_header(a):
        h = header_of(a)
        h["activation"] = "sigmoid"
        set_header(a, h)
    with pytest.raises(ModelFileError, match=r"hash mismatch"):
        LearnedSystem.load(rewrite(path, tmp_path / "h.hnn", change_header))

    def change_metadata(a):
        h = header_of(a)
        h["metadata"] = {"seed": 1}
        set_header(a, h)
    with pytest.raises(ModelFileError, match=r"hash mismatch"):
        LearnedSystem.load(rewrite(path, tmp_path / "m.hnn", change_metadata))

    def drop(a):
        del a["H.2.bias"]
    with pytest.raises(ModelFileError, match=r"H\.2\.bias is missing"):
        LearnedSystem.load(rewrite(path, tmp_path / "d.hnn", drop))

    def reshape(a):
        a["H.1.weight"] = a["H.1.weight"][:, :-1].copy()
    with pytest.raises(ModelFileError, match=r"layer H\.1 has float64 \(17, 10\).*header says float64 \(17, 11\)"):
        LearnedSystem.load(rewrite(path, tmp_path / "s.hnn", reshape))
    assert LearnedSystem.load(rewrite(path, tmp_path / "same.hnn", lambda a: None)) == sys_


@pytest.mark.parametrize("keep", [0, 3, 100, 0.5, -22])
def test_truncated_file_is_refused(tmp_path, keep):
    _, path = saved(tmp_path)
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    bad = tmp_path / "cut.hnn"
    bad.write_bytes(data[:cut])
    with pytest.raises(ModelFileError, match=r"cut\.hnn: .*(empty \(truncated|truncated or corrupt|not an hnnsim)"):
        LearnedSystem.load(bad)


def test_wrong_format_and_version_are_refused(tmp_path):
    _, path = saved(tmp_path)

    def fmt(a):
        h = header_of(a)
        h["format"] = "something-else"
        set_header(a, h)
    with pytest.raises(ModelFileError, match=r"not an hnnsim model file: format is 'something-else'"):
        LearnedSystem.load(rewrite(path, tmp_path / "f.hnn", fmt))

    def version(a):
        h = header_of(a)
        h["version"] = 99
        set_header(a, h)
    with pytest.raises(ModelFileError, match=r"version 99 was written by a newer hnnsim.*reads version 1"):
        LearnedSystem.load(rewrite(path, tmp_path / "v.hnn", version))

    text = tmp_path / "notes.hnn"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match=r"not an hnnsim model file: it does not start with a zip signature"):
        LearnedSystem.load(text)
    npy = tmp_path / "array.hnn"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(ModelFileError, match=r"single \.npy array"):
        LearnedSystem.load(npy)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(2))
    with pytest.raises(ModelFileError, match=r"no header"):
        LearnedSystem.load(other)
    with pytest.raises(ModelFileError, match=r"cannot read model file"):
        LearnedSystem.load(tmp_path / "missing.hnn")


class _Marker:
    """Unpickling this creates a file: the test fails if the loader ever unpickles."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_bearing_files_are_refused_without_executing_them(tmp_path):
    marker = str(tmp_path / "executed")
    raw = tmp_path / "raw.hnn"
    raw.write_bytes(pickle.dumps(_Marker(marker)))
    with pytest.raises(ModelFileError, match=r"is a Python pickle.*never contain pickles"):
        LearnedSystem.load(raw)

    pt = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "m": _Marker(marker)}, pt)
    with pytest.raises(ModelFileError, match=r"torch checkpoint.*data\.pkl.*never contain pickles"):
        LearnedSystem.load(pt)

    _, path = saved(tmp_path)

    def objects(a):
        a["H.0.bias"] = np.array([_Marker(marker)], dtype=object)
    obj = tmp_path / "obj.hnn"
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    objects(arrays)
    with open(obj, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ModelFileError, match=r"H\.0\.bias\.npy is an object array \(pickled data\)"):
        LearnedSystem.load(obj)

    zipped = tmp_path / "zipped.hnn"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("header.npy", b"")
        zf.writestr("payload.pkl", pickle.dumps(_Marker(marker)))
    with pytest.raises(ModelFileError, match=r"payload\.pkl.*never contain pickles"):
        LearnedSystem.load(zipped)
    assert not os.path.exists(marker)


def test_systems_package_does_not_import_torch():
    code = "import sys, systems, integrators; assert 'torch' not in sys.modules, 'systems imported torch'"
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# -- validation -------------------------------------------------------------------------

def layers_for(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(b, a)), rng.normal(size=b)) for a, b in zip(sizes[:-1], sizes[1:])]


@pytest.mark.parametrize("kwargs,error,pattern", [
    ({"activation": "relu"}, ValueError, r"activation 'relu' is not allowed: relu is piecewise linear: its second "
                                         r"derivative is zero.*softplus is the smooth relu"),
    ({"activation": "ReLU"}, ValueError, r"second derivative"),
    ({"activation": "linear"}, ValueError, r"affine"),
    ({"activation": "swish"}, ValueError, r"unknown activation 'swish'; choose one of tanh, softplus, sigmoid, sin"),
    ({"activation": None}, TypeError, r"activation must be a name"),
    ({"shape": (0, 1)}, ValueError, r"shape must be \(N, D\) with positive integers.*found \(0, 1\)"),
    ({"shape": (1, 1, 1)}, ValueError, r"shape must be \(N, D\)"),
    ({"shape": (1.5, 1)}, ValueError, r"shape must be"),
    ({"name": ""}, TypeError, r"name must be a non-empty string"),
    ({"networks": {"T": layers_for([2, 3, 1]), "V": layers_for([2, 3, 1])}}, ValueError,
     r"networks has keys \['T', 'V'\], expected \['H'\].*or pass separable=True"),
    ({"networks": {"H": layers_for([4, 3, 1])}, "separable": True}, ValueError,
     r"expected \['T', 'V'\]: a separable H = T\(p\) \+ V\(q\) needs"),
    ({"networks": {"H": layers_for([3, 5, 1])}}, ValueError,
     r"layer 0 weight has shape \(5, 3\): it expects 3 inputs but receives the network input size 4 "
     r"\(\[q, p\] of 2 \* ndof = 2 \* 2\).*transpose"),
    ({"networks": {"H": layers_for([4, 5, 1])[:1] + layers_for([6, 1])}}, ValueError,
     r"layer 1 weight has shape \(1, 6\): it expects 6 inputs but receives the 5 outputs of layer 0"),
    ({"networks": {"H": layers_for([4, 5, 2])}}, ValueError,
     r"the last layer must have 1 output \(H is a scalar\), found 2"),
    ({"networks": {"H": []}}, TypeError, r"non-empty list of \(weight, bias\) pairs"),
    ({"networks": {"H": [(np.zeros((1, 4)), np.zeros(2))]}}, ValueError,
     r"layer 0 bias must have shape \(1,\) to match its weight \(1, 4\), found \(2,\)"),
    ({"networks": {"H": [(np.zeros(4), np.zeros(1))]}}, ValueError, r"weight must be 2-D \(out, in\)"),
    ({"networks": {"H": [(np.full((1, 4), np.nan), np.zeros(1))]}}, ValueError,
     r"layer 0 weight must be finite, found nan at index \(0, 0\)"),
    ({"networks": {"H": [(np.zeros((1, 4), dtype=np.int64), np.zeros(1))]}}, TypeError,
     r"must hold floating-point numbers, found dtype int64"),
    ({"networks": [("H", 1)]}, TypeError, r"networks must be a dict"),
    ({"metadata": {"path": Path("x")}}, ValueError, r"metadata must be JSON data"),
    ({"metadata": {"loss": float("nan")}}, ValueError, r"metadata must be JSON data.*NaN"),
    ({"default_state": ([0.0], [0.0])}, ValueError, r"default_state q0 must have shape \(2, 1\) or \(2,\), found \(1,\)"),
    ({"masses": [1.0, -1.0]}, ValueError, r"masses must be 2 finite numbers > 0"),
    ({"separable": "yes"}, TypeError, r"separable must be True or False"),
])
def test_validation_errors(kwargs, error, pattern):
    args = {"name": "bad", "shape": (2, 1), "networks": {"H": layers_for([4, 5, 1])}}
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        LearnedSystem(**args)


def test_float32_weights_are_converted_exactly():
    layers = [(W.astype(np.float32), b.astype(np.float32)) for W, b in layers_for([2, 5, 1])]
    sys_ = LearnedSystem("f32", (1, 1), {"H": layers})
    assert sys_.networks["H"][0][0].dtype == np.float64
    assert np.array_equal(sys_.networks["H"][0][0], layers[0][0].astype(np.float64))


def test_every_array_enters_the_model_hash(tmp_path):
    """Two models that differ in one array only (a weight, a bias, the default state, the
    masses) have different hashes, and changing any one stored array of a saved file, then
    rewriting it as a valid zip, is refused by the hash."""
    kwargs = dict(shape=(2, 1), name="hash-test", default_state=([[0.1], [0.2]], [[0.3], [-0.4]]),
                  masses=[1.0, 2.5])
    base, _ = build("hamiltonian", **kwargs)
    same, _ = build("hamiltonian", **kwargs)
    assert same.model_hash == base.model_hash
    for change in ({"default_state": ([[0.1], [0.2]], [[0.3], [-0.5]])},
                   {"default_state": ([[0.1], [0.25]], [[0.3], [-0.4]])},
                   {"masses": [1.0, 2.0]}):
        other, _ = build("hamiltonian", **{**kwargs, **change})
        assert other.model_hash != base.model_hash, f"{change} does not change the hash"
    path = tmp_path / "model.hnn"
    base.save(path)
    with np.load(path, allow_pickle=False) as f:
        names = [k for k in f.files if k != "header"]
    assert {"default_state.q", "default_state.p", "masses", "H.0.weight", "H.2.bias"} <= set(names)
    for name in names:
        def change(arrays, name=name):
            a = arrays[name].copy()
            a.flat[-1] += 0.125
            arrays[name] = a
        with pytest.raises(ModelFileError, match=r"hash mismatch"):
            LearnedSystem.load(rewrite(path, tmp_path / f"{name}.hnn", change))


def test_zip_bomb_is_refused_unread(tmp_path):
    """A small file with a member that inflates to 1 GiB is refused from the zip directory,
    before anything is decompressed (time and memory stay small)."""
    import tracemalloc
    import zipfile

    _, path = saved(tmp_path)
    bomb = tmp_path / "bomb.hnn"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            out.writestr(item.filename, src.read(item.filename))
        with out.open("H.9.weight.npy", "w", force_zip64=True) as big:
            chunk = bytes(2**24)
            for _ in range(64):  # 1 GiB of zeros, ~1 MB compressed
                big.write(chunk)
    assert bomb.stat().st_size < 5 * 2**20
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=r"compressed or declares \d+ bytes.*refused unread"):
        LearnedSystem.load(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


def test_model_files_are_readable_like_other_data_files(tmp_path):
    import stat

    sys_, path = saved(tmp_path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
