"""Vectorisable float32 transcendental functions for numba kernels (the CPU op namespace).

numba compiles ``math.exp`` / ``math.pow`` / ``math.cos`` into calls of the C library, and a
call stops LLVM from vectorising the loop around it (no SVML in the PyPI builds), which made a
fused pass over a photo several times slower than memory. These versions are branch-free
arithmetic on float64 (reduction by powers of two or by pi/2, then a short Taylor/atanh series
whose truncation error, below 1e-8 relative, is under a float32 ulp), so LLVM turns a loop over
pixels into SIMD code. Inputs and results are float32, within about one ulp of the exact value.

Contract (float32 in, float32 out): ``exp``, ``log`` (``log(0) = -inf``, negative -> nan),
``pow(x, y)`` (NumPy's special cases for ``x <= 0``: ``0 ** y`` is 0, 1 or inf; a negative base
needs an integer exponent, else nan), ``cos`` (accurate for ``|x| < 1e5``), ``tanh``, ``floor``.
Importing this module needs numba; :mod:`exposure_env.fused_cpu` checks that first.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.4426950408889634
_PIO2_1 = 1.57079632673412561417e00  # pi/2 in three parts (Cody-Waite)
_PIO2_2 = 6.07710050650619224932e-11
_PIO2_3 = 2.02226624879595063154e-21
_TWO_OVER_PI = 0.6366197723675814
_SQRT2 = 1.4142135623730951
_MAGIC = 6755399441055744.0  # 2**52 + 2**51: adding it leaves an integer-valued double's value in the low bits
_MAGIC_BITS = 0x4338000000000000
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000


@intrinsic
def _bits(typingctx, x):
    """float64 -> its IEEE bits as int64 (a free register move)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, i):
    """int64 bits -> float64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(inline="always")
def _int_of(k):
    """An integer-valued float64 with ``|k| < 2**51`` -> int64, without a (scalar-only) cvt."""
    return _bits(k + _MAGIC) - _MAGIC_BITS


@njit(inline="always")
def exp64(y):
    """``e ** y`` for float64 ``y``, clamped to the float32 range (over/underflow as float32)."""
    y = y if y > -110.0 else -110.0
    y = y if y < 90.0 else 90.0
    k = np.rint(y * _INV_LN2)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    r2 = r * r  # Taylor to r**7 (error < 6e-9) in Estrin's form: short dependency chains
    p = ((1.0 + r) + r2 * (1.0 / 2 + r * (1.0 / 6))) + (r2 * r2) * (
        (1.0 / 24 + r * (1.0 / 120)) + r2 * (1.0 / 720 + r * (1.0 / 5040)))
    return p * _from_bits((_int_of(k) + 1023) << 52)


@njit(inline="always")
def log64(x):
    """Natural log of a positive, finite float64 (``x = m 2**e``, ``log m = 2 atanh((m-1)/(m+1))``)."""
    i = _bits(x)
    e = ((i >> 52) & 0x7FF) - 1023
    m = _from_bits((i & _MANTISSA) | _ONE_BITS)
    big = m > _SQRT2
    m = m * (0.5 if big else 1.0)
    ef = (_from_bits(e + _MAGIC_BITS) - _MAGIC) + (1.0 if big else 0.0)  # int64 -> float64, SIMD-friendly
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    z2 = z * z  # atanh series to s**9 (error < 3e-9)
    series = (1.0 + z * (1.0 / 3)) + z2 * ((1.0 / 5 + z * (1.0 / 7)) + z2 * (1.0 / 9))
    return 2.0 * s * series + ef * _LN2_HI + ef * _LN2_LO


# Every select below picks between values computed before it: a ternary around an expression
# becomes a branch in numba's IR, and a branch in the loop body stops LLVM's vectoriser.
@njit(inline="always")
def exp(x):
    return np.float32(exp64(np.float64(x)))


@njit(inline="always")
def log(x):
    d = np.float64(x)
    pos = d > 0.0
    v = log64(d if pos else 1.0)
    special = -np.inf if d == 0.0 else np.nan
    return np.float32(v if pos else special)


@njit(inline="always")
def pow(x, y):
    d = np.float64(x)
    e = np.float64(y)
    a = abs(d)
    pos = a > 0.0
    mag = exp64(e * log64(a if pos else 1.0))
    neg_mag = -mag
    whole = np.rint(e) == e
    modest = abs(e) < 1e15  # larger exponents are even
    odd = whole and modest and (_int_of(e if modest else 0.0) & 1) == 1
    signed = neg_mag if odd else mag
    neg = signed if whole else np.nan
    zero = 0.0 if e > 0.0 else np.inf
    zero = 1.0 if e == 0.0 else zero
    v = neg if d < 0.0 else zero
    v = mag if d > 0.0 else v
    v = 1.0 if e == 0.0 else v
    return np.float32(v)


@njit(inline="always")
def cos(x):
    d = np.float64(x)
    n = np.rint(d * _TWO_OVER_PI)
    r = ((d - n * _PIO2_1) - n * _PIO2_2) - n * _PIO2_3
    z = r * r
    z2 = z * z  # Taylor to r**10 / r**11 (error < 2e-10)
    c = (1.0 - z * (1.0 / 2)) + z2 * ((1.0 / 24 - z * (1.0 / 720)) + z2 * (1.0 / 40320 - z * (1.0 / 3628800)))
    s = r * ((1.0 - z * (1.0 / 6)) + z2 * ((1.0 / 120 - z * (1.0 / 5040)) + z2 * (1.0 / 362880 - z * (1.0 / 39916800))))
    q = _int_of(n) & 3  # cos(r + q pi/2) = c, -s, -c, s
    base = s if (q & 1) == 1 else c
    sign = -1.0 if ((q + 1) & 2) == 2 else 1.0
    return np.float32(base * sign)


@njit(inline="always")
def tanh(x):
    d = np.float64(x)
    a = abs(d)
    a = a if a < 20.0 else 20.0
    t = exp64(2.0 * a)
    big = (t - 1.0) / (t + 1.0)
    z = a * a
    small = a * (1.0 - z * (1.0 / 3 - z * (2.0 / 15 - z * (17.0 / 315))))
    v = small if a < 0.01 else big
    sign = 1.0 if d >= 0.0 else -1.0
    return np.float32(v * sign)


@njit(inline="always")
def floor(x):
    return np.float32(np.floor(np.float64(x)))
