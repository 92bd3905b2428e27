r"""Learned Hamiltonians: a trained multilayer perceptron evaluated in numba.

A :class:`LearnedSystem` is a :class:`~systems.base.System` whose Hamiltonian is a fully
connected network with weights exported from training (e.g. a torch ``nn.Sequential`` of
``nn.Linear`` layers) as float64 arrays. No torch is imported here: the kernels see the
network only as one flat float64 ``params`` array and evaluate it with hand-written
forward and reverse-mode (backpropagation) passes, so a learned system runs inside every
compiled integrator exactly like an analytic one.

Network
-------
A network with ``L`` linear layers maps an input :math:`a_0` of size :math:`s_0` to a scalar:

.. math::

    z_k = W_{k-1} a_{k-1} + b_{k-1}, \qquad a_k = \sigma(z_k) \quad (k = 1, \dots, L-1),
    \qquad f = W_{L-1} a_{L-1} + b_{L-1} \in \mathbb{R},

with :math:`W_k` of shape ``(s_{k+1}, s_k)`` (torch's ``nn.Linear.weight`` layout
``(out, in)``), :math:`b_k` of shape ``(s_{k+1},)``, :math:`s_L = 1` and no activation after
the last layer (H is unbounded). Its gradient is the reverse-mode recursion

.. math::

    g_{L-1} = W_{L-1}^{\top} \odot \sigma'(z_{L-1}), \qquad
    g_{k} = \left(W_{k}^{\top} g_{k+1}\right) \odot \sigma'(z_{k}), \qquad
    \nabla_{a_0} f = W_0^{\top} g_1 .

Two architectures:

* ``kind="hamiltonian"`` (``separable=False``): one network ``"H"`` on the state
  :math:`x = (q_1..q_n, p_1..p_n)`, ``s_0 = 2 n``; :math:`H(q, p) = f_H(x)`.
* ``kind="separable"`` (``separable=True``): :math:`H(q, p) = T(p) + V(q)` with networks
  ``"T"`` on :math:`p` and ``"V"`` on :math:`q`, ``s_0 = n``; explicit splitting methods
  (leapfrog, Yoshida) accept it.

Here ``n = ndof = N * D`` and q, p are the flattened ``(N, D)`` state. Hidden activations
:math:`\sigma`: ``tanh``, ``softplus`` (:math:`\log(1 + e^z)`, evaluated stably; torch's
``nn.Softplus`` switches to the identity above ``z = 20``, a difference below ``3e-9``),
``sigmoid`` and ``sin``. ``relu`` is refused: its second derivative vanishes, so the learned
vector field :math:`J\nabla H` is piecewise constant.

Kernel parameter array
----------------------
``params`` (float64, read-only) holds, from index 0: a header of :data:`_HEADER` slots
(layout version, kind, activation code, ndof, scratch length, offsets of the first and
second network, widest layer), then for each network a block
``[L, s_0 .. s_L, off_0 .. off_{L-1}]`` followed by each layer's ``W`` (row-major
``(out, in)``), ``W^T`` (row-major ``(in, out)``) and ``b``. ``W^T`` is stored too so that
both passes run over contiguous memory as ``y += w * x`` loops that LLVM vectorises
without reassociating sums (no fastmath: on a given platform results are reproducible
bit for bit, independent of threads and ensemble size).

Model file
----------
:meth:`LearnedSystem.save` writes an uncompressed NumPy ``.npz`` (a zip of ``.npy`` members;
any file name) read back with ``allow_pickle=False``, so loading never executes code:

* ``header``: uint8 array, UTF-8 JSON ``{"format": "hnnsim-learned-system", "version": 1,
  "name", "shape": [N, D], "kind", "activation", "networks": {net: {"sizes": [s_0, .., 1]}},
  "masses": bool, "metadata": {...}, "sha256": model_hash}``;
* ``<net>.<k>.weight`` float64 ``(s_{k+1}, s_k)`` and ``<net>.<k>.bias`` float64 ``(s_{k+1},)``
  for ``net`` in ``H`` or ``T``, ``V`` and ``k = 0 .. L-1``;
* ``default_state.q``, ``default_state.p`` float64 ``(N, D)``; ``masses`` float64 ``(N,)`` if any.

``sha256`` (:attr:`LearnedSystem.model_hash`) is the SHA-256 of the canonical JSON of the
header without ``sha256`` followed by every array (name, shape, float64 little-endian
bytes) in the order above. :func:`load` recomputes it and refuses a file whose hash, zip
CRC, structure, format or version does not match, raising :class:`ModelFileError`.

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

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numba as nb
import numpy as np

from integrators._registry import normalise
from integrators.errors import InputError, InputTypeError, ModelFileError

from .base import System

__all__ = ["ACTIVATIONS", "FILE_FORMAT", "FILE_VERSION", "LearnedSystem", "ModelFileError", "load"]

#: Activation names accepted for hidden layers, and their kernel codes.
ACTIVATIONS: Dict[str, int] = {"tanh": 0, "softplus": 1, "sigmoid": 2, "sin": 3}
_TANH, _SOFTPLUS, _SIGMOID, _SIN = 0, 1, 2, 3
_REFUSED = {
    "relu": "relu is piecewise linear: its second derivative is zero almost everywhere, so the learned "
            "vector field J grad H would be piecewise constant and its Jacobian (which implicit solvers and "
            "symplecticity rely on) would vanish",
}
_REFUSED["leaky_relu"] = _REFUSED["leakyrelu"] = _REFUSED["relu"].replace("relu is", "leaky relu is")
_REFUSED["identity"] = _REFUSED["linear"] = _REFUSED["none"] = (
    "a linear activation makes the whole network affine, so grad H would be constant")

KIND_HAMILTONIAN = "hamiltonian"
KIND_SEPARABLE = "separable"
_NETWORKS = {KIND_HAMILTONIAN: ("H",), KIND_SEPARABLE: ("T", "V")}

FILE_FORMAT = "hnnsim-learned-system"
FILE_VERSION = 1

# -- params layout ------------------------------------------------------------------
_LAYOUT = 1.0      # params[0]: layout version
_HEADER = 8        # slots: layout, kind (0/1), activation, ndof, scratch, offset A, offset B, widest


# =============================================================================
# numba kernels
# =============================================================================

@nb.njit(cache=True, error_model="numpy")
def _activate(code, z, d):
    """In place ``z[:] = sigma(z)`` and ``d[:] = sigma'(z)``; every branch propagates NaN."""
    n = z.shape[0]
    if code == _TANH:
        for i in range(n):
            t = math.tanh(z[i])
            z[i] = t
            d[i] = 1.0 - t * t
    elif code == _SOFTPLUS:
        for i in range(n):
            x = z[i]
            if x > 0.0:
                e = math.exp(-x)
                z[i] = x + math.log1p(e)
                d[i] = 1.0 / (1.0 + e)
            else:
                e = math.exp(x)
                z[i] = math.log1p(e)
                d[i] = e / (1.0 + e)
    elif code == _SIGMOID:
        for i in range(n):
            x = z[i]
            if x >= 0.0:
                s = 1.0 / (1.0 + math.exp(-x))
            else:
                e = math.exp(x)
                s = e / (1.0 + e)
            z[i] = s
            d[i] = s * (1.0 - s)
    else:  # _SIN
        for i in range(n):
            x = z[i]
            z[i] = math.sin(x)
            d[i] = math.cos(x)


# The loops below index array *views* (slices of ``params`` and ``buf``) with the bare loop
# counter, and accumulate as ``y[i] += w[i] * x`` rather than as dot products: LLVM then
# vectorises them without reassociating any sum (each output is still summed in input
# order), about 6x faster than indexing ``params[offset + i]`` directly.

@nb.njit(cache=True, error_model="numpy")
def _forward(params, o, x1, x2, n1, n2, buf):
    """Evaluate the network whose block starts at ``params[o]`` on the input
    ``(x1[:n1], x2[:n2])``; return the scalar output.

    ``buf`` (length ``params[4]``) receives two ping-pong activation vectors of the widest
    layer (``params[7]``) at offsets 0 and ``widest``, and from ``2 * widest`` the
    activation derivatives of every hidden layer, in layer order, for :func:`_backward`.
    """
    code = int(params[2])
    widest = int(params[7])
    L = int(params[o])
    sz = o + 1          # sizes s_0 .. s_L
    offs = o + L + 2    # layer block offsets
    s_in = n1 + n2
    s_out = int(params[sz + 1])
    w = int(params[offs])
    if L == 1:  # no hidden layer: f = W x + b
        W = params[w:w + s_in]
        acc = params[w + 2 * s_in]
        for j in range(n1):
            acc += W[j] * x1[j]
        for j in range(n2):
            acc += W[n1 + j] * x2[j]
        return acc
    # first layer, as z = b + sum_j W^T[j, :] x_j
    Wt = params[w + s_out * s_in:w + 2 * s_out * s_in].reshape((s_in, s_out))
    b = params[w + 2 * s_out * s_in:w + 2 * s_out * s_in + s_out]
    z = buf[0:s_out]
    for i in range(s_out):
        z[i] = b[i]
    for j in range(n1):
        xj = x1[j]
        for i in range(s_out):
            z[i] += Wt[j, i] * xj
    for j in range(n2):
        xj = x2[j]
        for i in range(s_out):
            z[i] += Wt[n1 + j, i] * xj
    dpos = 2 * widest  # where this hidden layer's derivatives go
    _activate(code, z, buf[dpos:dpos + s_out])
    dpos += s_out
    cur = 0
    # hidden layers 1 .. L-2
    for k in range(1, L - 1):
        s_in = s_out
        s_out = int(params[sz + k + 1])
        w = int(params[offs + k])
        Wt = params[w + s_out * s_in:w + 2 * s_out * s_in].reshape((s_in, s_out))
        b = params[w + 2 * s_out * s_in:w + 2 * s_out * s_in + s_out]
        nxt = widest - cur
        a = buf[cur:cur + s_in]
        z = buf[nxt:nxt + s_out]
        for i in range(s_out):
            z[i] = b[i]
        for j in range(s_in):
            aj = a[j]
            for i in range(s_out):
                z[i] += Wt[j, i] * aj
        _activate(code, z, buf[dpos:dpos + s_out])
        dpos += s_out
        cur = nxt
    # last layer: one output, no activation
    s_in = s_out
    w = int(params[offs + L - 1])
    W = params[w:w + s_in]
    a = buf[cur:cur + s_in]
    acc = params[w + 2 * s_in]
    for j in range(s_in):
        acc += W[j] * a[j]
    return acc


@nb.njit(cache=True, error_model="numpy")
def _backward(params, o, buf, c0, n, out):
    """``out[:n]`` = derivative of the network output with respect to inputs ``c0 .. c0+n-1``,
    by reverse mode through the layers, from the derivatives :func:`_forward` left in ``buf``."""
    widest = int(params[7])
    L = int(params[o])
    sz = o + 1
    offs = o + L + 2
    if L == 1:
        w = int(params[offs])
        for j in range(n):
            out[j] = params[w + c0 + j]
        return
    # derivatives of the hidden layers sit at 2*widest + sum of earlier hidden sizes
    dpos = 2 * widest
    for k in range(1, L):
        dpos += int(params[sz + k])
    # last layer: g = W_{L-1}[0, :] * sigma'(z_{L-1})
    s = int(params[sz + L - 1])
    dpos -= s
    w = int(params[offs + L - 1])
    W = params[w:w + s]
    d = buf[dpos:dpos + s]
    g = buf[0:s]
    cur = 0
    for j in range(s):
        g[j] = W[j] * d[j]
    # hidden layers L-2 .. 1: h = (W_k^T g) * sigma'(z_k), as h += g_i W_k[i, :]
    for k in range(L - 2, 0, -1):
        s_out = s
        s = int(params[sz + k])
        dpos -= s
        w = int(params[offs + k])
        Wk = params[w:w + s_out * s].reshape((s_out, s))
        nxt = widest - cur
        g = buf[cur:cur + s_out]
        h = buf[nxt:nxt + s]
        d = buf[dpos:dpos + s]
        for j in range(s):
            h[j] = 0.0
        for i in range(s_out):
            gi = g[i]
            for j in range(s):
                h[j] += Wk[i, j] * gi
        for j in range(s):
            h[j] *= d[j]
        cur = nxt
    # first layer: out = W_0[:, c0:c0+n]^T g
    s_out = s
    s_in = int(params[sz])
    w = int(params[offs])
    W0 = params[w:w + s_out * s_in].reshape((s_out, s_in))
    g = buf[cur:cur + s_out]
    for j in range(n):
        out[j] = 0.0
    for i in range(s_out):
        gi = g[i]
        for j in range(n):
            out[j] += W0[i, c0 + j] * gi


@nb.njit(cache=True, error_model="numpy")
def _learned_dHdq(q, p, params, out):
    """``out[:] = dH/dq`` of the network packed in ``params`` (NaN if ``len(q)`` is wrong)."""
    n = q.shape[0]
    if n != int(params[3]) or p.shape[0] != n or out.shape[0] != n:
        out[:] = np.nan
        return
    buf = np.empty(int(params[4]))
    if params[1] == 1.0:  # separable: dH/dq = dV/dq
        o = int(params[6])
        _forward(params, o, q, q, n, 0, buf)
        _backward(params, o, buf, 0, n, out)
    else:
        o = int(params[5])
        _forward(params, o, q, p, n, n, buf)
        _backward(params, o, buf, 0, n, out)


@nb.njit(cache=True, error_model="numpy")
def _learned_dHdp(q, p, params, out):
    """``out[:] = dH/dp`` of the network packed in ``params`` (NaN if ``len(p)`` is wrong)."""
    n = p.shape[0]
    if n != int(params[3]) or q.shape[0] != n or out.shape[0] != n:
        out[:] = np.nan
        return
    buf = np.empty(int(params[4]))
    if params[1] == 1.0:  # separable: dH/dp = dT/dp
        o = int(params[5])
        _forward(params, o, p, p, n, 0, buf)
        _backward(params, o, buf, 0, n, out)
    else:
        o = int(params[5])
        _forward(params, o, q, p, n, n, buf)
        _backward(params, o, buf, n, n, out)


@nb.njit(cache=True, error_model="numpy")
def _learned_H(q, p, params):
    """H(q, p) of the network packed in ``params`` (NaN if the state length is wrong)."""
    n = q.shape[0]
    if n != int(params[3]) or p.shape[0] != n:
        return np.nan
    buf = np.empty(int(params[4]))
    if params[1] == 1.0:
        return _forward(params, int(params[5]), p, p, n, 0, buf) + _forward(params, int(params[6]), q, q, n, 0, buf)
    return _forward(params, int(params[5]), q, p, n, n, buf)


# =============================================================================
# packing and validation
# =============================================================================

Layers = Sequence[Tuple[Any, Any]]


def _pack(kind: str, code: int, ndof: int, nets: Sequence[Sequence[Tuple[np.ndarray, np.ndarray]]]) -> np.ndarray:
    """The kernel array for validated float64 layers (see the module docstring)."""
    widest = max(W.shape[0] for layers in nets for W, _ in layers[:-1]) if any(len(l) > 1 for l in nets) else 1
    deriv = max(sum(W.shape[0] for W, _ in layers[:-1]) for layers in nets)
    chunks: List[np.ndarray] = []
    header = np.zeros(_HEADER)
    header[:] = [_LAYOUT, 1.0 if kind == KIND_SEPARABLE else 0.0, code, ndof, 2 * widest + deriv, 0.0, -1.0, widest]
    pos = _HEADER
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


def _check_layers(net: str, layers: Any, n_in: int, source: str) -> Tuple[Tuple[np.ndarray, np.ndarray], ...]:
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


def _activation_code(activation: Any) -> Tuple[str, int]:
    if not isinstance(activation, str):
        raise InputTypeError(f"activation must be a name, one of {', '.join(ACTIVATIONS)}; found {activation!r}")
    key = activation.strip().lower().replace("-", "_")
    if key in _REFUSED:
        raise InputError(f"activation {activation!r} is not allowed: {_REFUSED[key]}. "
                         f"Use a smooth one: {', '.join(ACTIVATIONS)} (softplus is the smooth relu)")
    if key not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    return key, ACTIVATIONS[key]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise InputTypeError(f"{type(obj).__name__} is not JSON data")


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _digest(spec: Mapping[str, Any], arrays: Sequence[Tuple[str, np.ndarray]]) -> str:
    """SHA-256 over the canonical JSON of ``spec`` and the named arrays (name, shape, float64 bytes)."""
    h = hashlib.sha256()
    h.update(FILE_FORMAT.encode() + b"\0")
    h.update(_canonical_json(spec).encode())
    for key, arr in arrays:
        a = np.ascontiguousarray(arr, dtype="<f8")
        h.update(b"\0" + key.encode() + b"\0" + _canonical_json(list(a.shape)).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


# =============================================================================
# the system
# =============================================================================

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
    ``2 sum_k s_k s_{k+1}`` multiply-adds, one scratch vector allocated per call); a
    non-separable H runs the forward pass twice per state when an integrator asks for
    ``dH/dq`` and ``dH/dp`` separately. Measured for 200-200 tanh hidden layers (one CPU core,
    ndof = 1 or 4): about 14 us per ``dHdq`` or ``dHdp`` call and 8 us per ``hamiltonian``
    (torch autograd: about 120 us per single state). Results do not depend on the thread
    count or the ensemble size, and no sum is reassociated, so on a given platform they are
    reproducible bit for bit.

    For a separable model, :meth:`split_energy` and the recorded kinetic/potential energies
    use the convention ``T(0) = 0``: they are ``T(p) - T(0)`` and ``V(q) + T(0)`` (their sum
    is H exactly).
    """

    name = ""
    separable = False
    dHdq = staticmethod(_learned_dHdq)
    dHdp = staticmethod(_learned_dHdp)
    hamiltonian = staticmethod(_learned_H)

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
        self.activation, code = _activation_code(activation)

        if not isinstance(networks, Mapping):
            raise InputTypeError(f"networks must be a dict of name -> [(W, b), ...], found {type(networks).__name__}")
        expected = _NETWORKS[self.kind]
        if set(networks) != set(expected):
            hint = ("a separable H = T(p) + V(q) needs networks {'T': ..., 'V': ...}" if self.separable else
                    "a non-separable H needs networks {'H': ...} (or pass separable=True with 'T' and 'V')")
            raise InputError(f"networks has keys {sorted(networks)}, expected {list(expected)}: {hint}")
        n_in = n if self.separable else 2 * n
        source = {"H": f"[q, p] of 2 * ndof = 2 * {n}", "T": f"p of ndof = {n}", "V": f"q of ndof = {n}"}
        self.networks: Dict[str, Tuple[Tuple[np.ndarray, np.ndarray], ...]] = {
            net: _check_layers(net, networks[net], n_in, source[net]) for net in expected}
        self.sizes = {net: (n_in,) + tuple(W.shape[0] for W, _ in layers) for net, layers in self.networks.items()}

        if metadata is None:
            metadata = {}
        if not isinstance(metadata, Mapping):
            raise InputTypeError(f"metadata must be a dict of JSON data, found {type(metadata).__name__}")
        try:
            self.metadata: Dict[str, Any] = json.loads(json.dumps(dict(metadata), default=_json_default,
                                                                  allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InputError(f"metadata must be JSON data (str, finite numbers, bool, None, lists, dicts): "
                             f"{exc}; convert other objects (paths, NaN losses) to strings or None") from None

        self._default = self._check_default(default_state)
        self._masses = self._check_masses(masses)
        self.params = _pack(self.kind, code, n, [self.networks[net] for net in expected])
        self.model_hash = _digest(self._spec(), self._arrays())

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
            existing = registry.factory(self.name)
            if isinstance(existing, _LearnedFactory) and existing.system.model_hash == self.model_hash:
                return existing.system
        registry.register(self.name, _LearnedFactory(self), replace=replace)
        return self

    # -- files ------------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> str:
        """Write the model to ``path`` (any extension; ``.hnn`` by convention) atomically.

        The file is an uncompressed ``.npz`` of plain arrays and a JSON header (module
        docstring); :meth:`load` reads it without executing code. Returns the path.
        """
        path = os.fspath(path)
        header = dict(self._spec(), sha256=self.model_hash)
        payload = {"header": np.frombuffer(_canonical_json(header).encode(), dtype=np.uint8)}
        payload.update({key: np.ascontiguousarray(arr, dtype="<f8") for key, arr in self._arrays()})
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".hnn", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **payload)  # float64 and uint8 arrays only: nothing is pickled
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "LearnedSystem":
        """Read a model written by :meth:`save`; raises :class:`ModelFileError` for anything
        else (no code is executed: pickled content is refused)."""
        return _read_model(os.fspath(path))


class _LearnedFactory:
    """Registry entry of a learned system: ``factory()`` returns the instance itself."""

    def __init__(self, system: LearnedSystem):
        self.system = system
        self.separable = system.separable
        self.defaults: Dict[str, float] = {}

    def __call__(self, model_hash: Optional[str] = None) -> LearnedSystem:
        if model_hash is not None and model_hash != self.system.model_hash:
            raise InputError(f"system {self.system.name!r} is registered with model hash "
                             f"{self.system.model_hash[:12]}..., not {str(model_hash)[:12]}...: "
                             "a different model was registered under this name; load the right file")
        return self.system

    def __repr__(self) -> str:
        return f"<learned system {self.system.name!r} sha256={self.system.model_hash[:12]}>"


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


# =============================================================================
# reading
# =============================================================================

_PICKLE_HINT = ("hnnsim model files never contain pickles, and unpickling can execute arbitrary code, so it is "
                "refused; export the weights with LearnedSystem(...).save(path)")


def _fail(path: str, why: str) -> ModelFileError:
    return ModelFileError(f"{path}: {why}")


def _read_model(path: str) -> LearnedSystem:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if not data:
        raise _fail(path, "the file is empty (truncated?); not an hnnsim model file")
    if data[:1] == b"\x80":  # the PROTO opcode that starts every pickle of protocol >= 2
        raise _fail(path, f"the file is a Python pickle. {_PICKLE_HINT}")
    if data[:4] != b"PK\x03\x04":
        if data[:6] == b"\x93NUMPY":
            raise _fail(path, "the file is a single .npy array, not an hnnsim model file (an .npz written by "
                              "LearnedSystem.save)")
        raise _fail(path, f"not an hnnsim model file: it does not start with a zip signature "
                          f"(first bytes {data[:8]!r}); write models with LearnedSystem.save")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _fail(path, f"truncated or corrupt file ({exc}); save the model again") from None
    with zf:
        names = zf.namelist()
        if any(n.endswith(".pkl") or n.endswith("/data.pkl") for n in names):
            raise _fail(path, f"this looks like a torch checkpoint (torch.save; it holds "
                              f"{next(n for n in names if n.endswith('.pkl'))}). {_PICKLE_HINT}")
        if "header.npy" not in names:
            raise _fail(path, f"not an hnnsim model file: no header (members: {', '.join(names[:6])}); "
                              "write models with LearnedSystem.save")
        bad = [n for n in names if not n.endswith(".npy")]
        if bad:
            raise _fail(path, f"unexpected member(s) {', '.join(bad)}: not an hnnsim model file")
        arrays: Dict[str, np.ndarray] = {}
        for member in names:
            try:
                raw = zf.read(member)  # checks the zip CRC
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
                raise _fail(path, f"corrupt or modified file ({exc}); the bytes changed after it was saved") from None
            try:
                arrays[member[:-4]] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise _fail(path, f"member {member} is an object array (pickled data). {_PICKLE_HINT}") from None
                raise _fail(path, f"member {member} is not a valid array ({exc})") from None
            except (OSError, EOFError) as exc:
                raise _fail(path, f"member {member} is truncated ({exc})") from None
    return _from_arrays(path, arrays)


def _from_arrays(path: str, arrays: Dict[str, np.ndarray]) -> LearnedSystem:
    raw = arrays.pop("header")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _fail(path, f"header must be uint8 JSON bytes, found {raw.dtype} {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"the header is not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise _fail(path, f"not an hnnsim model file: format is {found!r}, expected {FILE_FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, f"invalid format version {version!r}")
    if version > FILE_VERSION:
        raise _fail(path, f"format version {version} was written by a newer hnnsim; this one reads version "
                          f"{FILE_VERSION}: upgrade hnnsim")
    required = {"name": str, "shape": list, "kind": str, "activation": str, "networks": dict, "masses": bool,
                "metadata": dict, "sha256": str}
    for key, typ in required.items():
        if not isinstance(header.get(key), typ):
            raise _fail(path, f"header field {key!r} must be a {typ.__name__}, found {header.get(key)!r}")
    kind = header["kind"]
    if kind not in _NETWORKS or set(header["networks"]) != set(_NETWORKS[kind]):
        raise _fail(path, f"header kind {kind!r} with networks {sorted(header['networks'])} is not valid")
    expected: List[str] = []
    networks: Dict[str, List[Tuple[np.ndarray, np.ndarray]]] = {}
    for net in _NETWORKS[kind]:
        sizes = header["networks"][net].get("sizes") if isinstance(header["networks"][net], dict) else None
        if not (isinstance(sizes, list) and len(sizes) >= 2 and all(isinstance(s, int) for s in sizes)):
            raise _fail(path, f"header sizes of network {net!r} are not a list of layer sizes: {sizes!r}")
        layers = []
        for k in range(len(sizes) - 1):
            wkey, bkey = f"{net}.{k}.weight", f"{net}.{k}.bias"
            expected += [wkey, bkey]
            if wkey not in arrays or bkey not in arrays:
                raise _fail(path, f"array {wkey if wkey not in arrays else bkey} is missing (truncated file?)")
            W, b = arrays[wkey], arrays[bkey]
            if W.dtype != np.float64 or W.shape != (sizes[k + 1], sizes[k]) or b.dtype != np.float64 \
                    or b.shape != (sizes[k + 1],):
                raise _fail(path, f"layer {net}.{k} has {W.dtype} {W.shape} / {b.dtype} {b.shape}; the header says "
                                  f"float64 ({sizes[k + 1]}, {sizes[k]}) / ({sizes[k + 1]},)")
            layers.append((W, b))
        networks[net] = layers
    expected += ["default_state.q", "default_state.p"] + (["masses"] if header["masses"] else [])
    missing = [k for k in expected if k not in arrays]
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise _fail(path, f"arrays do not match the header: missing {missing}, unexpected {extra}")
    spec = {k: v for k, v in header.items() if k != "sha256"}
    ordered = [(k, arrays[k]) for k in expected]
    digest = _digest(spec, ordered)
    if digest != header["sha256"]:
        raise _fail(path, f"hash mismatch: the header records sha256 {header['sha256'][:16]}... but the content hashes "
                          f"to {digest[:16]}...; the file was modified (tampered or corrupted) after it was saved")
    try:
        system = LearnedSystem(header["name"], tuple(header["shape"]), networks, activation=header["activation"],
                               separable=kind == KIND_SEPARABLE, metadata=header["metadata"],
                               default_state=(arrays["default_state.q"], arrays["default_state.p"]),
                               masses=arrays.get("masses"))
    except (TypeError, ValueError) as exc:
        raise _fail(path, f"the stored model is invalid: {exc}") from None
    if system.model_hash != digest or set(spec) != set(system._spec()):
        raise _fail(path, "the header has fields or values that LearnedSystem.save does not write (unknown "
                          "fields, non-canonical numbers); it was not written by this version of hnnsim")
    return system
