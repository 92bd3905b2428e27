"""DeepChem integration: :class:`HNNModel`, a ``dc.models.TorchModel`` for Hamiltonian networks.

DeepChem users train on ``dc.data.NumpyDataset(X=[q..., p...], y=dx/dt)`` with DeepChem's
``fit``, ``predict``, ``evaluate``, checkpoints and callbacks; the trained model becomes the
same :class:`systems.LearnedSystem` that hnnsim's symplectic integrators run
(:meth:`HNNModel.to_system`). The networks are hnnsim's own (:mod:`hnnsim.learn.models`):
an unbounded scalar H (no squashing after the last layer), orthogonal initialisation, and
the dynamics :math:`\\dot x = J\\nabla H` by autograd.

Install with ``pip install "hnnsim[deepchem]"`` (DeepChem 2.8.0, Python < 3.12).

>>> from hnnsim.deepchem import HNNModel, trajectories_to_dataset   # doctest: +SKIP
>>> train = trajectories_to_dataset(["spring.0.h5", "spring.1.h5"])  # doctest: +SKIP
>>> model = HNNModel(n_dof=1, hidden=64, batch_size=64, learning_rate=1e-3)  # doctest: +SKIP
>>> model.fit(train, nb_epoch=50)                                   # doctest: +SKIP
>>> spring = model.to_system("spring-dc", shape=(1, 1))             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import InputError, InputTypeError, MissingExtraError
from .extras import require

torch = require("torch", "hnnsim.deepchem")


def _import_deepchem():
    """Import DeepChem quietly (its import logs ~17 lines about optional backends)."""
    logging.getLogger("deepchem").setLevel(logging.ERROR)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import deepchem
    except ImportError as exc:
        raise MissingExtraError(
            "hnnsim.deepchem needs DeepChem, which is not installed: pip install 'hnnsim[deepchem]' "
            f"(DeepChem 2.8.0, Python < 3.12). The rest of hnnsim works without it. ({exc})") from None
    finally:
        root.setLevel(level)
    return deepchem


dc = _import_deepchem()

from .learn.fit import _dtype  # noqa: E402  (after the quiet DeepChem import)
from .learn.models import HNN, SeparableHNN  # noqa: E402

PathLike = Union[str, os.PathLike]


def _as_array(X: Any) -> np.ndarray:
    if isinstance(X, dc.data.Dataset):
        X = X.X
    return np.asarray(X)


class HNNModel(dc.models.TorchModel):
    r"""Hamiltonian neural network as a DeepChem ``TorchModel``.

    The network maps a state :math:`x = [q_1..q_n, p_1..p_n]` to a scalar :math:`H_\theta`;
    the model's output is the predicted time derivative
    :math:`\dot x = J\nabla H_\theta(x)` (:math:`\dot q = \partial H/\partial p`,
    :math:`\dot p = -\partial H/\partial q`), trained with DeepChem's L2 loss against
    ``y = dx/dt``. Forward passes take gradients inside ``torch.enable_grad()`` and build
    the double-backward graph only in training mode, so ``predict`` works in eval mode and
    under ``torch.no_grad()``.

    Parameters
    ----------
    n_dof : int
        Degrees of freedom n (inputs have 2n columns).
    hidden : int
        Width of the hidden layers.
    layers : int
        Number of hidden layers.
    activation : str
        Hidden activation (``"tanh"``).
    separable : bool
        Learn :math:`H = T(p) + V(q)` with two networks (:class:`SeparableHNNModel`), so
        explicit leapfrog/Yoshida integrators apply to the exported system.
    dtype : {"float32", "float64"} or torch.dtype
        Parameter and input precision. DeepChem casts float64 batches to float32; this
        model keeps float64 when asked (its ``_prepare_batch`` is overridden).
    seed : int, optional
        Seeds the orthogonal initialisation.
    **kwargs
        DeepChem ``TorchModel`` keywords: ``batch_size``, ``learning_rate``, ``model_dir``,
        ``optimizer``, ``log_frequency``, ...

    Examples
    --------
    >>> model = HNNModel(n_dof=1, hidden=32, batch_size=32)           # doctest: +SKIP
    >>> model.fit(dc.data.NumpyDataset(X, y), nb_epoch=100)           # doctest: +SKIP
    >>> model.predict_hamiltonian(X).shape                            # doctest: +SKIP
    (M,)
    """

    def __init__(self, n_dof: int, hidden: int = 200, layers: int = 2, activation: str = "tanh",
                 separable: bool = False, dtype: Any = "float32", seed: Optional[int] = None, **kwargs: Any):
        if int(n_dof) != n_dof or n_dof < 1:
            raise InputError(f"n_dof must be a positive integer (the number of coordinates q), got {n_dof!r}")
        self.dtype = _dtype(dtype)
        generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        cls = SeparableHNN if separable else HNN
        module = cls(int(n_dof), hidden=hidden, layers=layers, activation=activation, generator=generator).to(self.dtype)
        for key in ("loss", "output_types"):
            if key in kwargs:
                raise InputTypeError(f"HNNModel sets {key} itself (an L2 loss on dx/dt); do not pass {key}=")
        super().__init__(module, loss=dc.models.losses.L2Loss(), output_types=["prediction"], **kwargs)
        self.n_dof = int(n_dof)
        self.separable = bool(separable)

    # -- batches in the model's precision ------------------------------------------
    def _prepare_batch(self, batch: Tuple[Any, Any, Any]):
        if self.dtype != torch.float64:
            return super()._prepare_batch(batch)
        inputs, labels, weights = batch

        def tensors(arrays):
            if arrays is None:
                return []
            return [torch.as_tensor(np.asarray(a, dtype=np.float64), device=self.device) for a in arrays]

        return tensors(inputs), tensors(labels), tensors(weights)

    def _states(self, X: Any) -> torch.Tensor:
        X = _as_array(X)
        if X.ndim != 2 or X.shape[1] != 2 * self.n_dof:
            raise InputError(f"states must have shape [M, {2 * self.n_dof}] ([q..., p...] for n_dof={self.n_dof}), "
                             f"got {X.shape}")
        return torch.as_tensor(np.asarray(X, dtype=np.float64), device=self.device).to(self.dtype)

    # -- extras ------------------------------------------------------------------
    def predict_hamiltonian(self, X: Any) -> np.ndarray:
        """The learned :math:`H_\\theta` at states ``X`` ``[M, 2n]`` (array or DeepChem dataset); shape ``[M]``.

        H is learned up to an additive constant: compare differences, not absolute values.
        """
        self.model.eval()
        with torch.no_grad():
            return self.model.hamiltonian(self._states(X)).cpu().numpy().astype(np.float64)

    def predict_derivatives(self, X: Any) -> np.ndarray:
        """Predicted ``dx/dt`` ``[M, 2n]`` at states ``X`` (``predict`` for plain arrays)."""
        self.model.eval()
        return self.model.time_derivative(self._states(X)).detach().cpu().numpy().astype(np.float64)

    @staticmethod
    def compute_energy_mse(true_energy: Any, predicted_energy: Any) -> float:
        """Mean squared difference of two energy series of equal shape.

        For the HNN paper's rollout metric pass the true energy along the true trajectory
        and the true energy along the rolled-out one (``system.energy(q, p)`` of each).
        """
        a = np.asarray(true_energy, dtype=np.float64)
        b = np.asarray(predicted_energy, dtype=np.float64)
        if a.shape != b.shape:
            raise InputError(f"energy series must have the same shape, got {a.shape} and {b.shape}")
        return float(np.mean((a - b) ** 2))

    def to_system(self, name: str, shape: Optional[Tuple[int, int]] = None, *, register: bool = True,
                  replace: bool = False, default_state: Optional[Tuple[Any, Any]] = None):
        """The trained network as a :class:`systems.LearnedSystem` (float64 weights, numba gradients).

        Parameters
        ----------
        name : str
            Registry name of the system.
        shape : (N, D), optional
            State shape (default ``(n_dof, 1)``).
        register : bool
            Register it, so that simulators and trajectory files can name it.
        replace : bool
            Replace a registered system of the same name.
        default_state : (q0, p0), optional
            The system's default initial state.
        """
        from systems import LearnedSystem

        shape = tuple(shape) if shape is not None else (self.n_dof, 1)
        if shape[0] * shape[1] != self.n_dof:
            raise InputError(f"shape {shape} does not hold n_dof={self.n_dof} coordinates")
        metadata = {"trained_with": "hnnsim.deepchem.HNNModel", "deepchem": dc.__version__,
                    "optimizer_steps": int(self._global_step), "config": self.model.config(),
                    "dtype": str(self.dtype).replace("torch.", "")}
        system = LearnedSystem(name, shape, self.model.export(), activation=self.model.activation,
                               separable=self.separable, metadata=metadata, default_state=default_state)
        if register:
            system.register(replace=replace)
        return system


class SeparableHNNModel(HNNModel):
    """:class:`HNNModel` with :math:`H = T(p) + V(q)` (two networks); explicit integrators apply."""

    def __init__(self, n_dof: int, hidden: int = 200, layers: int = 2, activation: str = "tanh",
                 dtype: Any = "float32", seed: Optional[int] = None, **kwargs: Any):
        super().__init__(n_dof, hidden=hidden, layers=layers, activation=activation, separable=True, dtype=dtype,
                         seed=seed, **kwargs)


# -- datasets ------------------------------------------------------------------------
def trajectories_to_dataset(paths: Union[PathLike, Sequence[PathLike]], derivatives: str = "exact",
                            noise: float = 0.0, seed: int = 0) -> "dc.data.NumpyDataset":
    """hnnsim H5MD trajectories as one ``NumpyDataset(X=[q..., p...], y=dx/dt)``.

    ``derivatives``: ``"exact"`` (the files' velocity and force), ``"forward"`` or
    ``"central"`` finite differences (see :func:`hnnsim.learn.load`). ``ids`` name the
    source file and frame.
    """
    from . import learn

    data = learn.load(paths, noise=noise, test_fraction=0.0, seed=seed, derivatives=derivatives)
    ids = np.array([f"{os.path.basename(t.path)}:{i}" for t in data.trajectories for i in range(t.x.shape[0])])
    return dc.data.NumpyDataset(X=data.x, y=data.dxdt, ids=ids)


def trajectories_to_datasets(paths: Sequence[PathLike], test_fraction: float = 0.2, seed: int = 0,
                             derivatives: str = "exact", noise: float = 0.0):
    """``(train, test)`` ``NumpyDataset`` s, split by trajectory (whole files), as the HNN paper."""
    from . import learn

    data = learn.load(paths, noise=noise, test_fraction=test_fraction, seed=seed, derivatives=derivatives)
    return dc.data.NumpyDataset(X=data.x, y=data.dxdt), dc.data.NumpyDataset(X=data.x_test, y=data.dxdt_test)


def dataset_to_trajectory(dataset: Any, path: PathLike, time: Any, *, shape: Optional[Tuple[int, int]] = None,
                          system: Optional[dict] = None, overwrite: bool = False) -> str:
    """Write a time-ordered ``NumpyDataset`` (``X`` states, ``y`` = dx/dt, or no ``y``) as an hnnsim
    H5MD trajectory, so hnnsim's tools (``hnnsim info``, ``learn.load``, MDAnalysis) read it.

    ``time`` ``[M]`` strictly increasing. ``y`` becomes velocity (dq/dt) and force (dp/dt);
    without ``y`` they are NaN and :func:`hnnsim.learn.load` differentiates the states.
    """
    from .h5md import write_measured as write_measured_h5md

    X = _as_array(dataset).astype(np.float64)
    if X.ndim != 2 or X.shape[1] % 2:
        raise InputError(f"X must be [M, 2n] states [q..., p...], got {X.shape}")
    n = X.shape[1] // 2
    y = getattr(dataset, "y", None)
    if y is not None and np.shape(y) != X.shape:
        if np.ndim(y) == 2 and np.shape(y)[1] == 1 and not np.any(y):
            y = None  # DeepChem's placeholder for "no labels": zeros [M, 1]
        else:
            raise InputError(f"y must be dx/dt with the shape of X {X.shape}, got {np.shape(y)}")
    y = None if y is None else np.asarray(y, dtype=np.float64)
    return write_measured_h5md(path, np.asarray(time, dtype=np.float64), X[:, :n], X[:, n:], shape=shape,
                               system=system, extra={"source": "hnnsim.deepchem.dataset_to_trajectory"},
                               overwrite=overwrite, dqdt=None if y is None else y[:, :n],
                               dpdt=None if y is None else y[:, n:])


__all__ = ["HNNModel", "SeparableHNNModel", "dataset_to_trajectory", "trajectories_to_dataset",
           "trajectories_to_datasets"]
