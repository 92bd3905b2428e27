r"""Batch view of a learned network: the gradient of H for a block of ensemble members at once.

A block holds ``W`` members as the rows of C-contiguous ``Q, P, GQ, GP [W, n]`` (member
``m`` is row ``m``, as in the ensemble arrays). Each layer is one matrix-matrix product
``Z[W, s_out] = b + A[W, s_in] W_k^T`` (and ``G W_k`` in the backward pass), forward and
backward fused, dH/dq and dH/dp from one backward pass::

    learned_grad_block(Q, P, params, GQ, GP, buf)   # GQ[m], GP[m] = dH/dq, dH/dp of member m
    block_scratch(params, W)                        # -> floats of buf (Python)

Bits
----
Every output is the same left-to-right sum as in the member view
(:mod:`systems.network_kernels`, "Summation order"): the loops vectorise over a layer's
outputs, as the member view does, and four members share every load of a weight row (the
member view is the ``W = 1`` case of the same loops: leftover members run it), so member
``m``'s gradient is bit-identical to :func:`~systems.network_kernels.learned_grad` on its own
state, whatever ``W`` and ``m``. No BLAS is called (a BLAS ``gemm`` may change its summation
order with the blocking), so no BLAS thread pool competes with numba's threads.

Measured (2-200-200-1, tanh, one core of the shared 2-core EPYC, interleaved): a 200 x 200
layer product costs about 3.8 us per member this way, against 4.7 us with the members as
the fastest axis (``Z[s, W]``, loops vectorised over members) and 6.5 us one member at a time.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .network_kernels import _acc_rows, _activate


@nb.njit(cache=True, error_model="numpy")
def _acc_members(Z, M, r0, X, nx):
    """``Z[w, i] += M[r0, i] X[w, 0] + M[r0 + 1, i] X[w, 1] + ...`` (``nx`` terms) added one by
    one in that order, for every member ``w`` (row of ``Z`` and ``X``) and output ``i``.

    Four members at a time share each load of a row of ``M`` (the weights stream through
    the cache once per four members instead of once per member); the reduction is unrolled
    by four as one left-to-right expression; leftover members run the member view's loop
    (:func:`systems.network_kernels._acc_rows`), which this is, per member, term for term.
    """
    Wd = Z.shape[0]
    s = Z.shape[1]
    w = 0
    while w + 4 <= Wd:
        za = Z[w]
        zb = Z[w + 1]
        zc = Z[w + 2]
        zd = Z[w + 3]
        xa = X[w]
        xb = X[w + 1]
        xc = X[w + 2]
        xd = X[w + 3]
        k = 0
        while k + 4 <= nx:
            a0 = M[r0 + k]
            a1 = M[r0 + k + 1]
            a2 = M[r0 + k + 2]
            a3 = M[r0 + k + 3]
            p0 = xa[k]
            p1 = xa[k + 1]
            p2 = xa[k + 2]
            p3 = xa[k + 3]
            q0 = xb[k]
            q1 = xb[k + 1]
            q2 = xb[k + 2]
            q3 = xb[k + 3]
            u0 = xc[k]
            u1 = xc[k + 1]
            u2 = xc[k + 2]
            u3 = xc[k + 3]
            v0 = xd[k]
            v1 = xd[k + 1]
            v2 = xd[k + 2]
            v3 = xd[k + 3]
            for i in range(s):
                c0 = a0[i]
                c1 = a1[i]
                c2 = a2[i]
                c3 = a3[i]
                za[i] = (((za[i] + c0 * p0) + c1 * p1) + c2 * p2) + c3 * p3
                zb[i] = (((zb[i] + c0 * q0) + c1 * q1) + c2 * q2) + c3 * q3
                zc[i] = (((zc[i] + c0 * u0) + c1 * u1) + c2 * u2) + c3 * u3
                zd[i] = (((zd[i] + c0 * v0) + c1 * v1) + c2 * v2) + c3 * v3
            k += 4
        while k < nx:
            a0 = M[r0 + k]
            p0 = xa[k]
            q0 = xb[k]
            u0 = xc[k]
            v0 = xd[k]
            for i in range(s):
                c0 = a0[i]
                za[i] = za[i] + c0 * p0
                zb[i] = zb[i] + c0 * q0
                zc[i] = zc[i] + c0 * u0
                zd[i] = zd[i] + c0 * v0
            k += 1
        w += 4
    while w < Wd:
        _acc_rows(Z[w], M, r0, X[w], nx)
        w += 1


@nb.njit(cache=True, error_model="numpy")
def _grad_block_net(params, o, X1, X2, n1, n2, buf, OUT):
    """Forward and backward pass of the network at ``params[o]`` for a block of members:
    input ``(X1[:, :n1], X2[:, :n2])`` (``[W, .]``); ``OUT[:, :s_0]`` = input gradient.
    ``buf``: at least ``params[4] * W`` floats, the member view's scratch with every vector
    replaced by a ``[W, s]`` block."""
    W = OUT.shape[0]
    code = int(params[2])
    widest = int(params[7])
    L = int(params[o])
    sz = o + 1
    offs = o + L + 2
    s_in = n1 + n2
    if L == 1:  # affine: the gradient is W_0
        w = int(params[offs])
        for m in range(W):
            for j in range(s_in):
                OUT[m, j] = params[w + j]
        return
    # forward: Z = b + A W^T, hidden activations ping-pong at rows 0 and widest
    s_out = int(params[sz + 1])
    w = int(params[offs])
    Wt = params[w + s_out * s_in:w + 2 * s_out * s_in].reshape((s_in, s_out))
    b = params[w + 2 * s_out * s_in:w + 2 * s_out * s_in + s_out]
    Z = buf[0:s_out * W].reshape((W, s_out))
    for m in range(W):
        for i in range(s_out):
            Z[m, i] = b[i]
    _acc_members(Z, Wt, 0, X1, n1)
    _acc_members(Z, Wt, n1, X2, n2)
    dpos = 2 * widest
    _activate(code, buf[0:s_out * W], buf[dpos * W:(dpos + s_out) * W])
    dpos += s_out
    cur = 0
    for k in range(1, L - 1):
        s_in_k = s_out
        s_out = int(params[sz + k + 1])
        w = int(params[offs + k])
        Wt = params[w + s_out * s_in_k:w + 2 * s_out * s_in_k].reshape((s_in_k, s_out))
        b = params[w + 2 * s_out * s_in_k:w + 2 * s_out * s_in_k + s_out]
        nxt = widest - cur
        A = buf[cur * W:(cur + s_in_k) * W].reshape((W, s_in_k))
        Z = buf[nxt * W:(nxt + s_out) * W].reshape((W, s_out))
        for m in range(W):
            for i in range(s_out):
                Z[m, i] = b[i]
        _acc_members(Z, Wt, 0, A, s_in_k)
        _activate(code, buf[nxt * W:(nxt + s_out) * W], buf[dpos * W:(dpos + s_out) * W])
        dpos += s_out
        cur = nxt
    # backward: G = w_last * sigma'(z_{L-1})
    s = s_out
    dpos -= s
    w = int(params[offs + L - 1])
    wl = params[w:w + s]
    D = buf[dpos * W:(dpos + s) * W].reshape((W, s))
    cur = 0
    G = buf[0:s * W].reshape((W, s))
    for m in range(W):
        for j in range(s):
            G[m, j] = wl[j] * D[m, j]
    for k in range(L - 2, 0, -1):
        s_out = s
        s = int(params[sz + k])
        dpos -= s
        w = int(params[offs + k])
        Wk = params[w:w + s_out * s].reshape((s_out, s))
        nxt = widest - cur
        G = buf[cur * W:(cur + s_out) * W].reshape((W, s_out))
        Hh = buf[nxt * W:(nxt + s) * W].reshape((W, s))
        D = buf[dpos * W:(dpos + s) * W].reshape((W, s))
        for m in range(W):
            for j in range(s):
                Hh[m, j] = 0.0
        _acc_members(Hh, Wk, 0, G, s_out)
        for m in range(W):
            for j in range(s):
                Hh[m, j] *= D[m, j]
        cur = nxt
    # input gradient: OUT = G W_0
    s_out = s
    w = int(params[offs])
    W0 = params[w:w + s_out * s_in].reshape((s_out, s_in))
    G = buf[cur * W:(cur + s_out) * W].reshape((W, s_out))
    for m in range(W):
        for j in range(s_in):
            OUT[m, j] = 0.0
    _acc_members(OUT, W0, 0, G, s_out)


def block_scratch(params, width: int) -> int:
    """Floats of scratch :func:`learned_grad_block` needs for blocks of ``width`` members."""
    return (int(params[4]) + 2 * int(params[3])) * int(width)


@nb.njit(cache=True, error_model="numpy")
def learned_grad_block(Q, P, params, GQ, GP, buf):
    """``GQ[m] = dH/dq`` and ``GP[m] = dH/dp`` of member ``m`` for a block ``[W, n]``; each row
    bit-identical to :func:`systems.network_kernels.learned_grad` on that member. ``buf``:
    scratch of at least :func:`block_scratch` floats (allocated once by the caller). NaN if
    a shape is wrong."""
    W, n = Q.shape
    scratch = int(params[4])
    if (n != int(params[3]) or P.shape[1] != n or GQ.shape[1] != n or GP.shape[1] != n
            or P.shape[0] != W or GQ.shape[0] != W or GP.shape[0] != W or buf.shape[0] < (scratch + 2 * n) * W):
        GQ[:, :] = np.nan
        GP[:, :] = np.nan
        return
    if params[1] == 1.0:  # separable: V on q, T on p
        _grad_block_net(params, int(params[6]), Q, Q, n, 0, buf, GQ)
        _grad_block_net(params, int(params[5]), P, P, n, 0, buf, GP)
    else:
        OUT = buf[scratch * W:(scratch + 2 * n) * W].reshape((W, 2 * n))
        _grad_block_net(params, int(params[5]), Q, P, n, n, buf, OUT)
        for m in range(W):
            for j in range(n):
                GQ[m, j] = OUT[m, j]
                GP[m, j] = OUT[m, n + j]
