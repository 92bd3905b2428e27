r"""Numba kernels of a learned Hamiltonian: a multilayer perceptron and its gradient,
evaluated from one flat float64 ``params`` array (:mod:`systems.network_layout` packs it).

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

Here ``n = ndof = N * D`` and q, p are the flattened ``(N, D)`` state.

Kernels: :func:`learned_grad` (``gq, gp`` = dH/dq, dH/dp from one forward and one backward
pass: the input gradient of :math:`f_H` holds both), :func:`learned_dHdq` and
:func:`learned_dHdp` (the member functions, the same bits as ``learned_grad``) and
:func:`learned_H`; :mod:`systems.network_batch` evaluates blocks of members with the same
bits. ``tanh`` is :func:`systems.vector_math.tanh` (< 1 ulp, vectorised), the other
activations the C library's functions. Hidden activations
:math:`\sigma`: ``tanh``, ``softplus`` (:math:`\log(1 + e^z)`, evaluated stably; torch's
``nn.Softplus`` switches to the identity above ``z = 20``, a difference below ``3e-9``),
``sigmoid`` and ``sin``. ``relu`` is refused: its second derivative vanishes, so the learned
vector field :math:`J\nabla H` is piecewise constant.
"""

from __future__ import annotations

import math
from typing import Dict

import numba as nb
import numpy as np

from .vector_math import tanh as _vtanh

#: Activation names accepted for hidden layers and their kernel codes: the one table of
#: activations (``hnnsim.learn.models`` builds its torch modules from these names).
ACTIVATIONS: Dict[str, int] = {"tanh": 0, "softplus": 1, "sigmoid": 2, "sin": 3}
_TANH, _SOFTPLUS, _SIGMOID, _SIN = 0, 1, 2, 3


@nb.njit(cache=True, error_model="numpy")
def _activate(code, z, d):
    """In place ``z[:] = sigma(z)`` and ``d[:] = sigma'(z)``; every branch propagates NaN."""
    n = z.shape[0]
    if code == _TANH:  # systems.vector_math.tanh: < 1 ulp and vectorised (libm's is ~5x slower)
        for i in range(n):
            t = _vtanh(z[i])
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


# Summation order (the contract shared with the batch view, :mod:`systems.network_batch`)
# ------------------------------------------------------------------------------------
# Every pre-activation and every gradient entry is one sum evaluated strictly left to right,
# each product rounded on its own (no FMA, no fastmath):
#
# * forward, hidden layer k:  z_i = (((b_i + W[i,0] a_0) + W[i,1] a_1) + ...)
# * backward, hidden layer k: h_j = ((((0 + W[0,j] g_0) + W[1,j] g_1) + ...) * sigma'(z_j)
# * last layer:               g_j = W[0,j] * sigma'(z_j);  input gradient: like h without sigma'
#
# The member functions below vectorise each sum over the *outputs* (``y += w * x`` over
# contiguous rows of W or W^T) and unroll the reduction by four as one left-to-right
# expression (one load and store of ``y`` per four terms); the batch functions vectorise over
# *members*. Both evaluate the same operations in the same order for every output, so a
# member's gradient is bit-identical whichever path, block size or block position computes it.
# The loops index array *views* with the bare loop counter, which LLVM vectorises (about 6x
# faster than indexing ``params[offset + i]``).


@nb.njit(cache=True, error_model="numpy")
def _acc_rows(z, M, r0, x, nx):
    """``z[i] += M[r0, i] x[0] + M[r0 + 1, i] x[1] + ...`` (``nx`` terms), added one by one
    in that order (unrolled by four as a single left-to-right expression)."""
    m = z.shape[0]
    j = 0
    while j + 4 <= nx:
        a0 = M[r0 + j]
        a1 = M[r0 + j + 1]
        a2 = M[r0 + j + 2]
        a3 = M[r0 + j + 3]
        x0 = x[j]
        x1 = x[j + 1]
        x2 = x[j + 2]
        x3 = x[j + 3]
        for i in range(m):
            z[i] = (((z[i] + a0[i] * x0) + a1[i] * x1) + a2[i] * x2) + a3[i] * x3
        j += 4
    while j < nx:
        a0 = M[r0 + j]
        x0 = x[j]
        for i in range(m):
            z[i] = z[i] + a0[i] * x0
        j += 1


@nb.njit(cache=True, error_model="numpy")
def _forward(params, o, x1, x2, n1, n2, buf):
    """Evaluate the network whose block starts at ``params[o]`` on the input
    ``(x1[:n1], x2[:n2])``; return the scalar output.

    ``buf`` (length at least ``params[4]``) receives two ping-pong activation vectors of the
    widest layer (``params[7]``) at offsets 0 and ``widest``, and from ``2 * widest`` the
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
    _acc_rows(z, Wt, 0, x1, n1)
    _acc_rows(z, Wt, n1, x2, n2)
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
        _acc_rows(z, Wt, 0, a, s_in)
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
def _backward(params, o, buf, out):
    """``out[:s_0]`` = gradient of the network output with respect to its whole input, by
    reverse mode through the layers, from the derivatives :func:`_forward` left in ``buf``."""
    widest = int(params[7])
    L = int(params[o])
    sz = o + 1
    offs = o + L + 2
    s_in = int(params[sz])
    if L == 1:
        w = int(params[offs])
        for j in range(s_in):
            out[j] = params[w + j]
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
        _acc_rows(h, Wk, 0, g, s_out)
        for j in range(s):
            h[j] *= d[j]
        cur = nxt
    # first layer: out = W_0^T g
    s_out = s
    w = int(params[offs])
    W0 = params[w:w + s_out * s_in].reshape((s_out, s_in))
    g = buf[cur:cur + s_out]
    o_ = out[0:s_in]
    for j in range(s_in):
        o_[j] = 0.0
    _acc_rows(o_, W0, 0, g, s_out)


@nb.njit(cache=True, error_model="numpy")
def learned_grad(q, p, params, iw, fw, gq, gp):
    """``gq[:] = dH/dq`` and ``gp[:] = dH/dp`` together: for a non-separable H one forward and
    one backward pass (the input gradient of H(q, p) holds both); for H = T(p) + V(q) one
    pass per network. NaN if a length is wrong. :func:`learned_dHdq` and
    :func:`learned_dHdp` return the same bits (they run this arithmetic)."""
    n = q.shape[0]
    if n != int(params[3]) or p.shape[0] != n or gq.shape[0] != n or gp.shape[0] != n:
        gq[:] = np.nan
        gp[:] = np.nan
        return
    buf = np.empty(int(params[4]) + 2 * n)
    g = buf[int(params[4]):]
    if params[1] == 1.0:  # separable: dH/dq = dV/dq, dH/dp = dT/dp
        o = int(params[6])
        _forward(params, o, q, q, n, 0, buf)
        _backward(params, o, buf, gq)
        o = int(params[5])
        _forward(params, o, p, p, n, 0, buf)
        _backward(params, o, buf, gp)
    else:
        o = int(params[5])
        _forward(params, o, q, p, n, n, buf)
        _backward(params, o, buf, g)
        for j in range(n):
            gq[j] = g[j]
            gp[j] = g[n + j]


@nb.njit(cache=True, error_model="numpy")
def learned_dHdq(q, p, params, iw, fw, out):
    """``out[:] = dH/dq`` of the network packed in ``params`` (NaN if ``len(q)`` is wrong);
    the bits of :func:`learned_grad`."""
    n = q.shape[0]
    if n != int(params[3]) or p.shape[0] != n or out.shape[0] != n:
        out[:] = np.nan
        return
    buf = np.empty(int(params[4]) + 2 * n)
    if params[1] == 1.0:  # separable: dH/dq = dV/dq
        o = int(params[6])
        _forward(params, o, q, q, n, 0, buf)
        _backward(params, o, buf, out)
    else:
        g = buf[int(params[4]):]
        o = int(params[5])
        _forward(params, o, q, p, n, n, buf)
        _backward(params, o, buf, g)
        for j in range(n):
            out[j] = g[j]


@nb.njit(cache=True, error_model="numpy")
def learned_dHdp(q, p, params, iw, fw, out):
    """``out[:] = dH/dp`` of the network packed in ``params`` (NaN if ``len(p)`` is wrong);
    the bits of :func:`learned_grad`."""
    n = p.shape[0]
    if n != int(params[3]) or q.shape[0] != n or out.shape[0] != n:
        out[:] = np.nan
        return
    buf = np.empty(int(params[4]) + 2 * n)
    if params[1] == 1.0:  # separable: dH/dp = dT/dp
        o = int(params[5])
        _forward(params, o, p, p, n, 0, buf)
        _backward(params, o, buf, out)
    else:
        g = buf[int(params[4]):]
        o = int(params[5])
        _forward(params, o, q, p, n, n, buf)
        _backward(params, o, buf, g)
        for j in range(n):
            out[j] = g[n + j]


@nb.njit(cache=True, error_model="numpy")
def learned_H(q, p, params, iw, fw):
    """H(q, p) of the network packed in ``params`` (NaN if the state length is wrong)."""
    n = q.shape[0]
    if n != int(params[3]) or p.shape[0] != n:
        return np.nan
    buf = np.empty(int(params[4]))
    if params[1] == 1.0:
        return _forward(params, int(params[5]), p, p, n, 0, buf) + _forward(params, int(params[6]), q, q, n, 0, buf)
    return _forward(params, int(params[5]), q, p, n, n, buf)
