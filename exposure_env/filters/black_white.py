"""Black and white (BW): ``out = (1 - p) img + p L``, blend ``p`` in [0, 1].

>>> import numpy as np
>>> BW, x = BlackWhite(), np.array([[[[0.2, 0.4, 0.6]]]], np.float32)
>>> BW.apply(x, [[1.0]]).ravel().astype(float).round(4).tolist()  # L = 0.27 R + 0.67 G + 0.06 B
[0.358, 0.358, 0.358]
>>> BW.apply(x, [[0.5]]).ravel().astype(float).round(4).tolist()
[0.279, 0.379, 0.479]
>>> BW.params_from_action(np.array([[-0.5], [0.3], [2.0]])).ravel().tolist()  # blend actions clip to [0, 1]
[0.0, 0.3, 1.0]
"""

from __future__ import annotations

from ..colour import luminance
from .base import BlendFilter


class BlackWhite(BlendFilter):
    short_name = "BW"
    name = "Black & white"

    def pixel(self, r, g, b, p):
        lum = luminance(r, g, b)
        amt = p[0]
        return tuple(c + amt * (lum - c) for c in (r, g, b))
