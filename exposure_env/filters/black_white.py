"""Black and white (BW): ``out = (1 - p) img + p L``, blend ``p`` in [0, 1]."""

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
