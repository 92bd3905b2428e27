r"""Fused and batched gradients: how a kernel learns that a system computes dH/dq and dH/dp
together (one call per state) or for a block of members at once.

``System.kernel_functions`` hands a kernel the member functions ``(dHdq, dHdp)`` only, and
``integrators`` never imports ``systems``. A system module that has more registers it here,
keyed by its member ``dHdq`` dispatcher (separate from :mod:`integrators.lanes`, whose lane
functions serve the splitting kernels)::

    from integrators.batched import register_gradient
    register_gradient(dHdq, dHdp, grad, grad_block, block_scratch)

* ``grad(q, p, params, iw, fw, gq, gp)``: ``gq[:] = dH/dq``, ``gp[:] = dH/dp`` of one member
  (``[n]``), e.g. one forward and one backward pass of a learned network instead of two of
  each. It must give the bits of ``dHdq`` and ``dHdp`` (so a kernel may use either).
* ``grad_block(Q, P, params, GQ, GP, buf)`` (optional): the same for a block of members,
  ``[W, n]`` C-contiguous, a row per member; member ``m``'s column must be
  bit-identical to ``grad`` on its own state, whatever ``W`` and ``m``. It carries no
  workspace; ``buf`` is float64 scratch of ``block_scratch(params, W)`` floats (a Python
  function), allocated once per block by the kernel.

:func:`fused_gradient` and :func:`block_gradient` answer for the ``(dHdq, dHdp)`` a kernel was
given (both must be the registered ones). The implicit midpoint, Tao and RK4 kernels use the
fused function when there is one; the implicit midpoint and RK4 run blocks of :data:`WIDTH`
members through ``grad_block`` for ensembles of at least :data:`MIN_MEMBERS` members (Tao
runs the fused member kernel). A member's
result never depends on the path, the ensemble size, its position or the thread count.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numba as nb

#: members per block of a batched kernel (measured for a 2-200-200-1 network: per-member
#: cost 13.4 / 11.0 / 9.5 us at 16 / 32 / 64 members per block, one core)
WIDTH = 32
#: smallest ensemble run in blocks (smaller ones run the member kernel, fused)
MIN_MEMBERS = 16

#: member dHdq dispatcher -> (member dHdp, grad, grad_block or None, block_scratch or None)
GRADIENTS: Dict[Any, Tuple[Any, Any, Any, Any]] = {}


def register_gradient(dHdq: Any, dHdp: Any, grad: Any, grad_block: Any = None, block_scratch: Any = None) -> None:
    """Declare that ``grad`` (and ``grad_block``, with its scratch size ``block_scratch(params,
    W)``) compute what ``dHdq`` and ``dHdp`` do."""
    if (grad_block is None) != (block_scratch is None):
        raise ValueError("grad_block and block_scratch go together")
    GRADIENTS[dHdq] = (dHdp, grad, grad_block, block_scratch)


def fused_gradient(fns: Tuple[Any, Any]) -> Optional[Any]:
    """The registered ``grad`` for member functions ``fns = (dHdq, dHdp)``, or None."""
    entry = GRADIENTS.get(fns[0])
    if entry is None or entry[0] is not fns[1]:
        return None
    return entry[1]


def block_gradient(fns: Tuple[Any, Any], iwork: Any, fwork: Any, members: int) -> Optional[Tuple[Any, Any]]:
    """``(grad_block, block_scratch)`` when the system registered them, has no workspace and
    the ensemble has at least :data:`MIN_MEMBERS` members, else None."""
    entry = GRADIENTS.get(fns[0])
    if entry is None or entry[0] is not fns[1] or entry[2] is None:
        return None
    if iwork.shape[1] > 0 or fwork.shape[1] > 0 or members < MIN_MEMBERS:
        return None
    return entry[2], entry[3]


# Kernel helpers: one kernel source calls ``gradient(f1, f2, q, p, params, iw, fw, gq, gp)``
# and is compiled once with each (the separate pair keeps the old call order, dH/dp first).

@nb.njit(error_model="numpy")
def separate_gradient(dHdq, dHdp, q, p, params, iw, fw, gq, gp):
    """``gp = dH/dp``, then ``gq = dH/dq``, by the two member functions."""
    dHdp(q, p, params, iw, fw, gp)
    dHdq(q, p, params, iw, fw, gq)


@nb.njit(error_model="numpy")
def fused_call(grad, unused, q, p, params, iw, fw, gq, gp):
    """Both gradients by the system's fused ``grad`` (passed as the first function)."""
    grad(q, p, params, iw, fw, gq, gp)
