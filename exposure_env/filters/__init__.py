"""The white box: the paper's photo filters (SPEC §2), one module per formula.

>>> from exposure_env import filters
>>> [f.short_name for f in filters.DEFAULT_FILTERS]
['E', 'G', 'W', 'S+', 'T', 'Ct', 'BW', 'C']
>>> filters.get("E").describe([1.25])
'Exposure +1.25 EV'
"""

from __future__ import annotations

from .auto import AutoExposure, AutoWhiteBalance, PartialWhiteBalance
from .base import Filter, ParamRange, tanh_range, unit_range
from .black_white import BlackWhite
from .contrast import Contrast
from .curves import ColorCurves, ToneCurve
from .exposure import Exposure
from .gamma import Gamma
from .level import Level
from .saturation import Saturation
from .white_balance import WhiteBalance

#: The paper's default set, in its order: E, G, W, S+, T, Ct, BW, C.
DEFAULT_FILTERS: list[Filter] = [
    Exposure(),
    Gamma(),
    WhiteBalance(),
    Saturation(),
    ToneCurve(),
    Contrast(),
    BlackWhite(),
    ColorCurves(),
]

#: Every filter formula the project knows (the default set plus Level): what edits, kernels
#: and sidecars are made of.
ALL_FILTERS: list[Filter] = DEFAULT_FILTERS + [Level()]

#: Auto-anchored variants of E and W (:mod:`.auto`): action 0 is the automatic correction
#: (``AWs``: half of grey world); their edits are plain ``E`` / ``W`` edits.
ANCHORED_FILTERS: list[Filter] = [AutoExposure(), AutoWhiteBalance(), PartialWhiteBalance()]

#: The default eight with E and W anchored (``env.filters=["AE", "G", "AW", ...]``; measured in
#: docs/benchmarks.md "Quality", not a recipe's default).
AUTO_FILTERS: list[Filter] = [ANCHORED_FILTERS[0], DEFAULT_FILTERS[1], ANCHORED_FILTERS[1], *DEFAULT_FILTERS[3:]]

_BY_NAME = {f.short_name: f for f in ALL_FILTERS + ANCHORED_FILTERS}
_BY_NAME.update({f.short_name.lower(): f for f in ALL_FILTERS + ANCHORED_FILTERS})
_BY_NAME.update({f.name.lower(): f for f in ALL_FILTERS + ANCHORED_FILTERS})


def get(short_name: str) -> Filter:
    """The filter named ``short_name`` (``"E"``, ``"S+"``, ...; long names and lower case work too)."""
    try:
        return _BY_NAME[short_name] if short_name in _BY_NAME else _BY_NAME[short_name.lower()]
    except KeyError:
        known = ", ".join(f.short_name for f in ALL_FILTERS + ANCHORED_FILTERS)
        raise KeyError(f"unknown filter {short_name!r}; known: {known}") from None


def resolve(names) -> list[Filter]:
    """A filter list from short names (``None`` -> the default set)."""
    if names is None:
        return list(DEFAULT_FILTERS)
    return [n if isinstance(n, Filter) else get(n) for n in names]


def max_params(filter_list=None) -> int:
    """Width of the shared parameter vector of an action (24 for the default set: C)."""
    return max(f.num_params for f in resolve(filter_list))


__all__ = [
    "ALL_FILTERS",
    "ANCHORED_FILTERS",
    "AUTO_FILTERS",
    "DEFAULT_FILTERS",
    "Filter",
    "ParamRange",
    "get",
    "max_params",
    "resolve",
    "tanh_range",
    "unit_range",
]
