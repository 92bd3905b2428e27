r"""How a learned system's networks are validated and packed into the kernels' ``params``
array, and which activations are allowed.

Kernel parameter array
----------------------
``params`` (float64, read-only) holds, from index 0: a header of :data:`HEADER` slots
(layout version, kind, activation code, ndof, scratch length, offsets of the first and
second network, widest layer), then for each network a block
``[L, s_0 .. s_L, off_0 .. off_{L-1}]`` followed by each layer's ``W`` (row-major
``(out, in)``), ``W^T`` (row-major ``(in, out)``) and ``b``. ``W^T`` is stored too so that
both passes run over contiguous memory as ``y += w * x`` loops that LLVM vectorises
without reassociating sums (no fastmath: on a given platform results are reproducible
bit for bit, independent of threads and ensemble size).
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import numpy as np

from integrators.errors import InputError, InputTypeError

from .network_kernels import ACTIVATIONS

KIND_HAMILTONIAN = "hamiltonian"
KIND_SEPARABLE = "separable"
#: networks of each kind, in the order they are packed
NETWORKS = {KIND_HAMILTONIAN: ("H",), KIND_SEPARABLE: ("T", "V")}

#: one network as given by the caller: ``[(W0, b0), ..., (WL, bL)]``
Layers = Sequence[Tuple[Any, Any]]

LAYOUT_VERSION = 1.0  # params[0]
HEADER = 8            # slots: layout, kind (0/1), activation, ndof, scratch, offset A, offset B, widest

_REFUSED = {
    "relu": "relu is piecewise linear: its second derivative is zero almost everywhere, so the learned "
            "vector field J grad H would be piecewise constant and its Jacobian (which implicit solvers and "
            "symplecticity rely on) would vanish",
}
_REFUSED["leaky_relu"] = _REFUSED["leakyrelu"] = _REFUSED["relu"].replace("relu is", "leaky relu is")
_REFUSED["identity"] = _REFUSED["linear"] = _REFUSED["none"] = (
    "a linear activation makes the whole network affine, so grad H would be constant")




def pack(kind: str, code: int, ndof: int, nets: Sequence[Sequence[Tuple[np.ndarray, np.ndarray]]]) -> np.ndarray:
    """The kernel array for validated float64 layers (see the module docstring)."""
    widest = max(W.shape[0] for layers in nets for W, _ in layers[:-1]) if any(len(l) > 1 for l in nets) else 1
    deriv = max(sum(W.shape[0] for W, _ in layers[:-1]) for layers in nets)
    chunks: List[np.ndarray] = []
    header = np.zeros(HEADER)
    header[:] = [LAYOUT_VERSION, 1.0 if kind == KIND_SEPARABLE else 0.0, code, ndof, 2 * widest + deriv, 0.0, -1.0, widest]
    pos = HEADER
    for slot, layers in enumerate(nets):
        L = len(layers)
        sizes = [layers[0][0].shape[1]] + [W.shape[0] for W, _ in layers]
        block = np.zeros(1 + (L + 1) + L)
        header[5 + slot] = pos
        block[0] = L
        block[1:L + 2] = sizes
        pos += block.size
        chunks.append(block)
        for k, (W, b) in enumerate(layers):
            block[L + 2 + k] = pos
            for part in (W.ravel(), np.ascontiguousarray(W.T).ravel(), b):
                chunks.append(part)
                pos += part.size
    params = np.concatenate([header] + chunks)
    params.flags.writeable = False
    return params


def _as_weight(value: Any, what: str) -> np.ndarray:
    if isinstance(value, np.ndarray) and not np.issubdtype(value.dtype, np.floating):
        raise InputTypeError(f"{what} must hold floating-point numbers, found dtype {value.dtype}; "
                        "export the trained weights with .detach().cpu().double().numpy()")
    try:
        arr = np.array(value, dtype=np.float64)  # a copy: later changes to the caller's array do not leak in
    except (TypeError, ValueError):
        raise InputTypeError(f"{what} must be a float array (e.g. layer.weight.detach().double().numpy()), "
                        f"found {type(value).__name__}") from None
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{what} must be finite, found {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}; "
                         "the training diverged or the export is broken")
    arr.flags.writeable = False
    return arr


def check_layers(net: str, layers: Any, n_in: int, source: str) -> Tuple[Tuple[np.ndarray, np.ndarray], ...]:
    """Validate one network: ``[(W0, b0), ..., (WL, bL)]``, shapes chaining from ``n_in`` to 1."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise InputTypeError(f"network {net!r} must be a non-empty list of (weight, bias) pairs, one per nn.Linear, "
                        f"found {type(layers).__name__}")
    checked = []
    s_in = n_in
    for k, pair in enumerate(layers):
        if not (isinstance(pair, Sequence) and len(pair) == 2):
            raise InputTypeError(f"network {net!r} layer {k} must be a (weight, bias) pair, found {type(pair).__name__}")
        W = _as_weight(pair[0], f"network {net!r} layer {k} weight")
        if W.ndim != 2:
            raise InputError(f"network {net!r} layer {k} weight must be 2-D (out, in) like nn.Linear.weight, "
                             f"found shape {W.shape}")
        if W.shape[0] < 1:
            raise InputError(f"network {net!r} layer {k} weight has no outputs (shape {W.shape})")
        if W.shape[1] != s_in:
            expect = (f"the network input size {n_in} ({source})" if k == 0
                      else f"the {s_in} outputs of layer {k - 1}")
            raise InputError(f"network {net!r} layer {k} weight has shape {W.shape}: it expects {W.shape[1]} inputs "
                             f"but receives {expect}; weights use nn.Linear's (out, in) layout, transpose if needed")
        if pair[1] is None:
            b = np.zeros(W.shape[0])
            b.flags.writeable = False
        else:
            b = _as_weight(pair[1], f"network {net!r} layer {k} bias")
        if b.shape != (W.shape[0],):
            raise InputError(f"network {net!r} layer {k} bias must have shape ({W.shape[0]},) to match its weight "
                             f"{W.shape}, found {b.shape}")
        checked.append((W, b))
        s_in = W.shape[0]
    if s_in != 1:
        raise InputError(f"network {net!r}: the last layer must have 1 output (H is a scalar), found {s_in}; "
                         f"end the network with nn.Linear(hidden, 1) and no activation after it")
    return tuple(checked)


def activation_code(activation: Any) -> Tuple[str, int]:
    if not isinstance(activation, str):
        raise InputTypeError(f"activation must be a name, one of {', '.join(ACTIVATIONS)}; found {activation!r}")
    key = activation.strip().lower().replace("-", "_")
    if key in _REFUSED:
        raise InputError(f"activation {activation!r} is not allowed: {_REFUSED[key]}. "
                         f"Use a smooth one: {', '.join(ACTIVATIONS)} (softplus is the smooth relu)")
    if key not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    return key, ACTIVATIONS[key]
