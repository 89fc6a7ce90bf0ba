"""Generate the fused CPU kernel's source from the filters' own ``pixel`` formulas.

No formula is written here. Each :meth:`Filter.pixel` is *run* once on traced scalars
(:class:`Sym`) instead of arrays: every arithmetic operator and every primitive of the op
namespace (:mod:`exposure_env.backend`) appends one line of Python source. Values that depend
only on the parameters (``2 ** ev``, a curve's normalisation) are marked *uniform* and land
before the pixel loop, so they are computed once per chunk instead of once per pixel.

:func:`kernel_source` turns the traced formulas of every filter into one module for numba
(:mod:`exposure_env.fused_cpu` compiles it and runs it on bands of the photo in threads): a loop
over chunks of ``CHUNK`` pixels; per chunk the pixels are split into three planes in L1 cache, every step of the edit list runs
over them (one branch per filter, chosen by an op code, so *one* compiled kernel serves every
edit list and new parameter values never recompile), and the result is written once --
optionally clipped and quantised to 8/16-bit samples for the encoder. Arithmetic is float32 as
in NumPy, except that ``a * b + c`` may fuse into one FMA (one rounding instead of two: the
polynomials are latency-bound); transcendental functions come from :mod:`exposure_env.vecmath`.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from .filters import ALL_FILTERS

#: Pixels per chunk: three float32 planes of 1024 pixels = 12 KB, resident in L1.
CHUNK = 1024


class _Trace:
    """Collects the source lines of one filter's formula; names values ``v0, v1, ...``."""

    def __init__(self):
        self.uniform: list[str] = []
        self.pixel: list[str] = []
        self.count = 0

    def emit(self, expr: str, uniform: bool) -> "Sym":
        name = f"v{self.count}"
        self.count += 1
        (self.uniform if uniform else self.pixel).append(f"{name} = {expr}")
        return Sym(self, name, uniform)


def _lit(x) -> str:
    """A Python number as a float32 literal of the generated source."""
    if isinstance(x, bool):
        return "True" if x else "False"
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"codegen: non-finite constant {value} in a filter formula")
    return f"_f32({value!r})"


def _src(x) -> tuple[str, bool]:
    """``(source, uniform)`` of an operand (a traced value or a Python number)."""
    if isinstance(x, Sym):
        return x.name, x.uniform
    return _lit(x), True


def _op(trace: _Trace, template: str, *args) -> "Sym":
    parts = [_src(a) for a in args]
    return trace.emit(template.format(*(p[0] for p in parts)), all(p[1] for p in parts))


def _trace_of(*args) -> _Trace:
    for a in args:
        if isinstance(a, Sym):
            return a.trace
    raise TypeError("codegen: an operation on constants only")  # pragma: no cover


class Sym:
    """A traced float32 (or bool) scalar: a variable name in the generated source."""

    __slots__ = ("trace", "name", "uniform")
    exposure_ops: SimpleNamespace  # set below: ops_for(Sym) returns the codegen namespace

    def __init__(self, trace: _Trace, name: str, uniform: bool):
        self.trace, self.name, self.uniform = trace, name, uniform

    def _bin(self, other, sym: str, reverse: bool = False) -> "Sym":
        a, b = (other, self) if reverse else (self, other)
        return _op(self.trace, f"({{}} {sym} {{}})", a, b)

    def __add__(self, o): return self._bin(o, "+")  # noqa: E704
    def __radd__(self, o): return self._bin(o, "+", True)  # noqa: E704
    def __sub__(self, o): return self._bin(o, "-")  # noqa: E704
    def __rsub__(self, o): return self._bin(o, "-", True)  # noqa: E704
    def __mul__(self, o): return self._bin(o, "*")  # noqa: E704
    def __rmul__(self, o): return self._bin(o, "*", True)  # noqa: E704
    def __truediv__(self, o): return self._bin(o, "/")  # noqa: E704
    def __rtruediv__(self, o): return self._bin(o, "/", True)  # noqa: E704
    def __gt__(self, o): return self._bin(o, ">")  # noqa: E704
    def __ge__(self, o): return self._bin(o, ">=")  # noqa: E704
    def __lt__(self, o): return self._bin(o, "<")  # noqa: E704
    def __le__(self, o): return self._bin(o, "<=")  # noqa: E704

    def __neg__(self):
        return _op(self.trace, "(-{})", self)

    def __bool__(self):
        raise TypeError("codegen: a filter formula branches on a pixel value; use ops.where")


def _call(fn: str):
    return lambda x: _op(_trace_of(x), f"{fn}({{}})", x)


def _maximum(a, b):
    return _op(_trace_of(a, b), "({0} if {0} >= {1} else {1})", a, b)


def _minimum(a, b):
    return _op(_trace_of(a, b), "({0} if {0} <= {1} else {1})", a, b)


def _where(c, a, b):
    return _op(_trace_of(c, a, b), "({1} if {0} else {2})", c, a, b)


def _pow(x, y):
    return _op(_trace_of(x, y), "_pow({}, {})", x, y)


CODEGEN_OPS = SimpleNamespace(
    name="codegen",
    exp=_call("_exp"),
    log=_call("_log"),
    tanh=_call("_tanh"),
    cos=_call("_cos"),
    abs=_call("abs"),
    floor=_call("_floor"),
    maximum=_maximum,
    minimum=_minimum,
    where=_where,
    clip=lambda x, lo, hi: _minimum(_maximum(x, lo), hi),
    pow=_pow,
    sigmoid=lambda x: 0.5 * (CODEGEN_OPS.tanh(0.5 * x) + 1.0),
)
Sym.exposure_ops = CODEGEN_OPS


def trace_filter(f) -> tuple[list[str], list[str], tuple[str, str, str]]:
    """Run ``f.pixel`` on traced values: ``(uniform lines, pixel lines, (r, g, b) output names)``.

    The pixel lines read ``r, g, b``; parameter ``j`` is ``q{j}`` (loaded by the kernel).
    """
    trace = _Trace()
    r, g, b = (Sym(trace, c, False) for c in "rgb")
    params = [Sym(trace, f"q{j}", True) for j in range(f.num_params)]
    out = f.pixel(r, g, b, params)
    names = []
    for value in out:
        name, uniform = _src(value)
        if uniform:  # a constant or parameter-only channel: still written per pixel
            name = trace.emit(name, False).name
        names.append(name)
    return trace.uniform, trace.pixel, tuple(names)


def _branch(code: int, f, first: bool) -> list[str]:
    uniform, pixel, (ro, go, bo) = trace_filter(f)
    head = "if" if first else "elif"
    lines = [f"        {head} op == {code}:  # {f.short_name}: {f.name}"]
    lines += [f"            q{j} = P[s, {j}]" for j in range(f.num_params)]
    lines += [f"            {ln}" for ln in uniform]
    lines.append("            for i in range(m):")
    lines.append("                r = R[i]; g = G[i]; b = B[i]")
    lines += [f"                {ln}" for ln in pixel]
    lines.append(f"                R[i] = {ro}; G[i] = {go}; B[i] = {bo}")
    return lines


_HEAD = '''"""Generated by exposure_env.codegen from the filters' pixel formulas; do not edit."""
import numpy as np
from numba import njit

from exposure_env.vecmath import cos as _cos, exp as _exp, floor as _floor, log as _log, pow as _pow, tanh as _tanh

_f32 = np.float32
CHUNK = {chunk}
FILTERS = {names!r}


@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False, fastmath={{"contract"}})
def steps_on_chunk(R, G, B, m, steps, P):
    """Every step of the edit list on the first ``m`` pixels of the planes R, G, B (in place)."""
    for s in range(steps.shape[0]):
        op = steps[s]
'''

_TAIL = '''

@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def run(src, dst, steps, P, scale, first, last):
    """Pixels ``[first, last)`` of src (3n,) float32 RGB RGB ... -> dst (3n,); steps (S,) op codes
    into FILTERS; P (S, K) float32 parameters; scale 0: float32 out as computed, else clip to
    [0, 1], times scale, round half to even (8/16-bit samples). Returns the number of non-finite
    results (quantised output only). Releases the GIL: callers split a photo over threads."""
    R = np.empty(CHUNK, np.float32)
    G = np.empty(CHUNK, np.float32)
    B = np.empty(CHUNK, np.float32)
    bad = 0
    for start in range(first, last, CHUNK):
        m = min(CHUNK, last - start)
        base = np.uint64(3 * start)  # unsigned indices: no wrap-around test, so the loops vectorise
        for i in range(m):
            j = base + np.uint64(3 * i)
            R[i] = src[j]; G[i] = src[j + np.uint64(1)]; B[i] = src[j + np.uint64(2)]
        steps_on_chunk(R, G, B, m, steps, P)
        if scale > 0:
            for i in range(m):
                x = R[i]; y = G[i]; z = B[i]
                bad += (not np.isfinite(x)) + (not np.isfinite(y)) + (not np.isfinite(z))
                j = base + np.uint64(3 * i)
                x = x if x > _f32(0) else _f32(0)
                y = y if y > _f32(0) else _f32(0)
                z = z if z > _f32(0) else _f32(0)
                x = x if x < _f32(1) else _f32(1)
                y = y if y < _f32(1) else _f32(1)
                z = z if z < _f32(1) else _f32(1)
                dst[j] = np.rint(x * scale); dst[j + np.uint64(1)] = np.rint(y * scale); dst[j + np.uint64(2)] = np.rint(z * scale)
        else:
            for i in range(m):
                j = base + np.uint64(3 * i)
                dst[j] = R[i]; dst[j + np.uint64(1)] = G[i]; dst[j + np.uint64(2)] = B[i]
    return bad
'''


def kernel_source(filters=ALL_FILTERS) -> str:
    """The generated module (Python source) for ``filters``; op code ``k`` is ``filters[k]``."""
    body = []
    for code, f in enumerate(filters):
        body += _branch(code, f, code == 0)
    names = tuple(f.short_name for f in filters)
    return _HEAD.format(chunk=CHUNK, names=names) + "\n".join(body) + "\n" + _TAIL
