"""Learned-Hamiltonian workloads for ``benchmarks.compare``: an MLP 2-200-200-1 (tanh,
float64, non-separable H(q, p)), timed per full gradient evaluation (dH/dq and dH/dp at one
state), hnnsim inside an implicit-midpoint rollout against torch autograd
(``torch.autograd.grad(H.sum(), x)``) on the same weights.

* ``learned-2-200-200-1``: one member (batch 1); target hnnsim >= 12x faster.
* ``learned-2-200-200-1-b1000``: 1000 members (batch 1000); target >= 1.3x faster.

``benchmarks/compare.py`` registers them with one import line, placed after its own
``register(Workload(...))`` calls (this module uses ``register``, ``Workload``,
``Contender``, ``Unit`` and ``_set_numba_threads`` from it)::

    from benchmarks import learned_workloads  # noqa: E402,F401  (registers learned-2-200-200-1*)

Run as ``python -m benchmarks.compare`` the registry is ``__main__``'s: this module registers
into the compare module that is running (see :func:`_compare`), never into a second copy.

The hnnsim work is the number of gradient evaluations its rollout makes (per member and
step: the predictor plus every fixed-point iteration), counted untimed by replaying the
kernel's iteration on the same states with the fused member gradient (the same bits, so the
same iteration counts). torch evaluates the gradient of the batch ``TORCH_EVALS`` times.
Both use ``--threads`` threads (numba's pool; ``torch.set_num_threads``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict

import numpy as np


def _compare():
    """The running ``benchmarks.compare``: ``__main__`` when it was started as a script or
    with ``-m`` (importing it by name would make a second registry), else the module."""
    main = sys.modules.get("__main__")
    if all(hasattr(main, a) for a in ("WORKLOADS", "register", "Workload", "Contender", "Unit")):
        return main
    import benchmarks.compare as compare

    return compare


_c = _compare()
Contender, Unit, Workload, register, _set_numba_threads = (_c.Contender, _c.Unit, _c.Workload, _c.register,
                                                           _c._set_numba_threads)

US_PER_GRAD = Unit("us/grad-eval", True, 1e6)
SIZES = (2, 200, 200, 1)
DT = 0.01
STEPS = 10
TORCH_EVALS = {1: 200, 1000: 5}


def learned_system(seed: int = 0):
    """The benchmark network (scaled Gaussian weights) as a LearnedSystem, and its layers."""
    from systems import LearnedSystem

    rng = np.random.default_rng(seed)
    layers = [(rng.normal(size=(SIZES[k + 1], SIZES[k])) / np.sqrt(SIZES[k]), 0.1 * rng.normal(size=SIZES[k + 1]))
              for k in range(len(SIZES) - 1)]
    return LearnedSystem("bench-mlp-2-200-200-1", (1, 1), {"H": layers}), layers


def count_evaluations(system, q0, p0, steps, max_iter=100):
    """Gradient evaluations of an implicit-midpoint rollout of every member (the kernel's
    predictor and fixed-point iteration replayed with the fused member gradient)."""
    from systems.network_kernels import learned_grad

    eps = np.finfo(np.float64).eps
    e0, f0 = np.zeros(0, dtype=np.int64), np.zeros(0)
    gq, gp = np.empty(q0.shape[1]), np.empty(q0.shape[1])
    total = 0
    for b in range(q0.shape[0]):
        q, p = q0[b].copy(), p0[b].copy()
        for _ in range(steps):
            learned_grad(q, p, system.params, e0, f0, gq, gp)
            total += 1
            q1, p1 = q + DT * gp, p - DT * gq
            scale = max(1.0, float(np.max(np.abs(q))), float(np.max(np.abs(p))))
            prev = np.inf
            for _ in range(max_iter):
                learned_grad(0.5 * (q + q1), 0.5 * (p + p1), system.params, e0, f0, gq, gp)
                total += 1
                qn, pn = q + DT * gp, p - DT * gq
                delta = max(float(np.max(np.abs(qn - q1))), float(np.max(np.abs(pn - p1))))
                q1, p1 = qn, pn
                if delta == 0.0 or (delta >= prev and prev <= 1e3 * eps * scale):
                    break
                prev = delta
            q, p = q1, p1
    return total


def _build(batch: int, threads: int):
    rng = np.random.default_rng(1)
    q0, p0 = 0.5 * rng.normal(size=(batch, 1)), 0.5 * rng.normal(size=(batch, 1))
    system, layers = learned_system()
    evals = count_evaluations(system, q0, p0, STEPS)
    holder: Dict[str, Any] = {}

    def prep_hnnsim():
        import integrators

        integ = integrators.ImplicitMidpoint(dt=DT)
        _set_numba_threads(threads)
        integ.advance(system, q0.copy(), p0.copy(), 1)  # compile
        holder["integ"] = integ

    def run_hnnsim():
        _set_numba_threads(threads)
        q, p = q0.copy(), p0.copy()
        t0 = time.perf_counter()
        res = holder["integ"].advance(system, q, p, STEPS, every=STEPS)
        seconds = time.perf_counter() - t0
        if not res.ok:
            raise RuntimeError(f"rollout failed: status {res.status[:3].tolist()}")
        return {"seconds": seconds, "q": q.copy(), "p": p.copy()}

    def prep_torch():
        import torch

        torch.set_num_threads(threads)
        mods = []
        for k, (W, b) in enumerate(layers):
            lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(W))
                lin.bias.copy_(torch.tensor(b))
            mods.append(lin)
            if k < len(layers) - 1:
                mods.append(torch.nn.Tanh())
        holder.update(torch=torch, net=torch.nn.Sequential(*mods), x0=torch.tensor(np.concatenate([q0, p0], axis=1)))
        run_torch()

    def run_torch():
        torch, net, x0 = holder["torch"], holder["net"], holder["x0"]
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        for _ in range(TORCH_EVALS[batch]):
            x = x0.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(net(x).sum(), x)
        return {"seconds": time.perf_counter() - t0, "grad": g.numpy()}

    cs = [Contender("hnnsim", f"hnnsim ImplicitMidpoint rollout, {batch} member(s), {STEPS} steps "
                    f"({evals / (batch * STEPS):.1f} gradient evals per member-step)", run_hnnsim, work=evals,
                    threads=threads, packages=("numba", "numpy"), prepare=prep_hnnsim, is_hnnsim=True),
          Contender("torch", f"torch autograd.grad(H.sum(), x), batch {batch}", run_torch,
                    work=batch * TORCH_EVALS[batch], threads=threads, packages=("torch",), prepare=prep_torch)]

    def check(results):
        from systems.network_kernels import learned_grad

        out = {}
        if "torch" in results:
            g = results["torch"]["grad"]
            e0, f0 = np.zeros(0, dtype=np.int64), np.zeros(0)
            gq, gp = np.empty(1), np.empty(1)
            err = 0.0
            for b in range(min(batch, 50)):
                learned_grad(q0[b], p0[b], system.params, e0, f0, gq, gp)
                err = max(err, float(np.max(np.abs(np.concatenate([gq, gp]) - g[b]))))
            out["hnnsim"] = f"grad vs torch max |diff| {err:.1e}"
        return out

    return cs, check


register(Workload("learned-2-200-200-1", f"MLP 2-200-200-1 tanh float64, 1 member, implicit midpoint dt {DT}, "
                  f"{STEPS} steps; work = full gradient evaluations (dH/dq and dH/dp at one state)", US_PER_GRAD,
                  "torch", lambda quick, threads: _build(1, threads), target_ratio=1 / 12,
                  target_text=">= 12x torch autograd"))
register(Workload("learned-2-200-200-1-b1000", f"MLP 2-200-200-1 tanh float64, 1000 members, implicit midpoint "
                  f"dt {DT}, {STEPS} steps; work = full gradient evaluations", US_PER_GRAD, "torch",
                  lambda quick, threads: _build(1000, threads), target_ratio=1 / 1.3,
                  target_text=">= 1.3x torch autograd"))
