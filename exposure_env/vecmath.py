"""Vectorisable float32 transcendental functions for numba kernels (the CPU op namespace).

numba compiles ``math.exp`` / ``math.pow`` / ``math.cos`` into calls of the C library, and a
call stops LLVM from vectorising the loop around it (no SVML in the PyPI builds), which made a
fused pass over a photo several times slower than memory. These versions are branch-free
arithmetic on float64 (reduction by powers of two or by pi/2, then a short Taylor/atanh series
whose truncation error, below 1e-8 relative, is under a float32 ulp), so LLVM turns a loop over
pixels into SIMD code. Inputs and results are float32, within about one ulp of the exact value;
``pow``, the costliest, runs in float32 arithmetic (twice the SIMD lanes) with a relative error
of about ``2**-24 (|y log x| + 4 |y| + 4)``: a few ulp for the exponents of photo filters.

Contract (float32 in, float32 out): ``exp``, ``log`` (``log(0) = -inf``, negative -> nan),
``pow(x, y)`` (NumPy's special cases: ``0 ** y`` is 0, 1 or inf; a negative finite base needs an
integer exponent, else nan; infinities as IEEE ``pow``; ``x ** 0`` and ``1 ** y`` are 1), ``cos`` (accurate for ``|x| < 1e5``), ``tanh``, ``floor``.
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


def _bitcast(source, target, llvm_type):
    """An intrinsic reinterpreting a ``source`` value's IEEE bits as ``target`` (a free register move)."""

    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvm_type)

        return target(source), codegen

    return cast


_bits = _bitcast(types.float64, types.int64, ir.IntType(64))
_from_bits = _bitcast(types.int64, types.float64, ir.DoubleType())
_bits32 = _bitcast(types.float32, types.int32, ir.IntType(32))
_from_bits32 = _bitcast(types.int32, types.float32, ir.FloatType())


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


# float32 pieces of pow: float32 SIMD lanes are twice as many as float64's, and Gamma's pow is
# the costliest step of a typical edit list.
_F = np.float32
_LN2_HI32 = _F(0.693145751953125)  # 16 significant bits: e * _LN2_HI32 is exact for |e| < 256
_LN2_LO32 = _F(1.4286068203094172e-06)
_INV_LN2_32 = _F(1.4426950408889634)
_SQRT2_32 = _F(1.4142135623730951)
_TWO24 = _F(16777216.0)
_MIN_NORMAL32 = _F(1.1754943508222875e-38)


@njit(inline="always")
def _pow_pos32(a, e):
    """``a ** e`` for finite float32 ``a > 0`` and finite ``e``, in float32 arithmetic.

    ``log a = k ln2 + log m`` (``m`` in [sqrt(1/2), sqrt(2)), atanh series to ``s**7``), then
    ``exp(t)`` by ``t = j ln2 + r`` (``|r| <= ln2 / 2``, Taylor to ``r**6``). ``k ln2`` is split in
    an exact high part and a small low part, so the relative error is about
    ``2**-24 (|e log a| + 4 |e| + 4)``: a few ulp for the exponents photo filters use."""
    sub = a < _MIN_NORMAL32  # subnormal: scale into the normal range first
    a = a * (_TWO24 if sub else _F(1.0))
    i = _bits32(a)
    k = _F(((i >> 23) & 0xFF) - 127) - (_F(24.0) if sub else _F(0.0))
    m = _from_bits32((i & 0x7FFFFF) | 0x3F800000)
    big = m > _SQRT2_32
    m = m * (_F(0.5) if big else _F(1.0))
    k = k + (_F(1.0) if big else _F(0.0))
    s = (m - _F(1.0)) / (m + _F(1.0))
    z = s * s
    z2 = z * z  # atanh series to s**9, as log64's
    log_m = _F(2.0) * s * ((_F(1.0) + z * _F(1.0 / 3)) + z2 * ((_F(1.0 / 5) + z * _F(1.0 / 7)) + z2 * _F(1.0 / 9)))
    t_hi = e * (k * _LN2_HI32)
    t = t_hi + e * (log_m + k * _LN2_LO32)
    t = t if t > _F(-104.0) else _F(-104.0)
    t = t if t < _F(89.0) else _F(89.0)  # 2**128: the exponent field overflows to inf
    j = np.rint(t * _INV_LN2_32)
    r = (t - j * _LN2_HI32) - j * _LN2_LO32
    r2 = r * r
    p = ((_F(1.0) + r) + r2 * (_F(0.5) + r * _F(1.0 / 6))) + (r2 * r2) * ((_F(1.0 / 24) + r * _F(1.0 / 120)) + r2 * _F(1.0 / 720))
    jj = j if j > _F(-126.0) else _F(-126.0)
    scale = _from_bits32(np.int32(jj + _F(127.0)) << 23)
    return p * scale if j > _F(-126.0) else _F(0.0)  # below the normal range: 0


@njit(inline="always")
def pow(x, y):
    x = np.float32(x)
    e = np.float32(y)
    a = abs(x)
    inf = _F(np.inf)
    nan_in = (x != x) or (e != e)
    a_inf = a == inf
    e_inf = abs(e) == inf
    pos = a > _F(0.0)
    ok = pos and not (a_inf or e_inf or nan_in)
    mag = _pow_pos32(a if ok else _F(1.0), e if ok else _F(0.0))
    # NumPy's special cases, as selects between values computed above (no branch, no call)
    up = e > _F(0.0)
    zero_base = _F(0.0) if up else inf
    inf_base = inf if up else _F(0.0)
    inf_exp = (inf if up else _F(0.0)) if a > _F(1.0) else (_F(0.0) if up else inf)
    inf_exp = _F(1.0) if a == _F(1.0) else inf_exp
    mag = mag if pos else zero_base
    mag = inf_base if a_inf else mag
    mag = inf_exp if e_inf else mag
    small = abs(e) < _TWO24  # larger exponents are even integers
    whole = np.rint(e) == e
    odd = whole and small and (np.int32(e if small else _F(0.0)) & 1) == 1
    neg = (-mag if odd else mag) if (whole or a_inf) else _F(np.nan)
    v = neg if x < _F(0.0) else mag
    v = _F(np.nan) if nan_in else v
    v = _F(1.0) if (e == _F(0.0) or x == _F(1.0)) else v
    return v


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
