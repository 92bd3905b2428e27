"""Initial states and training trajectories for learning tasks: the HNN paper's samplers
(a ring in phase space; the two-body orbits) and one simulated trajectory per state."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ..simulator import Simulator


def ring_states(rng: np.random.Generator, n: int, radius) -> np.ndarray:
    """``n`` states ``[q, p]`` (shape ``[n, 2]``) at a random angle and a radius ~ U[radius]."""
    theta = rng.uniform(0.0, 2.0 * np.pi, n)
    r = rng.uniform(radius[0], radius[1], n)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def two_body_states(rng: np.random.Generator, n: int, radius, orbit_noise: float) -> np.ndarray:
    """The paper's two-body initial states, ``[n, 8]`` = (x1, y1, x2, y2, px1, py1, px2, py2).

    Body 1 at a random direction and radius r ~ U[radius]; body 2 mirrored through the
    origin; velocities of the circular orbit (speed 1/(2 sqrt r) for G = m = 1, separation
    2r), perpendicular to the radius, scaled by (1 + orbit_noise N(0, 1)); body 2 mirrored.
    """
    x = ring_states(rng, n, radius)  # body 1
    r = np.linalg.norm(x, axis=1, keepdims=True)
    v = np.stack([-x[:, 1], x[:, 0]], axis=1) / r * (0.5 / np.sqrt(r))
    v = v * (1.0 + orbit_noise * rng.standard_normal((n, 1)))
    return np.concatenate([x, -x, v, -v], axis=1)


def initial_states(cfg: Dict[str, Any], rng: np.random.Generator, n: int) -> np.ndarray:
    if "orbit_noise" in cfg:
        return two_body_states(rng, n, cfg["radius"], cfg["orbit_noise"])
    return ring_states(rng, n, cfg["radius"])


def simulate_state(system, integrator, x0: np.ndarray, steps: int, every: int, out: str | None = None) -> np.ndarray:
    """Simulate from the flat state ``x0`` = [q..., p...] (to the file ``out`` if given); the
    frames as ``[F, 2n]``."""
    n = x0.shape[0] // 2
    shape = tuple(system.state_shape())
    traj = Simulator(system, integrator, x0[:n].reshape(shape), x0[n:].reshape(shape)).run(
        steps, every=every, out=out, overwrite=True)
    return np.concatenate([traj.q.reshape(len(traj), n), traj.p.reshape(len(traj), n)], axis=1)
