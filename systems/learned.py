r"""Learned Hamiltonians: a trained multilayer perceptron evaluated in numba.

A :class:`LearnedSystem` is a :class:`~systems.base.System` whose Hamiltonian is a fully
connected network with weights exported from training (e.g. a torch ``nn.Sequential`` of
``nn.Linear`` layers) as float64 arrays. No torch is imported here: the kernels
(:mod:`systems.network_kernels`) see the network only as one flat float64 ``params`` array
(:mod:`systems.network_layout`) and evaluate it with hand-written forward and reverse-mode
passes, so a learned system runs inside every compiled integrator exactly like an analytic
one. Models are saved and loaded as files that loading cannot execute
(:mod:`systems.model_file`).

Examples
--------
>>> import numpy as np, systems
>>> rng = np.random.default_rng(0)
>>> layers = [(rng.normal(size=(8, 2)), np.zeros(8)), (rng.normal(size=(1, 8)), np.zeros(1))]
>>> spring = systems.LearnedSystem("toy-hnn", (1, 1), {"H": layers})
>>> spring.energy([0.5], [0.1]).shape
()
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from integrators._registry import normalise
from integrators.batched import register_gradient
from integrators.errors import InputError, InputTypeError, ModelFileError

from . import model_file
from .base import System
from .model_file import FILE_FORMAT, FILE_VERSION, digest, json_default
from .network_batch import block_scratch, learned_grad_block
from .network_kernels import ACTIVATIONS, learned_dHdp, learned_dHdq, learned_grad, learned_H
from .network_layout import KIND_HAMILTONIAN, KIND_SEPARABLE, NETWORKS, Layers, activation_code, check_layers, pack

__all__ = ["ACTIVATIONS", "FILE_FORMAT", "FILE_VERSION", "LearnedSystem", "ModelFileError", "load"]


class LearnedSystem(System):
    r"""A Hamiltonian given by a trained MLP, evaluated in numba (see the module docstring
    for the equations, the kernel array and the file format).

    Parameters
    ----------
    name : str
        Registry name (e.g. ``"spring-hnn"``); :meth:`register` makes ``systems.get(name)``
        return this instance.
    shape : tuple of int
        State shape ``(N, D)``; ``ndof = N * D``.
    networks : dict of str to list of (ndarray, ndarray)
        Per network, one ``(W, b)`` pair per linear layer: ``W`` of shape ``(out, in)``
        (``nn.Linear.weight``), ``b`` of shape ``(out,)`` (``None`` for a layer without
        bias). ``{"H": layers}`` with input ``[q_flat, p_flat]`` (size ``2 * ndof``), or for
        ``separable=True`` ``{"T": layers_on_p, "V": layers_on_q}`` (input size ``ndof``).
        The last layer has one output and no activation. Floating arrays of any precision
        are converted to float64 (exactly) and copied.
    activation : str
        Hidden-layer activation: ``"tanh"``, ``"softplus"``, ``"sigmoid"`` or ``"sin"``.
    separable : bool
        ``H = T(p) + V(q)`` from two networks.
    metadata : dict, optional
        JSON data saved with the model (training provenance: data files, seed, steps,
        losses...). NumPy scalars and arrays are converted; NaN and infinity are refused.
    default_state : (array, array), optional
        ``(q0, p0)``, each of shape ``(N, D)`` or ``(ndof,)``. Default: zeros.
    masses : array, optional
        Per-particle masses, shape ``(N,)``, > 0 (recorded in trajectory files).

    Attributes
    ----------
    kind : str
        ``"hamiltonian"`` or ``"separable"``.
    activation : str
    networks : dict of str to tuple of (ndarray, ndarray)
        The float64 layers (read-only).
    sizes : dict of str to tuple of int
        Layer sizes ``(s_0, ..., 1)`` per network.
    metadata : dict
    model_hash : str
        SHA-256 (hex) of the weights, architecture, name, default state, masses and metadata.
    params : ndarray
        The read-only float64 kernel array.

    Notes
    -----
    Each gradient kernel call is one forward and one backward pass (about
    ``2 sum_k s_k s_{k+1}`` multiply-adds, one scratch vector allocated per call). The
    implicit midpoint, Tao and RK4 kernels call :attr:`grad` (dH/dq and dH/dp from one
    forward and one backward pass; ``dHdq`` and ``dHdp`` each run that same pass), and the
    implicit midpoint evaluates an ensemble in blocks of members by :attr:`grad_block`
    (matrix-matrix products, :mod:`systems.network_batch`). Measured for a 2-200-200-1 tanh
    network per full gradient evaluation (dH/dq and dH/dp at one state) inside an implicit
    midpoint rollout, one thread of the shared 2-core EPYC (load 2.5-3): about 16 us for one
    member (torch autograd: about 210 us) and 7.8 us per member for 1000 members (torch
    autograd on the batch: 8.5-9 us). Every path gives a member the same bits (no sum is
    reassociated; see ``systems.network_kernels``, "Summation order"), so results do not
    depend on the thread count, the ensemble size or a member's position, and on a given
    platform they are reproducible bit for bit.

    For a separable model, :meth:`split_energy` and the recorded kinetic/potential energies
    use the convention ``T(0) = 0``: they are ``T(p) - T(0)`` and ``V(q) + T(0)`` (their sum
    is H exactly).
    """

    name = ""
    separable = False
    dHdq = staticmethod(learned_dHdq)
    dHdp = staticmethod(learned_dHdp)
    hamiltonian = staticmethod(learned_H)
    #: ``grad(q, p, params, iw, fw, gq, gp)``: both gradients from one forward and one backward
    #: pass (the bits of ``dHdq`` and ``dHdp``); registered in :mod:`integrators.batched`
    grad = staticmethod(learned_grad)
    #: ``grad_block(Q, P, params, GQ, GP, buf)`` over blocks ``[n, W]`` of members (batch view;
    #: ``buf`` of ``systems.network_batch.block_scratch(params, W)`` floats)
    grad_block = staticmethod(learned_grad_block)

    def __init__(
        self,
        name: str,
        shape: Tuple[int, int],
        networks: Mapping[str, Layers],
        activation: str = "tanh",
        separable: bool = False,
        metadata: Optional[Mapping[str, Any]] = None,
        default_state: Optional[Tuple[Any, Any]] = None,
        masses: Optional[Any] = None,
    ):
        super().__init__()
        try:
            normalise(name)
        except TypeError:
            raise InputTypeError(f"name must be a non-empty string (the registry name, e.g. 'spring-hnn'), "
                            f"found {name!r}") from None
        self.name = str(name)
        self._shape = self._check_shape(shape)
        n = self._shape[0] * self._shape[1]
        if not isinstance(separable, (bool, np.bool_)):
            raise InputTypeError(f"separable must be True or False, found {separable!r}")
        self.separable = bool(separable)
        self.kind = KIND_SEPARABLE if self.separable else KIND_HAMILTONIAN
        self.activation, code = activation_code(activation)

        if not isinstance(networks, Mapping):
            raise InputTypeError(f"networks must be a dict of name -> [(W, b), ...], found {type(networks).__name__}")
        expected = NETWORKS[self.kind]
        if set(networks) != set(expected):
            hint = ("a separable H = T(p) + V(q) needs networks {'T': ..., 'V': ...}" if self.separable else
                    "a non-separable H needs networks {'H': ...} (or pass separable=True with 'T' and 'V')")
            raise InputError(f"networks has keys {sorted(networks)}, expected {list(expected)}: {hint}")
        n_in = n if self.separable else 2 * n
        source = {"H": f"[q, p] of 2 * ndof = 2 * {n}", "T": f"p of ndof = {n}", "V": f"q of ndof = {n}"}
        self.networks: Dict[str, Tuple[Tuple[np.ndarray, np.ndarray], ...]] = {
            net: check_layers(net, networks[net], n_in, source[net]) for net in expected}
        self.sizes = {net: (n_in,) + tuple(W.shape[0] for W, _ in layers) for net, layers in self.networks.items()}

        if metadata is None:
            metadata = {}
        if not isinstance(metadata, Mapping):
            raise InputTypeError(f"metadata must be a dict of JSON data, found {type(metadata).__name__}")
        try:
            self.metadata: Dict[str, Any] = json.loads(json.dumps(dict(metadata), default=json_default,
                                                                  allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InputError(f"metadata must be JSON data (str, finite numbers, bool, None, lists, dicts): "
                             f"{exc}; convert other objects (paths, NaN losses) to strings or None") from None

        self._default = self._check_default(default_state)
        self._masses = self._check_masses(masses)
        self.params = pack(self.kind, code, n, [self.networks[net] for net in expected])
        self.model_hash = digest(self._spec(), self._arrays())

    # -- validation helpers -------------------------------------------------------
    @staticmethod
    def _check_shape(shape: Any) -> Tuple[int, int]:
        try:
            N, D = (int(s) for s in shape)
            ok = all(int(s) == s for s in shape) and N >= 1 and D >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"shape must be (N, D) with positive integers (N particles in D dimensions, "
                             f"e.g. (1, 1) for a spring), found {shape!r}")
        return N, D

    def _check_default(self, state: Any) -> Tuple[np.ndarray, np.ndarray]:
        N, D = self._shape
        if state is None:
            return np.zeros((N, D)), np.zeros((N, D))
        try:
            q0, p0 = state
        except (TypeError, ValueError):
            raise InputTypeError(f"default_state must be a pair (q0, p0), found {type(state).__name__}") from None
        out = []
        for label, x in (("q0", q0), ("p0", p0)):
            a = np.array(x, dtype=np.float64)
            if a.shape not in ((N, D), (N * D,)):
                raise InputError(f"default_state {label} must have shape ({N}, {D}) or ({N * D},), found {a.shape}")
            if not np.all(np.isfinite(a)):
                raise InputError(f"default_state {label} must be finite, found {a.ravel().tolist()}")
            out.append(a.reshape(N, D))
        return out[0], out[1]

    def _check_masses(self, masses: Any) -> Optional[np.ndarray]:
        if masses is None:
            return None
        N = self._shape[0]
        m = np.array(masses, dtype=np.float64).reshape(-1)
        if m.shape != (N,) or not np.all(np.isfinite(m)) or np.any(m <= 0.0):
            raise InputError(f"masses must be {N} finite numbers > 0 (one per particle), found {np.asarray(masses)!r}")
        return m

    # -- identity -------------------------------------------------------------------
    def _spec(self) -> Dict[str, Any]:
        """The file header without its hash."""
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "name": self.name,
            "shape": list(self._shape),
            "kind": self.kind,
            "activation": self.activation,
            "networks": {net: {"sizes": list(s)} for net, s in self.sizes.items()},
            "masses": self._masses is not None,
            "metadata": self.metadata,
        }

    def _arrays(self) -> List[Tuple[str, np.ndarray]]:
        """Named arrays of the file, in hashing order."""
        arrays = []
        for net, layers in self.networks.items():
            for k, (W, b) in enumerate(layers):
                arrays += [(f"{net}.{k}.weight", W), (f"{net}.{k}.bias", b)]
        arrays += [("default_state.q", self._default[0]), ("default_state.p", self._default[1])]
        if self._masses is not None:
            arrays.append(("masses", self._masses))
        return arrays

    def state_shape(self) -> Tuple[int, int]:
        return self._shape

    def default_state(self) -> Tuple[np.ndarray, np.ndarray]:
        return self._default[0].copy(), self._default[1].copy()

    def masses(self) -> Optional[np.ndarray]:
        return None if self._masses is None else self._masses.copy()

    @property
    def hidden(self) -> Dict[str, Tuple[int, ...]]:
        """Hidden-layer widths per network."""
        return {net: s[1:-1] for net, s in self.sizes.items()}

    def describe(self) -> Dict[str, Any]:
        """``{"name", "parameters": {}, "model_hash"}``: what a trajectory file records;
        ``systems.from_description`` finds the model once it is registered."""
        return {"name": self.name, "parameters": {}, "model_hash": self.model_hash}

    def __repr__(self) -> str:
        arch = "; ".join(f"{net}: {'-'.join(map(str, s))}" for net, s in self.sizes.items())
        return (f"LearnedSystem(name={self.name!r}, shape={self._shape}, kind={self.kind!r}, "
                f"activation={self.activation!r}, layers=[{arch}], hash={self.model_hash[:12]!r})")

    # -- registry ---------------------------------------------------------------------
    def register(self, replace: bool = False) -> "LearnedSystem":
        """Register under :attr:`name` so that ``systems.get(name)`` (and
        ``systems.from_description(self.describe())``) return this instance.

        Registering the same model (same :attr:`model_hash`) again is a no-op; another entry
        under the same name raises ``ValueError`` unless ``replace=True``.
        """
        from . import registry  # here: systems imports this module

        if self.name in registry and not replace:
            existing = registry.entry(self.name).instance
            if isinstance(existing, LearnedSystem) and existing.model_hash == self.model_hash:
                return existing
        registry.register(self.name, self._from_registry, separable=self.separable, defaults={}, instance=self,
                          replace=replace)
        return self

    def _from_registry(self, model_hash: Optional[str] = None, **parameters: Any) -> "LearnedSystem":
        """The registry entry's factory: this instance, if ``model_hash`` (from a file) is its own."""
        if parameters:
            raise InputTypeError(f"LearnedSystem got unknown parameter(s) {', '.join(sorted(parameters))}; it takes "
                                 f"no parameters (its weights are fixed; {self.name!r} is one trained model)")
        if model_hash is not None and model_hash != self.model_hash:
            raise InputError(f"system {self.name!r} is registered with model hash {self.model_hash[:12]}..., not "
                             f"{str(model_hash)[:12]}...: a different model was registered under this name; "
                             "load the right file")
        return self

    # -- files ------------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> str:
        """Write the model to ``path`` (any extension; ``.hnn`` by convention) atomically.

        The file is an uncompressed ``.npz`` of plain arrays and a JSON header (module
        docstring); :meth:`load` reads it without executing code. Returns the path.
        """
        return model_file.write_model(self, path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "LearnedSystem":
        """Read a model written by :meth:`save`; raises :class:`ModelFileError` for anything
        else (no code is executed: pickled content is refused)."""
        return model_file.read_model(os.fspath(path), cls)


# the integrators find the fused and batched gradients by the member dHdq dispatcher
register_gradient(learned_dHdq, learned_dHdp, learned_grad, learned_grad_block, block_scratch)


def load(path: Union[str, os.PathLike], register: bool = True, replace: bool = False) -> LearnedSystem:
    """Read a learned model file and (by default) register it under its name.

    Parameters
    ----------
    path : str or PathLike
        File written by :meth:`LearnedSystem.save`.
    register : bool
        Register the system so that ``systems.get(name)`` and trajectory files find it.
        Loading the same model twice is harmless; a different entry under the same name
        raises ``ValueError`` unless ``replace=True``.
    replace : bool
        Replace an existing registry entry of the same name.

    Returns
    -------
    LearnedSystem

    Raises
    ------
    ModelFileError
        The file is not a valid model file, is truncated or corrupt, was modified after it
        was saved, or contains pickled objects.
    """
    system = LearnedSystem.load(path)
    if register:
        system = system.register(replace=replace)
    return system
