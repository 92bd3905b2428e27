r"""Torch models: Hamiltonian neural networks and the baseline they are compared with.

Every network is a plain stack of ``nn.Linear`` layers with an activation between them
and none after the last layer (an :class:`torch.nn.Sequential`), so that its weights can
cross to numba as arrays (``export()``; weights in ``nn.Linear`` layout ``(out, in)``).
States are ordered ``x = [q_1..q_n, p_1..p_n]``.

- :class:`HNN` (Greydanus, Dzamba & Yosinski 2019): a scalar :math:`H_\theta(q, p)` and
  the dynamics :math:`\dot x = J \nabla H_\theta`, :math:`J = [[0, I], [-I, 0]]`, i.e.
  :math:`\dot q = \partial H/\partial p`, :math:`\dot p = -\partial H/\partial q`.
- :class:`SeparableHNN`: :math:`H_\theta = T_\theta(p) + V_\theta(q)` from two networks,
  so explicit splitting integrators (leapfrog, Yoshida) apply to the learned system.
- :class:`Baseline`: the same MLP predicting :math:`\dot x` directly (the paper's control).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from systems.network_kernels import ACTIVATIONS as _KERNEL_ACTIVATIONS
from systems.network_layout import activation_code

from ..errors import InputError, InputTypeError


class Sin(nn.Module):
    """``sin(x)`` as a module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


#: activations a learned system can evaluate in numba (name -> torch module). torch's
#: Softplus switches to the identity above 20 (threshold); the numba side evaluates it
#: exactly, a difference below 3e-9.
_TORCH: Dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid,
                                              "sin": Sin}
#: built from the one table of activations, :data:`systems.network_kernels.ACTIVATIONS`: a
#: name the numba kernels cannot evaluate cannot be trained (a KeyError here at import).
ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {name: _TORCH[name] for name in _KERNEL_ACTIVATIONS}

Networks = Dict[str, List[Tuple[np.ndarray, np.ndarray]]]


def mlp(n_in: int, hidden: int, layers: int, n_out: int, activation: str = "tanh",
        generator: Optional[torch.Generator] = None) -> nn.Sequential:
    """``n_in -> hidden (x layers) -> n_out``: ``layers`` hidden layers, ``layers + 1`` linear maps.

    Weights orthogonal (``torch.nn.init.orthogonal_``), biases zero; the last layer has no
    bias (as in the reference code) and no activation, so the output is unbounded.
    """
    activation, _ = activation_code(activation)  # the learned system's check: relu refused with the reason
    if int(layers) < 1 or int(hidden) < 1:
        raise InputError(f"need layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
    sizes = [int(n_in)] + [int(hidden)] * int(layers)
    mods: List[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        mods += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    mods.append(nn.Linear(sizes[-1], int(n_out), bias=False))
    net = nn.Sequential(*mods)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
    return net


def export_mlp(net: nn.Sequential) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The layers of ``net`` as ``[(W, b), ...]`` float64 arrays, ``W`` of shape ``(out, in)``
    (a missing bias becomes zeros)."""
    out = []
    for m in net:
        if isinstance(m, nn.Linear):
            W = m.weight.detach().cpu().to(torch.float64).numpy().copy()
            b = (m.bias.detach().cpu().to(torch.float64).numpy().copy() if m.bias is not None
                 else np.zeros(W.shape[0], dtype=np.float64))
            out.append((W, b))
    return out


class _Model(nn.Module):
    """Common interface: ``time_derivative(x)`` (``[M, 2n] -> [M, 2n]``), ``config()``, ``export()``."""

    kind = ""
    hamiltonian_model = True
    separable = False

    def __init__(self, ndof: int, hidden: int, layers: int, activation: str):
        super().__init__()
        self.ndof = int(ndof)
        self.hidden = int(hidden)
        self.layers = int(layers)
        self.activation = activation

    def config(self) -> Dict[str, Any]:
        """Architecture as JSON-able data."""
        return {"model": self.kind, "ndof": self.ndof, "hidden": self.hidden, "layers": self.layers,
                "activation": self.activation, "separable": self.separable}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.time_derivative(x)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def time_derivative(self, x: torch.Tensor, create_graph: Optional[bool] = None) -> torch.Tensor:
        r""":math:`J \nabla H(x)`, shape ``[M, 2n]``, by autograd.

        ``create_graph`` (default: while training with grad enabled) keeps the graph of the
        gradient, so that a loss on the result can be differentiated w.r.t. the weights.
        """
        if create_graph is None:
            create_graph = self.training and torch.is_grad_enabled()
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            H = self.hamiltonian(x)
            (g,) = torch.autograd.grad(H.sum(), x, create_graph=create_graph)
        n = self.ndof
        return torch.cat([g[:, n:], -g[:, :n]], dim=1)

    def export(self) -> Networks:
        raise NotImplementedError


class HNN(_Model):
    """Hamiltonian neural network: an MLP ``[q, p] -> H`` (scalar, unbounded).

    Parameters
    ----------
    ndof : int
        Degrees of freedom n (input size 2n).
    hidden, layers : int
        Width and number of hidden layers (the paper: 200, 2).
    activation : str
        Between layers (``tanh``).
    generator : torch.Generator, optional
        For the orthogonal initialisation (reproducible models).
    """

    kind = "hnn"

    def __init__(self, ndof: int, hidden: int = 200, layers: int = 2, activation: str = "tanh",
                 generator: Optional[torch.Generator] = None):
        super().__init__(ndof, hidden, layers, activation)
        self.net = mlp(2 * self.ndof, hidden, layers, 1, activation, generator)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """H at states ``x`` ``[M, 2n]``; shape ``[M]``."""
        return self.net(x)[:, 0]

    def export(self) -> Networks:
        return {"H": export_mlp(self.net)}


class SeparableHNN(_Model):
    """H = T(p) + V(q), each an MLP ``[n] -> scalar``."""

    kind = "separable"
    separable = True

    def __init__(self, ndof: int, hidden: int = 200, layers: int = 2, activation: str = "tanh",
                 generator: Optional[torch.Generator] = None):
        super().__init__(ndof, hidden, layers, activation)
        self.T = mlp(self.ndof, hidden, layers, 1, activation, generator)
        self.V = mlp(self.ndof, hidden, layers, 1, activation, generator)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        n = self.ndof
        return self.T(x[:, n:])[:, 0] + self.V(x[:, :n])[:, 0]

    def export(self) -> Networks:
        return {"T": export_mlp(self.T), "V": export_mlp(self.V)}


class Baseline(_Model):
    """The paper's baseline: the same MLP with ``2n`` outputs, predicting dx/dt directly.

    Its vector field is not constrained to be Hamiltonian, so it has no H and cannot become
    a :class:`systems.LearnedSystem`; roll it out with :func:`hnnsim.learn.rollout`.
    """

    kind = "baseline"
    hamiltonian_model = False

    def __init__(self, ndof: int, hidden: int = 200, layers: int = 2, activation: str = "tanh",
                 generator: Optional[torch.Generator] = None):
        super().__init__(ndof, hidden, layers, activation)
        self.net = mlp(2 * self.ndof, hidden, layers, 2 * self.ndof, activation, generator)

    def time_derivative(self, x: torch.Tensor, create_graph: Optional[bool] = None) -> torch.Tensor:
        return self.net(x)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        raise InputTypeError("the baseline predicts dx/dt directly and has no Hamiltonian")

    def export(self) -> Networks:
        return {"F": export_mlp(self.net)}


MODELS = {"hnn": HNN, "separable": SeparableHNN, "baseline": Baseline}


def build(model: str, ndof: int, hidden: int = 200, layers: int = 2, activation: str = "tanh",
          generator: Optional[torch.Generator] = None) -> _Model:
    """A model by name: ``"hnn"``, ``"separable"`` or ``"baseline"``."""
    key = str(model).lower().replace("_", "-")
    if key in ("separable-hnn", "shnn"):
        key = "separable"
    if key not in MODELS:
        raise InputError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    return MODELS[key](ndof, hidden=hidden, layers=layers, activation=activation, generator=generator)
