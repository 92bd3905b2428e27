r"""Branch-free, SIMD-vectorisable ``sin``, ``cos``, ``sincos``, ``exp`` and ``tanh`` for numba.

Why
---
Numba lowers ``math.sin``/``math.cos``/``math.exp``/``math.tanh`` to calls into the C library
(our LLVM has no SVML), and a loop containing such a call is not vectorised. The functions
here are written only in IEEE arithmetic that LLVM's loop vectoriser understands (``fma``,
``rint``, integer bit operations, compares turned into ``select``, one table gather), so a
plain loop ::

    @numba.njit(error_model="numpy")
    def f(x, out):
        for i in range(x.size):
            out[i] = vector_math.sin(x[i])

compiles to packed AVX2 code (4 doubles per instruction) *without* ``fastmath``.

Accuracy and semantics
----------------------
Measured maximum errors (``tests/test_vector_math.py``: 10^7 points per function over the
whole double range against libm's long-double functions, and 2000 hard points each against
``mpmath``): ``sin`` 0.77 ulp, ``cos`` 0.79 ulp, ``exp`` 0.81 ulp, ``tanh`` 0.82 ulp, hard
cases of the ``sin``/``cos`` argument reduction included (correct rounding would be 0.5).
IEEE special values are kept: ``sin(-0) = -0``, ``tanh(-0) = -0``,
``sin(+-inf) = cos(+-inf) = nan``, ``exp(inf) = inf``, ``exp(-inf) = 0``,
``tanh(+-inf) = +-1``, NaN in gives NaN out, ``exp`` overflows to ``inf`` and underflows
gradually through the subnormals to ``0``; subnormal arguments are handled exactly
(``sin(x) = tanh(x) = x``, ``cos(x) = exp(x) = 1``).

No ``fastmath`` flag is used: every fused multiply-add is explicit (``llvm.fma``), so a vector
lane, the scalar remainder loop and a single call evaluate *exactly* the same floating-point
operations and give bit-identical results, whatever the position of an element in an array
(ensemble members do not depend on their neighbours). Divisions go through :func:`_fdiv` (a
bare ``fdiv``), so callers compiled with numba's default ``error_model="python"`` get no
zero-division branch and vectorise too.

Limitations
-----------
* Do not call these from a ``fastmath=True`` function: the functions are inlined into the
  caller (``inline="always"``, needed for the loop vectoriser to see them) and compiled with
  the caller's flags, and reassociation destroys the error-free transformations of the
  argument reductions (results off by a few ulp or worse, and no longer bit-reproducible).
* Each call site recompiles the inlined body (about 0.3 s for ``exp``/``tanh``, 0.9 s for
  ``sin``/``cos`` per kernel, once; numba's cache keeps it).
* ``sin``/``cos`` pay for the full Payne-Hanek reduction on every element (that is what
  keeps them branch-free, hence vectorised, for any argument): about 5.2 ns per element on
  the 2-core AMD EPYC (znver3) development machine, whatever the range of the arguments,
  against about 12 ns (``|x| < 1``) to 20-27 ns (``|x| < 100``, unpredictable branches) to
  70 ns (huge ``|x|``) for glibc's ``sin`` called from numba. ``exp`` costs about 2 ns
  (glibc: 5 ns) and ``tanh`` about 3.2 ns (glibc: 14-23 ns).

Algorithms (our own implementation of textbook techniques)
----------------------------------------------------------
``sin``/``cos``: argument reduction ``|x| = (N + y) pi/2`` with ``|y| <= 1/2`` by an exact
Payne-Hanek reduction for *every* ``|x| >= pi/4`` (branch-free, so a loop stays vectorised
whatever its arguments): ``|x| = M 2^(e-52)`` with an integer mantissa ``M``; a table holds,
for each binary exponent ``e``, the bits of ``2/pi`` that matter for ``x 2/pi mod 4`` as four
53-bit chunks ``C_k``; the products ``M C_k`` are split exactly with FMA, their integer parts
are dropped (only ``N mod 4`` is kept) and the fractions are summed on fixed grids
(``2^-51``, ``2^-104``) so that every addition is exact except those below ``2^-100``
(errors below ``2^-150``): enough for the hardest double (``x = 6381956970095103 * 2^797``,
``cos x = -4.7e-19``). ``2/pi`` is computed at import from Machin's formula in Python
integers. The reduced argument ``r = y pi/2`` is a double-double; minimax polynomials (degree
13 for ``sin``, 14 for ``cos`` on ``[-pi/4, pi/4]``, fitted by a Remez exchange in ``mpmath``
with the coefficients rounded to double) take the low word into account. The quadrant selects
``+-sin(r)`` or ``+-cos(r)``; both polynomials are always evaluated (the price of being
branch-free), so :func:`sincos` costs the same as one of them.

``sin_fast``/``cos_fast`` (the pendulum's ``sin`` and ``cos``, in its member and lane
functions alike): for ``|x| < FAST_BOUND = 2^20`` a three-part Cody-Waite reduction
(``x - N pi/2`` with ``N = rint(x 2/pi)``, the first product exact by FMA, the rest as a
double-double; see ``_reduce_pio2_fast``) into the same kernel and quadrant selection as
``sin``/``cos``; beyond, ``sin``/``cos`` themselves. Measured (``tests/test_lanes.py``, 10^7
points weighted to ``|x| < 2^20``, and the doubles closest to multiples of pi/2 up to 2^21
against ``mpmath``): ``sin_fast`` 0.79 ulp, ``cos_fast`` 0.79 ulp. ``sin_fast_core`` (the
range test left to the caller: ``beyond_fast``) costs about 2.0 ns per element in a loop
against 5.2 ns for ``sin``. Not bit for bit ``sin`` (except for ``|x| < pi/4`` and beyond the
bound): a different function of ``x``, used consistently wherever a system uses it.

``exp``: Cody-Waite reduction ``x = n ln2 + r`` (``|r| <= ln2/2``, the first step exact by FMA,
the rounding error of the second carried along), ``expm1(r)`` by a degree-12 minimax
polynomial (Estrin scheme), and the result ``2^n (1 + s)`` formed by one FMA and scaled by two
powers of two ``2^n1 2^n2`` (``n1 + n2 = n``) built from the bits, so that overflow and
gradual underflow happen in the last product (for a subnormal result that is a second
rounding, of the 53-bit value to fewer bits: still < 1 ulp of the subnormal).

``tanh``: ``tanh|x| = (e^2|x| - 1) / (e^2|x| + 1)`` with ``e^2|x| = 2^n (1 + s)``, numerator and
denominator formed as double-doubles and one Newton correction of the quotient (one
division); ``|x| < 2^-27`` returns ``x`` (so no cancellation near 0) and ``|x|`` is clamped
at 20, where ``tanh`` rounds to 1.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["sin", "cos", "sincos", "exp", "tanh", "fma", "rint", "sin_fast", "cos_fast", "sin_fast_core",
           "cos_fast_core", "beyond_fast", "FAST_BOUND"]

# ----------------------------------------------------------------------------------------
# LLVM primitives (all vectorisable: llvm.fma / llvm.rint become vfmadd / vroundpd)
# ----------------------------------------------------------------------------------------

_f64 = ir.DoubleType()
_i64 = ir.IntType(64)


def _llvm_fn(builder, name, nargs):
    fnty = ir.FunctionType(_f64, [_f64] * nargs)
    return cgutils.get_or_insert_function(builder.module, fnty, name)


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (``llvm.fma.f64``)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.call(_llvm_fn(builder, "llvm.fma.f64", 3), args)

    return sig, codegen


@intrinsic
def rint(typingctx, x):
    """Round to the nearest integer, ties to even (``llvm.rint.f64``, default rounding mode)."""
    sig = types.float64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.call(_llvm_fn(builder, "llvm.rint.f64", 1), args)

    return sig, codegen


@intrinsic
def _fdiv(typingctx, a, b):
    """IEEE ``a / b`` without numba's zero-division check (independent of ``error_model``)."""
    sig = types.float64(types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fdiv(args[0], args[1])

    return sig, codegen


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64 (a bitcast)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], _i64)

    return sig, codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float64 whose IEEE-754 bits are the int64 ``i`` (a bitcast)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], _f64)

    return sig, codegen


# ----------------------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------------------

_SHIFT = 6755399441055744.0  # 1.5 * 2**52: x + _SHIFT holds round(x) in its low mantissa bits
_SHIFT_BITS = 0x4338000000000000
_SIGN = -0x8000000000000000  # the sign bit as an int64
_TINY = 2.0**-27  # below this sin(x) and tanh(x) round to x
_PIO4 = 0.7853981633974483  # float(pi/4) (< pi/4): |x| below it needs no reduction

_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471805599453  # float(ln 2)
_LN2_LO = 2.3190468138462996e-17  # ln 2 - _LN2_HI
_PIO2_HI = 1.5707963267948966  # float(pi/2)
_PIO2_LO = 6.123233995736766e-17  # pi/2 - _PIO2_HI
_PIO2_LO2 = -1.4973849048591698e-33  # pi/2 - _PIO2_HI - _PIO2_LO (the third Cody-Waite part)
_TWO_OVER_PI = 0.6366197723675814  # float(2/pi)
#: ``sin_fast``/``cos_fast`` take the Cody-Waite path for ``|x| < FAST_BOUND`` (2^20)
FAST_BOUND = 1048576.0

# sin r = r + r^3 (S1 + r^2 S2 + ... + r^10 S6) on |r| <= 0.7854, relative error < 2^-57.9
_S1 = -0.1666666666666663
_S2 = 0.00833333333332184
_S3 = -0.00019841269829358528
_S4 = 2.755731353851402e-06
_S5 = -2.5050734389165914e-08
_S6 = 1.5895433279677386e-10
# cos r = 1 - r^2/2 + r^4 (C1 + r^2 C2 + ... + r^10 C6) on |r| <= 0.7854, rel. error < 2^-63
_C1 = 0.041666666666666595
_C2 = -0.0013888888888873342
_C3 = 2.480158728900208e-05
_C4 = -2.7557314217038855e-07
_C5 = 2.0875705396026936e-09
_C6 = -1.1358749239693624e-11
# expm1 r = r + r^2/2 + r^3 (E0 + r E1 + ... + r^9 E9) on |r| <= 0.3467,
# error < 2^-58.9 relative to expm1 r
_E0 = 0.16666666666666677
_E1 = 0.041666666666666574
_E2 = 0.008333333333322136
_E3 = 0.0013888888888942783
_E4 = 0.00019841269885013905
_E5 = 2.4801587198052072e-05
_E6 = 2.7557245213671914e-06
_E7 = 2.755738712055694e-07
_E8 = 2.510871725851624e-08
_E9 = 2.087891192942302e-09


def _two_over_pi_bits(nbits: int) -> int:
    """``floor(2/pi * 2**nbits)``, from Machin's formula in Python integers (no mpmath).

    ``pi`` is computed with 64 guard bits; the absolute error of the result is far below 1,
    and ``tests/test_vector_math.py`` checks the bits against ``mpmath`` when installed.
    """
    prec = nbits + 64
    one = 1 << prec

    def arctan_inv(k: int) -> int:  # atan(1/k) * 2**prec, error < a few units
        total, term, k2, n, sign = 0, one // k, k * k, 1, 1
        while term:
            total += sign * (term // n)
            term //= k2
            n += 2
            sign = -sign
        return total

    pi_fixed = 16 * arctan_inv(5) - 4 * arctan_inv(239)  # pi * 2**prec
    return (1 << (nbits + prec + 1)) // pi_fixed


def _payne_hanek_table() -> np.ndarray:
    """Four doubles ``C_0..C_3`` per biased exponent ``eb = e + 1023`` of ``x``: with
    ``x = M 2^(e-52)`` (``2^52 <= M < 2^53``), ``x * 2/pi = M (C_0 + C_1 + C_2 + C_3)`` modulo 4,
    up to ``2^-157``. ``C_k`` holds the bits ``j = e-53+53k .. e-1+53k`` of
    ``2/pi = sum_j b_j 2^-j`` (the bits before them contribute multiples of 4), scaled so that
    ``C_k = I_k 2^(-51-53k)`` with a 53-bit integer ``I_k``: every entry is exact. Rows for
    ``|x| < 1/2``, subnormals and ``inf``/NaN are zero (those arguments are not reduced)."""
    nbits = 1023 + 52 + 4 * 53 + 16
    w = _two_over_pi_bits(nbits)
    mask = (1 << 53) - 1
    tab = np.zeros(4 * 2048)
    for e in range(-1, 1024):
        for k in range(4):
            top = e - 53 + 53 * k + 52  # position of the chunk's last bit
            chunk = (w >> (nbits - top)) & mask if top > 0 else 0
            tab[4 * (e + 1023) + k] = math.ldexp(float(chunk), -51 - 53 * k)
    return tab


_PH_TABLE = _payne_hanek_table()


@intrinsic
def _ph_load(typingctx, k):
    """``_PH_TABLE[k]`` from an LLVM constant global (no NRT reference counting, no
    wraparound or bounds logic: ``k`` is in range by construction)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        module = builder.module
        name = "hnnsim_vector_math_payne_hanek_table"
        gv = module.globals.get(name)
        if gv is None:
            arrty = ir.ArrayType(_f64, _PH_TABLE.size)
            gv = ir.GlobalVariable(module, arrty, name)
            gv.initializer = ir.Constant(arrty, [float(v) for v in _PH_TABLE])
            gv.global_constant = True
            gv.linkage = "internal"
            gv.align = 32
        ptr = builder.gep(gv, [ir.Constant(_i64, 0), args[0]], inbounds=True)
        return builder.load(ptr)

    return sig, codegen

_jit = numba.njit(inline="always", error_model="numpy", cache=True)

# ----------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------


@_jit
def _reduce_pio2(ax):
    """``ax = (N + y) pi/2`` for finite ``ax >= 1/2``: returns the double-double ``r = y pi/2``
    (``|r| <= pi/4 + 2^-48``, low word ``<= 2 ulp`` of the high word, not renormalised) and
    ``N mod 4`` as an int64. Exact Payne-Hanek reduction, branch-free; meaningless (but
    harmless) for ``ax < 1/2``, ``inf`` and NaN, which the callers select away.

    Every operation is exact except the last additions below ``2^-100`` (errors below
    ``2^-150``): the products ``M C_k = h_k + l_k`` are multiples of ``2^-51``, ``2^-104``,
    ``2^-157``; integer parts are removed with ``rint`` and counted in ``n`` (mod 4); the
    fractions are gathered on the ``2^-51`` grid (``a``) and the ``2^-104`` grid (``bs``), each
    sum staying within 53 bits."""
    ib = _bits(ax)
    k = ((ib >> 52) & 0x7FF) << 2
    m = _from_bits((ib & 0x000FFFFFFFFFFFFF) | 0x4330000000000000)  # the integer mantissa M
    c0 = _ph_load(k)
    c1 = _ph_load(k + 1)
    c2 = _ph_load(k + 2)
    c3 = _ph_load(k + 3)
    h0 = m * c0  # |h0| < 2^55
    l0 = fma(m, c0, -h0)
    h1 = m * c1  # |h1| < 4
    l1 = fma(m, c1, -h1)  # |l1| <= 2^-52
    h2 = m * c2  # |h2| < 2^-51
    l2 = fma(m, c2, -h2)
    h3 = m * c3  # |h3| < 2^-104
    n0 = rint(h0)
    f0 = h0 - n0
    n0 = n0 - 4.0 * rint(0.25 * n0)  # n0 mod 4 (in [-2, 2])
    n1 = rint(l0)
    n2 = rint(h1)
    hh1 = rint(h1 * 2.0**51) * 2.0**-51  # h1 rounded to the 2^-51 grid
    f1l = h1 - hh1  # |f1l| <= 2^-52, on the 2^-104 grid
    a = ((f0 + (l0 - n1)) + (hh1 - n2))  # on the 2^-51 grid, |a| < 2
    n3 = rint(a)
    a = a - n3  # |a| <= 1/2
    bs = f1l + l1  # on the 2^-104 grid, |bs| <= 2^-51
    s = bs + h2  # two-sum
    sv = s - bs
    sl = (bs - (s - sv)) + (h2 - sv)
    y = a + s  # fast two-sum: a is 0 or has an exponent >= that of s (|s| <= 2^-50)
    yl = (s - (y - a)) + (sl + (l2 + h3))
    n = (n0 + n1) + (n2 + n3)  # small integers
    q = _bits(n + _SHIFT) & 3
    rh = y * _PIO2_HI
    rl = fma(y, _PIO2_HI, -rh) + fma(y, _PIO2_LO, yl * _PIO2_HI)
    return rh, rl, q


@_jit
def _sin_cos_kernel(x, xl):
    """``(sin(x + xl), cos(x + xl))`` for ``|x| <= pi/4 + 2^-48`` and ``|xl| <= 2 ulp(x)``
    (Estrin evaluation: the polynomials share ``z = x^2``, ``z^2`` and ``z^4``)."""
    z = x * x
    z2 = z * z
    z4 = z2 * z2
    ps = fma(z2, fma(z, _S4, _S3), fma(z, _S2, _S1)) + z4 * fma(z, _S6, _S5)
    pc = fma(z2, fma(z, _C4, _C3), fma(z, _C2, _C1)) + z4 * fma(z, _C6, _C5)
    sn = x + fma(z * x, ps, fma(-0.5 * z, xl, xl))
    zl = fma(x, x, -z)
    hz = 0.5 * z
    w = 1.0 - hz
    cs = w + (((1.0 - w) - hz) + fma(z2, pc, -fma(0.5, zl, x * xl)))
    return sn, cs


@_jit
def _sincos_reduced(x):
    """``sin|x|`` and ``cos|x|`` up to the quadrant: returns ``(s, c, q)`` with ``s = sin r``,
    ``c = cos r`` of the reduced argument and ``q = N mod 4``."""
    ax = abs(x)
    rh, rl, q = _reduce_pio2(ax)
    small = ax < _PIO4
    rh = ax if small else rh
    rl = 0.0 if small else rl
    q = 0 if small else q
    s, c = _sin_cos_kernel(rh, rl)
    return s, c, q


@_jit
def _sin_from(x, s, c, q):
    v = c if (q & 1) != 0 else s
    flip = ((q & 2) << 62) ^ (_bits(x) & _SIGN)  # sin(-x) = -sin(x)
    res = _from_bits(_bits(v) ^ flip)
    ax = abs(x)
    res = x if ax < _TINY else res  # exact, keeps -0 and subnormals
    return res if ax < math.inf else x - x  # nan for +-inf and nan


@_jit
def _cos_from(x, s, c, q):
    q = q + 1
    v = c if (q & 1) != 0 else s
    res = _from_bits(_bits(v) ^ ((q & 2) << 62))
    return res if abs(x) < math.inf else x - x


@_jit
def sin(x):
    """``sin(x)`` for float64 ``x``: < 1 ulp over the whole double range, vectorisable."""
    s, c, q = _sincos_reduced(x)
    return _sin_from(x, s, c, q)


@_jit
def cos(x):
    """``cos(x)`` for float64 ``x``: < 1 ulp over the whole double range, vectorisable."""
    s, c, q = _sincos_reduced(x)
    return _cos_from(x, s, c, q)


@_jit
def sincos(x):
    """``(sin(x), cos(x))`` sharing one argument reduction (the cost of one of them)."""
    s, c, q = _sincos_reduced(x)
    return _sin_from(x, s, c, q), _cos_from(x, s, c, q)


@_jit
def _expm1_kernel(r, rl):
    """``expm1(r + rl) - r`` for ``|r| <= 0.3467``, ``|rl| <= ulp(r)``: the part ``h`` that,
    added to ``r``, gives ``s = expm1(r + rl)``."""
    z = r * r
    z2 = z * z
    p = fma(z, fma(r, _E2, _E1), fma(r, _E0, 0.5))
    p = p + z2 * (fma(z, fma(r, _E6, _E5), fma(r, _E4, _E3))
                  + z2 * fma(z, _E9, fma(r, _E8, _E7)))
    zl = fma(r, r, -z)
    return fma(z, p, fma(0.5, zl, fma(r, rl, rl)))


@_jit
def exp(x):
    """``exp(x)`` for float64 ``x``: < 1 ulp, overflow to ``inf`` and gradual underflow to 0."""
    xc = x if x < 1100.0 else 1100.0  # the clamp keeps n within the range of two scalings
    xc = xc if xc > -1100.0 else -1100.0
    t = fma(xc, _LOG2E, _SHIFT)
    nf = t - _SHIFT  # n = round(x / ln 2)
    rh = fma(-nf, _LN2_HI, xc)  # exact
    r = fma(-nf, _LN2_LO, rh)
    rl = fma(-nf, _LN2_LO, rh - r)  # the rounding error of r
    s = r + _expm1_kernel(r, rl)
    n = _bits(t) - _SHIFT_BITS
    n1 = n >> 1
    n2 = n - n1
    sc1 = _from_bits((n1 + 1023) << 52)
    sc2 = _from_bits((n2 + 1023) << 52)
    res = fma(sc1, s, sc1) * sc2  # 2^n (1 + s): overflow / underflow happen in the last product
    return res if x == x else x


@_jit
def tanh(x):
    """``tanh(x)`` for float64 ``x``: < 1 ulp, ``tanh(x) = x`` for ``|x| < 2^-27``."""
    ax = abs(x)
    y = 2.0 * ax if ax < 20.0 else 40.0  # tanh(20) rounds to 1
    t = fma(y, _LOG2E, _SHIFT)
    nf = t - _SHIFT
    rh = fma(-nf, _LN2_HI, y)
    r = fma(-nf, _LN2_LO, rh)
    rl = fma(-nf, _LN2_LO, rh - r)
    h = _expm1_kernel(r, rl)
    s = r + h  # s + sl = expm1(r + rl), |h| < |r|
    sl = h - (s - r)
    sc = _from_bits((_bits(t) - _SHIFT_BITS + 1023) << 52)  # 2^n, 0 <= n <= 58
    # e^y - 1 = (sc - 1) + sc s + sc sl and e^y + 1 likewise, as double-doubles
    cm = sc - 1.0
    em = (sc - cm) - 1.0  # 0 unless n > 53
    cp = sc + 1.0
    ep = (sc - cp) + 1.0
    a = sc * s
    b = sc * sl
    nh = cm + a
    v = nh - cm
    nl = ((cm - (nh - v)) + (a - v)) + (em + b)
    dh = cp + a
    v = dh - cp
    dl = ((cp - (dh - v)) + (a - v)) + (ep + b)
    inv = _fdiv(1.0, dh)
    q = nh * inv
    q = fma(fma(-q, dh, nh) + fma(-q, dl, nl), inv, q)  # one Newton step on the quotient
    res = _from_bits(_bits(q) | (_bits(x) & _SIGN))
    res = x if ax < _TINY else res  # exact for tiny x, keeps -0
    return res if x == x else x


# ----------------------------------------------------------------------------------------
# sin_fast / cos_fast: a Cody-Waite reduction for |x| < FAST_BOUND
# ----------------------------------------------------------------------------------------


@_jit
def _reduce_pio2_fast(ax):
    """``ax = N pi/2 + r`` for ``0 <= ax < FAST_BOUND``: the double-double ``r = rh + rl`` and
    ``N mod 4``, by a three-part Cody-Waite reduction (``pi/2 = P1 + P2 + P3 + O(2^-163)``).

    ``N = rint(ax 2/pi)`` (for ``ax < FAST_BOUND`` it may be off by one only where ``|r|`` is
    within ``2^-31`` of ``pi/4``, which the polynomials cover). ``r1 = ax - N P1`` is exact (one
    FMA; it lies on the grid ``2^-53`` and below 1); ``N P2 = th + tl`` exactly (FMA); a
    two-sum gives ``rh + e = r1 - th`` exactly; ``rl = e - (tl + N P3)``. The absolute error of
    ``rh + rl`` is below ``2^-106 |r| + 2^-140``, against ``|r| > 2^-61`` wherever ``N != 0``
    and ``|x| < 2^21`` (the closest doubles to multiples of pi/2, from the continued fraction
    of ``2/pi``, are in ``tests/test_lanes.py``): relative error ``< 2^-79``. ``rl`` is not
    renormalised: ``|rl| <= ulp(rh)/2 + 2^-90``, and where it
    exceeds 2 ulp of ``rh`` (``|rh| < 2^-36``) the kernel's terms in ``rl`` other than ``rl``
    itself are below ``2^-70 |rh|``."""
    n = rint(ax * _TWO_OVER_PI)
    r1 = fma(-n, _PIO2_HI, ax)
    th = n * _PIO2_LO
    tl = fma(n, _PIO2_LO, -th)
    rh = r1 - th
    v = rh - r1
    e = (r1 - (rh - v)) + (-th - v)
    rl = e - fma(n, _PIO2_LO2, tl)
    q = _bits(n + _SHIFT) & 3
    return rh, rl, q


@_jit
def sin_fast_core(x):
    """``sin_fast(x)`` for ``|x| < FAST_BOUND`` without the range test: branch-free, so a loop
    over it vectorises (about 2.5 times cheaper than :func:`sin`). Meaningless for larger
    ``|x|``, ``inf`` and NaN: a caller combines it with :func:`beyond_fast` and
    recomputes those elements with :func:`sin_fast` (see its docstring)."""
    ax = abs(x)
    rh, rl, q = _reduce_pio2_fast(ax)
    s, c = _sin_cos_kernel(rh, rl)
    v = c if (q & 1) != 0 else s
    return _from_bits(_bits(v) ^ (((q & 2) << 62) ^ (_bits(x) & _SIGN)))


@_jit
def cos_fast_core(x):
    """``cos_fast(x)`` for ``|x| < FAST_BOUND`` without the range test (see :func:`sin_fast_core`)."""
    rh, rl, q = _reduce_pio2_fast(abs(x))
    s, c = _sin_cos_kernel(rh, rl)
    q = q + 1
    v = c if (q & 1) != 0 else s
    return _from_bits(_bits(v) ^ ((q & 2) << 62))


@_jit
def beyond_fast(x):
    """1 where :func:`sin_fast_core` / :func:`cos_fast_core` do not apply (``|x| >= FAST_BOUND``,
    ``inf``, NaN), else 0: an int64, so that ``flag |= beyond_fast(x)`` in a loop is a
    vectorisable OR reduction."""
    return 0 if abs(x) < FAST_BOUND else 1


@_jit
def sin_fast(x):
    """``sin(x)``, < 1 ulp for every double: the Cody-Waite path (:func:`sin_fast_core`) for
    ``|x| < FAST_BOUND``, :func:`sin` otherwise. A function of ``x`` alone, but not bit for bit
    :func:`sin` (it equals it for ``|x| < pi/4``, where neither reduces).

    A loop evaluates it for a whole array without a branch in its vectorised body::

        flag = 0
        for i in range(x.size):
            out[i] = sin_fast_core(x[i])
            flag |= beyond_fast(x[i])
        if flag:                                   # rare: redo those elements
            for i in range(x.size):
                if beyond_fast(x[i]):
                    out[i] = sin_fast(x[i])

    which gives every element exactly ``sin_fast(x[i])``, whatever its neighbours."""
    if abs(x) < FAST_BOUND:
        return sin_fast_core(x)
    return sin(x)


@_jit
def cos_fast(x):
    """``cos(x)``, < 1 ulp for every double: :func:`cos_fast_core` for ``|x| < FAST_BOUND``,
    :func:`cos` otherwise (see :func:`sin_fast`)."""
    if abs(x) < FAST_BOUND:
        return cos_fast_core(x)
    return cos(x)
