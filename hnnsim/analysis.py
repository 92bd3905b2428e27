"""Comparing a rollout with a reference trajectory: energy drift, coordinate error, plots.

Works on H5MD files alone (:func:`hnnsim.h5md.read_frames`), so a rollout of a learned
system can be analysed without its model registered. The *true* energy is evaluated when
the reference file's system is registered (an analytic one always is): along the rollout
and along the reference, as the HNN paper's energy MSE.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import numpy as np

from . import h5md
from .errors import InputError
from .extras import figure
from .trajectory import energy_drift


def _true_system(info: h5md.RunInfo):
    import systems

    try:
        return systems.from_description(info.system)
    except (KeyError, TypeError, ValueError):
        return None


def align(t_a: np.ndarray, t_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(ia, ib)`` of the frames whose times agree (to 1e-9 of the time scale)."""
    t_a, t_b = np.asarray(t_a, dtype=np.float64), np.asarray(t_b, dtype=np.float64)
    if t_a.size == 0 or t_b.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    tol = 1e-9 * max(1.0, float(np.max(np.abs(t_a))), float(np.max(np.abs(t_b))))
    j = np.clip(np.searchsorted(t_b, t_a), 0, t_b.size - 1)
    jl = np.clip(j - 1, 0, t_b.size - 1)
    best = np.where(np.abs(t_b[jl] - t_a) < np.abs(t_b[j] - t_a), jl, j)
    ok = np.abs(t_b[best] - t_a) <= tol
    return np.flatnonzero(ok), best[ok]


def compare(rollout: Dict[str, Any] | str, reference: Optional[Dict[str, Any] | str] = None) -> Dict[str, Any]:
    """Metrics of a rollout, and against a reference when given.

    Parameters
    ----------
    rollout, reference : path or the dict of :func:`hnnsim.h5md.read_frames`

    Returns
    -------
    dict
        ``frames``, ``t`` (start, end), ``system``; ``drift``: :func:`energy_drift` of the
        rollout's own H (for a learned system, the learned H). With a reference:
        ``common`` (frames at matching times), ``mse_q``, ``mse_p``, ``mse`` (mean over
        frames and coordinates of the squared state error), ``max_error`` and
        ``final_error`` (Euclidean state error), ``true_system`` and, when the reference's
        system is registered, ``energy_mse`` (mean over frames of (H_true(rollout) -
        H_true(reference))^2, the HNN paper's metric) and ``true_drift`` (the true H along
        the rollout).
    """
    ro = h5md.read_frames(rollout) if isinstance(rollout, (str, os.PathLike)) else rollout
    F = int(ro["step"].shape[0])
    n = int(np.prod(ro["info"].shape))
    out: Dict[str, Any] = {"frames": F, "t": (float(ro["time"][0]), float(ro["time"][-1])) if F else None,
                           "system": ro["info"].system.get("name"), "integrator": ro["info"].integrator,
                           "drift": energy_drift(ro["time"], ro["energy"])}
    if reference is None:
        return out
    ref = h5md.read_frames(reference) if isinstance(reference, (str, os.PathLike)) else reference
    if tuple(ref["info"].shape) != tuple(ro["info"].shape):
        raise InputError(f"the reference has state shape {tuple(ref['info'].shape)}, the rollout "
                         f"{tuple(ro['info'].shape)}: they are not the same system")
    ia, ib = align(ro["time"], ref["time"])
    if ia.size == 0:
        raise InputError("the rollout and the reference have no frame at a common time; write them with the same "
                         "t0 and a common multiple of dt * every")
    q, p = ro["q"].reshape(F, n)[ia], ro["p"].reshape(F, n)[ia]
    Fr = int(ref["step"].shape[0])
    qr, pr = ref["q"].reshape(Fr, n)[ib], ref["p"].reshape(Fr, n)[ib]
    err = np.sqrt(np.sum((q - qr) ** 2 + (p - pr) ** 2, axis=1))
    out.update(common=int(ia.size), common_t=(float(ro["time"][ia[0]]), float(ro["time"][ia[-1]])),
               mse_q=float(np.mean((q - qr) ** 2)), mse_p=float(np.mean((p - pr) ** 2)),
               mse=float(np.mean(np.concatenate([(q - qr) ** 2, (p - pr) ** 2], axis=1))),
               max_error=float(err.max()), final_error=float(err[-1]),
               true_system=ref["info"].system.get("name"), error_t=ro["time"][ia], error=err)
    scale = max(1.0, float(np.max(np.abs(np.concatenate([qr[0], pr[0]])))))
    if err[0] > 1e-9 * scale:
        out["start_mismatch"] = float(err[0])  # the errors then measure the different starts, not the model
    truth = _true_system(ref["info"])
    if truth is not None and getattr(truth, "ndof", None) == n:
        Hro = truth.energy(q, p)
        Href = truth.energy(qr, pr)
        out.update(energy_mse=float(np.mean((Hro - Href) ** 2)), true_drift=energy_drift(ro["time"][ia], Hro),
                   true_energy_rollout=Hro, true_energy_reference=Href)
    return out


def report(metrics: Dict[str, Any], rollout_path: str = "", reference_path: str = "") -> str:
    """Human-readable lines for :func:`compare` output (what ``hnnsim analyze`` prints)."""
    d = metrics["drift"]
    integ = metrics.get("integrator") or {}
    lines = [f"rollout     {rollout_path}  (system {metrics['system']}, integrator {integ.get('name')} "
             f"{integ.get('parameters', {})}, {metrics['frames']} frames"
             + (f", t {metrics['t'][0]:.6g} .. {metrics['t'][1]:.6g})" if metrics["t"] else ")"),
             f"own energy  H0 = {d['H0']:.10g}, max |H - H0| = {d['max_abs']:.3e} (relative {d['max_rel']:.3e}), "
             f"drift slope {d['slope']:.3e} per unit time, final {d['final']:+.3e}"]
    if "common" in metrics:
        lines += [f"reference   {reference_path}  (system {metrics['true_system']}), {metrics['common']} common frames, "
                  f"t {metrics['common_t'][0]:.6g} .. {metrics['common_t'][1]:.6g}",
                  f"coordinates MSE q {metrics['mse_q']:.3e}, p {metrics['mse_p']:.3e}, state {metrics['mse']:.3e}; "
                  f"max |x - x_ref| {metrics['max_error']:.3e}, final {metrics['final_error']:.3e}"]
        if "start_mismatch" in metrics:
            lines.append(f"note        the rollout and the reference differ by {metrics['start_mismatch']:.3e} at their "
                         "first common frame: they do not start from one state, so these errors are not the model's "
                         "alone (roll out with --start REFERENCE)")
        if "energy_mse" in metrics:
            td = metrics["true_drift"]
            lines.append(f"true energy ({metrics['true_system']} H) MSE rollout vs reference {metrics['energy_mse']:.3e}; "
                         f"along the rollout max |H - H0| = {td['max_abs']:.3e}, slope {td['slope']:.3e}")
        else:
            lines.append(f"true energy not evaluated: the reference's system {metrics['true_system']!r} is not registered")
    return "\n".join(lines)


def plot(rollout: Dict[str, Any] | str, reference: Optional[Dict[str, Any] | str] = None, prefix: str = "rollout",
         metrics: Optional[Dict[str, Any]] = None, label: str = "rollout") -> List[str]:
    """Write ``<prefix>-phase.png`` (phase portrait of each degree of freedom, up to 3) and
    ``<prefix>-energy.png`` (own H - H0, and with a reference the true energy and the state
    error against time). Needs matplotlib (``hnnsim[plot]``). Returns the paths."""
    ro = h5md.read_frames(rollout) if isinstance(rollout, (str, os.PathLike)) else rollout
    ref = None
    if reference is not None:
        ref = h5md.read_frames(reference) if isinstance(reference, (str, os.PathLike)) else reference
    if metrics is None:
        metrics = compare(ro, ref)
    F = int(ro["step"].shape[0])
    n = int(np.prod(ro["info"].shape))
    shown = min(n, 3)
    fig = figure("analysis plots", figsize=(4.2 * shown, 4))
    axes = fig.subplots(1, shown, squeeze=False)
    for k in range(shown):
        ax = axes[0, k]
        if ref is not None:
            Fr = int(ref["step"].shape[0])
            ax.plot(ref["q"].reshape(Fr, n)[:, k], ref["p"].reshape(Fr, n)[:, k], "k-", lw=2.5, alpha=0.3,
                    label="reference")
        ax.plot(ro["q"].reshape(F, n)[:, k], ro["p"].reshape(F, n)[:, k], lw=0.9, label=label)
        ax.set_xlabel(f"q[{k}]")
        ax.set_ylabel(f"p[{k}]")
        ax.set_aspect("equal", adjustable="datalim")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    fig.suptitle("phase portrait")
    fig.tight_layout()
    paths = [f"{prefix}-phase.png"]
    fig.savefig(paths[0], dpi=110)

    panels = 2 if "error" in metrics else 1
    fig = figure("analysis plots", figsize=(7, 3.2 * panels))
    axes = fig.subplots(panels, 1, squeeze=False)
    ax = axes[0, 0]
    if np.all(np.isfinite(ro["energy"])):
        ax.plot(ro["time"], ro["energy"] - ro["energy"][0], lw=0.9, label=f"{label}: own H - H0")
    if "true_energy_rollout" in metrics:
        t = metrics["error_t"]
        ax.plot(t, metrics["true_energy_rollout"] - metrics["true_energy_reference"][0], lw=0.9,
                label=f"{label}: true H - H0")
        ax.plot(t, metrics["true_energy_reference"] - metrics["true_energy_reference"][0], "k--", lw=0.8,
                label="reference: true H - H0")
    ax.set_xlabel("time")
    ax.set_ylabel("energy error")
    ax.legend(fontsize=8)
    if panels == 2:
        ax = axes[1, 0]
        err = metrics["error"]
        pos = err > 0  # the shared initial state has no error: nothing to draw on a log axis
        ax.semilogy(metrics["error_t"][pos], err[pos], lw=0.9)
        ax.set_xlabel("time")
        ax.set_ylabel("|x - x_ref|")
    fig.tight_layout()
    paths.append(f"{prefix}-energy.png")
    fig.savefig(paths[1], dpi=110)
    return paths
