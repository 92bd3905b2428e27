"""Training (:func:`fit`) and what a trained model can do (:class:`FitResult`).

Loss: mean squared error between the predicted and the target dx/dt; Adam with L2 weight
decay; full batch by default (the HNN paper's recipe for its 1-D tasks).
"""

from __future__ import annotations

import contextlib
import datetime
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch

from integrators.runge_kutta import rk4_step

from ..errors import InputError, InputTypeError, IntegratorError, TrainingDiverged
from ..reporters import show_progress
from .data import Dataset
from .models import _Model, build


@contextlib.contextmanager
def torch_threads(n: Optional[int]):
    """Run the block with ``n`` torch intra-op threads (``None``: unchanged), then restore."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(previous)


def _jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars as Python numbers and non-finite floats as ``None``."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _dtype(dtype: Any) -> torch.dtype:
    if dtype in (torch.float32, "float32", np.float32, "f4"):
        return torch.float32
    if dtype in (torch.float64, "float64", np.float64, "f8", float):
        return torch.float64
    raise InputError(f"dtype must be 'float32' or 'float64' (or the torch / NumPy dtype), got {dtype!r}")


def _loss_stats(model: _Model, x: np.ndarray, y: np.ndarray, dtype: torch.dtype) -> Dict[str, float]:
    """Mean squared error over samples and its standard error (over samples)."""
    if x.shape[0] == 0:
        return {"mean": float("nan"), "stderr": float("nan")}
    pred = predict(model, x, dtype=dtype)
    per = np.mean((pred - y) ** 2, axis=1)
    stderr = float(per.std(ddof=1) / np.sqrt(per.size)) if per.size > 1 else float("nan")
    return {"mean": float(per.mean()), "stderr": stderr}


def predict(model: _Model, x: Any, dtype: Optional[torch.dtype] = None) -> np.ndarray:
    """dx/dt of ``model`` at states ``x`` ``[M, 2n]`` (or ``[2n]``), as a float64 array."""
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 1
    X = np.atleast_2d(x)
    if dtype is None:
        dtype = next(model.parameters()).dtype
    was = model.training
    model.eval()
    try:
        out = model.time_derivative(torch.as_tensor(X, dtype=dtype), create_graph=False).detach()
    finally:
        model.train(was)
    out = out.to(torch.float64).numpy()
    return out[0] if single else out


def vector_field(model: _Model) -> Callable[[float, np.ndarray], np.ndarray]:
    """``f(t, y)`` for :func:`scipy.integrate.solve_ivp` (``y`` flat ``[2n]`` or ``[2n, k]``)."""
    dtype = next(model.parameters()).dtype

    def f(t: float, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            return predict(model, y[None], dtype)[0]
        return predict(model, y.T, dtype).T

    return f


def rollout(model: Union[_Model, "FitResult"], x0: Any, t: Sequence[float], method: str = "RK45",
            rtol: float = 1e-9, atol: float = 1e-9, substeps: int = 10, threads: Optional[int] = 1) -> np.ndarray:
    """Integrate the learned vector field (torch, float64 arrays out) from initial states ``x0``.

    This is how the HNN paper rolls out its models (scipy's adaptive RK45); it works for the
    baseline too. For a Hamiltonian model, hnnsim's way is a symplectic integrator on
    ``fit.to_system()`` in the :class:`~hnnsim.Simulator`.

    Parameters
    ----------
    x0 : array_like, shape ``[2n]`` or ``[B, 2n]``
    t : sequence of float, shape ``[T]``
        Output times, increasing; ``t[0]`` is the time of ``x0``.
    method : {"RK45", "DOP853", ..., "RK4"}
        A :func:`scipy.integrate.solve_ivp` method (each initial state integrated on its
        own, tolerances ``rtol``/``atol``), or ``"RK4"``: classical fixed-step Runge–Kutta
        with ``substeps`` steps per output interval, all states in one batch.
    threads : int or None
        Torch threads during the rollout (default 1: the evaluations are small; ``None``
        leaves torch's setting).

    Returns
    -------
    ndarray, shape ``[T, 2n]`` or ``[T, B, 2n]``
    """
    if isinstance(model, FitResult):
        model = model.model
    x0 = np.asarray(x0, dtype=np.float64)
    single = x0.ndim == 1
    X0 = np.atleast_2d(x0)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 1 or np.any(np.diff(t) <= 0):
        raise InputError("t must be a 1-D increasing sequence of output times")
    dtype = next(model.parameters()).dtype
    with torch_threads(threads):
        out = _rollout(model, X0, t, method, rtol, atol, substeps, dtype)
    return out[:, 0] if single else out


def _rollout(model, X0, t, method, rtol, atol, substeps, dtype):
    out = np.empty((t.size,) + X0.shape)
    if method.upper() == "RK4":
        y = X0.copy()
        out[0] = y

        def f(y):
            return predict(model, y, dtype)

        for i in range(1, t.size):
            h = (t[i] - t[i - 1]) / substeps
            for _ in range(substeps):
                y = rk4_step(f, y, h)
            out[i] = y
    else:
        from scipy.integrate import solve_ivp

        f = vector_field(model)
        for b in range(X0.shape[0]):
            sol = solve_ivp(f, (t[0], t[-1]), X0[b], method=method, t_eval=t, rtol=rtol, atol=atol)
            if not sol.success or sol.y.shape[1] != t.size:
                raise IntegratorError(f"solve_ivp ({method}) failed from state {b}: {sol.message}")
            out[:, b] = sol.y.T
    return out


@dataclass
class FitResult:
    """A trained model, its loss history and provenance.

    Attributes
    ----------
    model : torch.nn.Module
        :class:`~hnnsim.learn.HNN`, :class:`~hnnsim.learn.SeparableHNN` or
        :class:`~hnnsim.learn.Baseline`.
    history : dict of ndarray
        ``step``, ``train_loss`` (the full-batch or minibatch loss at that step, before the
        update), ``test_loss`` (on the test set, every ``eval_every`` steps).
    data : Dataset
    config : dict
        Training settings (model, hidden, layers, steps, lr, weight decay, batch size, seed, dtype).
    train_loss, test_loss : float
        Final MSE over the whole train and test sets; ``train_stderr``, ``test_stderr`` their
        standard errors over samples.
    seconds : float
        Training wall time.
    """

    model: _Model
    history: Dict[str, np.ndarray]
    data: Dataset
    config: Dict[str, Any]
    train_loss: float
    test_loss: float
    train_stderr: float = float("nan")
    test_stderr: float = float("nan")
    seconds: float = 0.0
    #: the step at which Ctrl-C stopped training (``fit(..., stop_on_interrupt=True)``), else None
    interrupted_at: Optional[int] = None
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def predict(self, x: Any) -> np.ndarray:
        """dx/dt at states ``x`` ``[M, 2n]`` (float64 array)."""
        return predict(self.model, x)

    def hamiltonian(self, x: Any) -> np.ndarray:
        """The learned H at states ``x`` ``[M, 2n]`` (not for the baseline)."""
        self._require_hamiltonian("hamiltonian()")
        X = torch.as_tensor(np.atleast_2d(np.asarray(x, dtype=np.float64)), dtype=self.dtype)
        with torch.no_grad():
            return self.model.hamiltonian(X).to(torch.float64).numpy()

    def rollout(self, x0: Any, t: Sequence[float], method: str = "RK45", **kwargs: Any) -> np.ndarray:
        """:func:`hnnsim.learn.rollout` of this model."""
        return rollout(self.model, x0, t, method=method, **kwargs)

    def metadata(self) -> Dict[str, Any]:
        """Training provenance, JSON-able (stored in a learned system's metadata)."""
        from .. import __version__

        return _jsonable({"training": dict(self.config), "data": self.data.describe(),
                "final": {"train_loss": self.train_loss, "test_loss": self.test_loss,
                          "train_stderr": self.train_stderr, "test_stderr": self.test_stderr},
                "seconds": round(self.seconds, 3), "created": self.created,
                "versions": {"hnnsim": __version__, "torch": torch.__version__, "numpy": np.__version__}})

    def _require_hamiltonian(self, what: str) -> None:
        if not self.model.hamiltonian_model:
            raise InputTypeError(
                f"{what}: the baseline model predicts dx/dt directly; its vector field is not J grad H of "
                "any scalar H (nothing makes it conservative or symplectic), so it has no energy and cannot "
                "become a systems.LearnedSystem for hnnsim's integrators. Roll it out with "
                "fit.rollout(x0, t, method='RK45' or 'RK4') instead, or train model='hnn' / 'separable'.")

    def to_system(self, name: Optional[str] = None, register: bool = True, replace: bool = False):
        """This model as a :class:`systems.LearnedSystem` (weights exported as float64 arrays).

        Parameters
        ----------
        name : str, optional
            Registry name (default ``"<data name>-<model>"``, e.g. ``harmonic-oscillator-hnn``).
        register : bool
            Register it in the systems registry, so that simulators and files can name it.
        replace : bool
            Replace a registered system of the same name.

        Raises
        ------
        TypeError
            For the baseline, which is not a Hamiltonian (the message says why and what to do).
        """
        self._require_hamiltonian("to_system()")
        from systems import LearnedSystem

        name = name or f"{self.data.name}-{self.model.kind}"
        shape = tuple(int(s) for s in self.data.shape)
        first = self.data.trajectories[0].x[0] if self.data.trajectories else self.data.x[0]
        n = self.data.ndof
        default_state = (np.asarray(first[:n], dtype=np.float64).reshape(shape),
                         np.asarray(first[n:], dtype=np.float64).reshape(shape))
        system = LearnedSystem(name, shape, self.model.export(), activation=self.model.activation,
                               separable=self.model.separable, metadata=self.metadata(),
                               default_state=default_state)
        if register:
            system.register(replace=replace)
        return system


def fit(data: Dataset, model: str = "hnn", hidden: int = 200, layers: int = 2, steps: int = 2000, lr: float = 1e-3,
        weight_decay: float = 1e-4, batch_size: Optional[int] = None, seed: int = 0, dtype: Any = torch.float32,
        progress: bool = False, activation: str = "tanh", eval_every: int = 1, threads: Optional[int] = None,
        callback: Optional[Callable[[int, float, float], None]] = None,
        stop_on_interrupt: bool = False) -> FitResult:
    """Train a model on ``data`` to predict dx/dt (MSE loss, Adam with L2 weight decay).

    Parameters
    ----------
    data : Dataset
        From :func:`hnnsim.learn.load`.
    model : {"hnn", "separable", "baseline"}
    hidden, layers : int
        Width and number of hidden layers of each MLP (the paper: 200, 2).
    steps : int
        Optimiser steps (the paper: 2000).
    lr, weight_decay : float
        Adam learning rate and L2 penalty (the paper: 1e-3, 1e-4 for the 1-D tasks).
    batch_size : int, optional
        Samples per step, drawn with replacement; ``None``: full batch (the paper's 1-D tasks).
    seed : int
        Seeds initialisation and minibatches; same seed, same data, same dtype -> bit-identical
        weights (on the same machine and thread count).
    dtype : torch.float32 or torch.float64
        Training precision; the exported system is float64 either way.
    progress : bool
        A tqdm bar with the current train and test loss.
    eval_every : int
        Steps between test-loss evaluations recorded in ``history``.
    threads : int, optional
        Torch intra-op threads while training (restored afterwards). Default: 1 for small
        problems (samples x width < 2e6: one thread is about as fast there, immune to
        oversubscription, e.g. by numba's OpenMP pool after a parallel simulation, which
        slowed 2-thread training tenfold in our measurements, and gives the same bits on any
        machine), else torch's setting.
    callback : callable, optional
        ``callback(step, train_loss, test_loss)`` at every evaluation.
    stop_on_interrupt : bool
        On Ctrl-C, stop and return the model trained so far (``interrupted_at`` set)
        instead of raising ``KeyboardInterrupt``.

    Returns
    -------
    FitResult
    """
    dt = _dtype(dtype)
    steps = int(steps)
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    if data.n_train == 0:
        raise InputError("the dataset has no training samples")
    if batch_size is not None and int(batch_size) < 1:
        raise InputError(f"batch_size must be >= 1 or None (full batch), got {batch_size!r}")
    eval_every = max(1, int(eval_every))
    gen = torch.Generator().manual_seed(int(seed))
    net = build(model, data.ndof, hidden=hidden, layers=layers, activation=activation, generator=gen).to(dt)
    X = torch.as_tensor(data.x, dtype=dt)
    Y = torch.as_tensor(data.dxdt, dtype=dt)
    Xt = torch.as_tensor(data.x_test, dtype=dt)
    Yt = torch.as_tensor(data.dxdt_test, dtype=dt)
    opt = torch.optim.Adam(net.parameters(), lr=float(lr), weight_decay=float(weight_decay))
    M = X.shape[0]
    if threads is None:
        work = (M if batch_size is None else min(M, int(batch_size))) * int(hidden)
        threads = 1 if work < 2_000_000 else torch.get_num_threads()
    threads = max(1, int(threads))
    previous_threads = torch.get_num_threads()
    hist_step, hist_train, hist_test = [], [], []
    bar = None
    if progress and show_progress():
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"train {net.kind}", unit="step")
    t0 = time.perf_counter()
    net.train()
    torch.set_num_threads(threads)
    interrupted_at: Optional[int] = None
    try:
        try:
            for step in range(steps):
                if batch_size is None or batch_size >= M:
                    xb, yb = X, Y
                else:
                    idx = torch.randint(0, M, (int(batch_size),), generator=gen)
                    xb, yb = X[idx], Y[idx]
                loss = ((net.time_derivative(xb, create_graph=True) - yb) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step % eval_every == 0 or step == steps - 1:
                    train_loss = float(loss.detach())
                    if not np.isfinite(train_loss):
                        raise TrainingDiverged(f"the training loss became {train_loss} at step {step}; lower lr "
                                                 f"(now {lr}) or check the data for outliers")
                    test_loss = float("nan")
                    if Xt.shape[0]:
                        pred = net.time_derivative(Xt, create_graph=False).detach()
                        test_loss = float(((pred - Yt) ** 2).mean())
                    hist_step.append(step)
                    hist_train.append(train_loss)
                    hist_test.append(test_loss)
                    if callback is not None:
                        callback(step, train_loss, test_loss)
                    if bar is not None:
                        bar.set_postfix_str(f"train {train_loss:.3e}  test {test_loss:.3e}", refresh=False)
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt:
            if not stop_on_interrupt:
                raise
            interrupted_at = step  # Ctrl-C during this step: the model as trained so far
        seconds = time.perf_counter() - t0
        net.eval()
        train = _loss_stats(net, data.x, data.dxdt, dt)
        test = _loss_stats(net, data.x_test, data.dxdt_test, dt)
    finally:
        torch.set_num_threads(previous_threads)
        if bar is not None:
            bar.close()
    config = {"model": net.kind, "hidden": int(hidden), "layers": int(layers), "activation": activation,
              "steps": steps, "lr": float(lr), "weight_decay": float(weight_decay),
              "batch_size": None if batch_size is None else int(batch_size), "seed": int(seed),
              "dtype": str(dt).replace("torch.", ""), "threads": threads, "loss": "mse(dx/dt)", "optimizer": "adam"}
    history = {"step": np.asarray(hist_step, dtype=np.int64), "train_loss": np.asarray(hist_train),
               "test_loss": np.asarray(hist_test)}
    if interrupted_at is not None:
        config["interrupted_at"] = interrupted_at
    return FitResult(model=net, history=history, data=data, config=config, train_loss=train["mean"],
                     test_loss=test["mean"], train_stderr=train["stderr"], test_stderr=test["stderr"],
                     seconds=seconds, interrupted_at=interrupted_at)
