r"""Lane kernels: an ensemble laid out so that its members are the SIMD lanes.

The member kernels (``splitting.py`` and the others) run ``prange`` over members and call a
system's *member* functions ``dHdq(q, p, params, iw, fw, out)`` on one ``[n]`` state at a
time: a step of a one-degree-of-freedom system is a handful of scalar operations and a
libm call, which neither vectorises nor hides its latency. A lane kernel instead copies
``W`` members (:func:`block_width`: up to :data:`WIDTH`) into a block ``Q, P [n, W]``
(members the fastest axis: structure of arrays), runs the whole step loop on that block and
copies them back; blocks run ``prange`` over threads. Every operation of a step is one loop
over the ``W`` lanes, which LLVM turns into packed AVX2 code, the force included when the
system gives *lane* functions over the block::

    dHdq_lanes(Q, P, params, out)       # out[i, l] = dH/dq_i of member l     Q, P, out: float64 [n, W]
    dHdp_lanes(Q, P, params, out)       # out[i, l] = dH/dp_i of member l     (C-contiguous)

How a kernel finds them
-----------------------
``System.kernel_functions`` hands an integrator the member functions only (``integrators``
never imports ``systems``). A system module registers its lane functions here, keyed by its
member ``dHdq`` dispatcher::

    from integrators.lanes import register_lanes
    register_lanes(dHdq, dHdp, dHdq_lanes, dHdp_lanes)

and ``Splitting._run_kernel`` asks :func:`lane_functions` with the ``(dHdq, dHdp)`` it was
given, the workspace and the ensemble size. It gets the lane pair only when both member
functions are the registered ones, the system has no workspace (lane functions carry none:
particle systems parallelise over particles instead), and ``B >= MIN_MEMBERS`` (a single
member runs the member kernel: a block of one vector's 4 lanes costs more; measured, see
:data:`MIN_MEMBERS`). Otherwise it runs its member kernel, unchanged.

Compiled like the member kernels: no ``fastmath`` (every lane, vector or scalar remainder,
performs the same IEEE operations), ``error_model="numpy"``, ``nogil``; not cached (numba
cannot cache a function that takes dispatchers), compiled once per system's lane pair.
Measured on the 2-core development machine (``benchmarks/compare.py``, workload
``ensemble-pendulum``: 10^4 pendulums x 10^3 leapfrog steps): 1.9 ns per member-step on 2
threads, 3.3 on one, about 1.15-1.2 times a hand-written numba lane loop without finite
check or frames (the check is ~5 % of a step, the separate velocity pass ~2 %); the ``sin``
is two thirds of a step.

Contract: the same bits as the member kernel
--------------------------------------------
A member's result never depends on the ensemble's size, its position in it or the thread
count, and equals a single-member run (``B = 1``, the member kernel):

* the lane functions must compute, per lane, exactly the floating-point operations of the
  member functions (the pendulum's use the same ``vector_math.sin_fast`` in both views);
* the kernel performs the member kernel's operations in its order: the same operation
  table, ``p -= (c dt) dH/dq`` and ``q += (c dt) dH/dp`` per coordinate, the force reused by
  consecutive kicks (first-same-as-last), recomputed at the start of every call;
* the finite check is the member kernel's: ``s = 0; s += q_i + p_i`` over ``i``, then
  ``not isfinite(s)`` (as ``not |s| < inf``, one compare, the same decision);
* the last, partial block is padded with copies of its first member; pads are computed and
  discarded, never recorded or written back.

Frames and status are those of the member kernel: ``out_q, out_p [frames, B, n]`` after the
global steps that are multiples of ``every`` (counted from ``step0``), ``status[b] =
(NONFINITE, step)`` for a member whose state stops being finite; such a member stops there
(its state is left at the failing step, its later frames are not written) while the others
go on. Its lane is then overwritten by a copy of a live lane, so that a NaN does not keep
the block on a slow path (a system's lane function may redo non-finite lanes with an exact
scalar function); a block whose members have all failed stops.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numba as nb
import numpy as np

from .base import NONFINITE, first_countdown

#: lanes per block (at most; divided by the degrees of freedom): 64 AVX2 vectors per
#: operation, which hides the fixed cost of a step (calls into the lane functions, loop
#: set-up, the finite check). Measured on the pendulum, leapfrog, one thread, per
#: member-step against 256 lanes: 16 lanes +70 %, 64 lanes +12 %, 512 within noise. A block
#: of a one-degree-of-freedom system (Q, P, force, velocity) takes 8 KiB of L1.
WIDTH = 256
#: smallest ensemble the lane kernel runs (smaller ones, i.e. single members, run the member
#: kernel). Measured, pendulum leapfrog, 2 threads, lane / member kernel time: B = 1: 1.42,
#: B = 2: 0.87, B = 4: 0.49, B = 16: 0.28, B = 128: 0.18 (a block is at least one vector of
#: 4 lanes, so one member pays for four)
MIN_MEMBERS = 2

#: member dHdq dispatcher -> (member dHdp, dHdq_lanes, dHdp_lanes)
LANES: Dict[Any, Tuple[Any, Any, Any]] = {}

DRIFT = 0  # the operation kinds of ``splitting.py`` (which imports this module)
KICK = 1


def register_lanes(dHdq: Any, dHdp: Any, dHdq_lanes: Any, dHdp_lanes: Any) -> None:
    """Declare ``dHdq_lanes, dHdp_lanes`` the lane view of the member functions ``dHdq,
    dHdp`` (numba dispatchers). They must give each lane the member functions' bits."""
    LANES[dHdq] = (dHdp, dHdq_lanes, dHdp_lanes)


def lane_functions(fns: Tuple[Any, ...], iwork: np.ndarray, fwork: np.ndarray,
                   members: int) -> Optional[Tuple[Any, Any]]:
    """``(dHdq_lanes, dHdp_lanes)`` when a lane kernel should run ``members`` members with
    the member functions ``fns = (dHdq, dHdp)`` and this workspace, else ``None``."""
    if members < MIN_MEMBERS or iwork.shape[1] != 0 or fwork.shape[1] != 0:
        return None
    entry = LANES.get(fns[0])
    if entry is None or entry[0] is not fns[1]:
        return None
    return entry[1], entry[2]


@nb.njit(nogil=True, error_model="numpy", inline="always")
def _lane_nonfinite(Q, P, S):
    """1 if some lane's ``sum_i (Q[i, l] + P[i, l])`` (the member kernel's sum, in its order)
    is not finite, else 0; ``S[l]`` holds the sums for ``n > 1``. (The member kernel starts
    its sum at 0.0; ``0.0 + x`` and ``x`` differ at most in the sign of a zero, never in
    finiteness, so the lanes start at the first term: one pass for one degree of freedom.)"""
    n, w = Q.shape
    bad = 0
    if n == 1:
        for l in range(w):
            bad |= 0 if abs(Q[0, l] + P[0, l]) < np.inf else 1
        return bad
    for l in range(w):
        S[l] = Q[0, l] + P[0, l]
    for i in range(1, n - 1):
        for l in range(w):
            S[l] += Q[i, l] + P[i, l]
    for l in range(w):
        S[l] += Q[n - 1, l] + P[n - 1, l]
        bad |= 0 if abs(S[l]) < np.inf else 1
    return bad


@nb.njit(nogil=True, error_model="numpy")
def _lane_finite(Q, P, l):
    """The member kernel's check for lane ``l`` alone (``not nonfinite``)."""
    s = 0.0
    for i in range(Q.shape[0]):
        s += Q[i, l] + P[i, l]
    return abs(s) < np.inf


@nb.njit(nogil=True, error_model="numpy")
def _copy_lane(A, dst, src):
    for i in range(A.shape[0]):
        A[i, dst] = A[i, src]


@nb.njit(nogil=True, error_model="numpy")
def _splitting_block(dHdq_l, dHdp_l, params, kinds, scaled, q, p, b0, m, w, nsteps, step0, every, out_q, out_p,
                     status):
    """Members ``b0 .. b0 + m - 1`` (``m <= w``) as the ``w`` lanes of one block."""
    n = q.shape[1]
    nops = kinds.shape[0]
    Q = np.empty((n, w))
    P = np.empty((n, w))
    G = np.empty((n, w))
    V = np.empty((n, w))
    S = np.empty(w)
    live = np.zeros(w, dtype=np.bool_)  # a real member still running (pads are never live)
    for l in range(w):
        src = b0 + l if l < m else b0
        for i in range(n):
            Q[i, l] = q[src, i]
            P[i, l] = p[src, i]
        live[l] = l < m
    nlive = m
    grad_valid = False
    frame = 0
    countdown = first_countdown(step0, every)
    for k in range(nsteps):
        for op in range(nops):
            c = scaled[op]
            if kinds[op] == DRIFT:
                dHdp_l(Q, P, params, V)
                for i in range(n):
                    for l in range(w):
                        Q[i, l] += c * V[i, l]
                grad_valid = False
            else:
                if not grad_valid:
                    dHdq_l(Q, P, params, G)
                    grad_valid = True
                for i in range(n):
                    for l in range(w):
                        P[i, l] -= c * G[i, l]
        if _lane_nonfinite(Q, P, S):
            # rare: stop the failed members, refill their lanes from a finite one
            good = -1
            for l in range(w):
                if _lane_finite(Q, P, l):
                    good = l
                    if live[l]:
                        break
            for l in range(w):
                if _lane_finite(Q, P, l):
                    continue
                if live[l]:
                    b = b0 + l
                    status[b, 0] = NONFINITE
                    status[b, 1] = step0 + k + 1
                    for i in range(n):
                        q[b, i] = Q[i, l]
                        p[b, i] = P[i, l]
                    live[l] = False
                    nlive -= 1
                if good >= 0:
                    _copy_lane(Q, l, good)
                    _copy_lane(P, l, good)
                    _copy_lane(G, l, good)
            if nlive == 0:
                return
        countdown -= 1
        if countdown == 0:
            countdown = every
            for l in range(m):
                if live[l]:
                    for i in range(n):
                        out_q[frame, b0 + l, i] = Q[i, l]
                        out_p[frame, b0 + l, i] = P[i, l]
            frame += 1
    for l in range(m):
        if live[l]:
            for i in range(n):
                q[b0 + l, i] = Q[i, l]
                p[b0 + l, i] = P[i, l]


@nb.njit(nogil=True, error_model="numpy", parallel=True)
def _splitting_lanes(dHdq_l, dHdp_l, params, kinds, coefs, q, p, dt, nsteps, step0, every, out_q, out_p, status,
                     width):
    B = q.shape[0]
    scaled = coefs * dt
    nblocks = (B + width - 1) // width
    for blk in nb.prange(nblocks):
        b0 = blk * width
        _splitting_block(dHdq_l, dHdp_l, params, kinds, scaled, q, p, b0, min(width, B - b0), width, nsteps, step0,
                         every, out_q, out_p, status)


def block_width(members: int, threads: int, ndof: int = 1) -> int:
    """Lanes per block: at most :data:`WIDTH` (divided by ``ndof``), with the blocks' number a
    multiple of ``threads`` and their width a multiple of 4 (one AVX2 vector), so that few
    lanes are padding and the threads get equal shares. A member's bits do not depend on it."""
    widest = max(4, WIDTH // max(1, ndof))
    threads = max(1, threads)
    blocks = -(-members // widest)
    blocks = -(-blocks // threads) * threads
    return int(min(widest, max(4, -(-(-(-members // blocks)) // 4) * 4)))


def run_splitting(lanes: Tuple[Any, Any], params, kinds, coefs, q, p, dt, nsteps, step0, every, out_q, out_p,
                  status) -> None:
    """The lane kernel of the splitting family: the operation table ``kinds, coefs`` (see
    ``splitting.py``) ``nsteps`` times on every member of ``q, p [B, n]``, blocks of
    :func:`block_width` members over threads. Same arguments, frames and status as the
    member kernel ``splitting._splitting_kernel``, and the same bits."""
    width = block_width(q.shape[0], nb.get_num_threads(), q.shape[1])
    _splitting_lanes(lanes[0], lanes[1], params, kinds, coefs, q, p, dt, nsteps, step0, every, out_q, out_p, status,
                     width)
