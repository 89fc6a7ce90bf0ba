"""Saturation+ (S+): blend towards a saturation boost that spares shadows and highlights.

SPEC §2: ``c = min(img, 1)``; in HSV ``s' = s + (1 - s) k`` with ``k = (0.5 - |0.5 - v|) 0.8``;
back to RGB gives ``full``; ``out = (1 - p) c + p full`` with blend ``p`` in [0, 1].

Evaluated in closed form, without computing hue: HSV->RGB is ``c = v - v s w(h)`` per channel,
so with ``h`` and ``v`` kept, ``full = v - (s'/s)(v - c)``, and with ``s = (v - min)/v``,
``s'/s = 1 + k min / (v - min)``. Hence ``full = c - (v - c) k min / (v - min)`` (grey pixels,
``v = min``, are unchanged). Same values as the HSV round trip (the tests hold it to a
``colorsys`` reference) at a third of the operations.

>>> import numpy as np
>>> S = Saturation()
>>> S.apply(np.array([[[[0.2, 0.4, 0.6]]]], np.float32), [[1.0]]).ravel().astype(float).round(4).tolist()  # k = 0.32
[0.136, 0.368, 0.6]
>>> S.apply(np.full((1, 1, 1, 3), 0.3, np.float32), [[1.0]]).ravel().astype(float).round(4).tolist()  # greys stay
[0.3, 0.3, 0.3]
"""

from __future__ import annotations

from ..backend import ops_for
from .base import BlendFilter


class Saturation(BlendFilter):
    short_name = "S+"
    name = "Saturation+"

    def pixel(self, r, g, b, p):
        ops = ops_for(r)
        r, g, b = (ops.minimum(c, 1.0) for c in (r, g, b))
        v = ops.maximum(ops.maximum(r, g), b)
        mn = ops.minimum(ops.minimum(r, g), b)
        d = v - mn
        k = (0.5 - ops.abs(0.5 - v)) * 0.8
        chroma = d > 0
        gain = ops.where(chroma, k * mn / ops.where(chroma, d, 1.0), 0.0) * p[0]
        return tuple(c - gain * (v - c) for c in (r, g, b))
