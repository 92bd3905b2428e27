"""Learned Hamiltonians: train HNNs on hnnsim trajectories and run them as systems.

>>> from hnnsim import Simulator, learn
>>> from integrators import ImplicitMidpoint
>>> data = learn.load(["spring.0.h5", "spring.1.h5", "spring.2.h5"])   # doctest: +SKIP
>>> fit = learn.fit(data, model="hnn", hidden=200, steps=2000, seed=0)    # doctest: +SKIP
>>> spring = fit.to_system(name="spring-hnn")                             # doctest: +SKIP
>>> traj = Simulator(spring, ImplicitMidpoint(dt=0.05), q0=[1.0], p0=[0.0]).run(steps=1000)  # doctest: +SKIP

Models: :class:`HNN` (H(q, p) from one MLP), :class:`SeparableHNN` (T(p) + V(q)),
:class:`Baseline` (dx/dt directly; not a Hamiltonian). Data: :func:`load` (H5MD files,
exact or finite-difference targets), :func:`read_schmidt_lipson` and
:func:`schmidt_lipson_to_h5md` (measured pendulum). Training: :func:`fit` ->
:class:`FitResult` (``history``, ``model``, ``predict``, ``to_system``, ``rollout``).
Analysis: :mod:`hnnsim.analysis` (drift, error against a reference, plots); the
paper's tasks: :mod:`hnnsim.apps.experiment`. Samplers: :mod:`hnnsim.learn.sampling`.
"""

from __future__ import annotations

from ..extras import require

require("torch", "hnnsim.learn (training Hamiltonian neural networks)")

from .. import analysis  # noqa: E402  (rollout analysis needs no torch; kept here under its old name)
from .data import Dataset, Samples, finite_difference, from_arrays, load, read_trajectory
from .fit import FitResult, fit, predict, rollout, vector_field
from .models import ACTIVATIONS, HNN, MODELS, Baseline, SeparableHNN, build, mlp
from .pendulum_data import SchmidtLipsonRows, read_schmidt_lipson, schmidt_lipson_to_h5md, write_measured_h5md

__all__ = ["ACTIVATIONS", "analysis", "HNN", "MODELS", "Baseline", "Dataset", "FitResult", "SchmidtLipsonRows", "SeparableHNN",
           "Samples", "build", "finite_difference", "fit", "from_arrays", "load", "mlp", "predict",
           "read_schmidt_lipson", "read_trajectory", "rollout", "schmidt_lipson_to_h5md", "vector_field",
           "write_measured_h5md"]
