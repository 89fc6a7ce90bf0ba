"""``EnvConfig``: every task setting of ``Exposure-v0``, with its one default and its checks.

:class:`~exposure_env.env.ExposureEnv` and :class:`~exposure_env.vector_env.ExposureVectorEnv`
take their task settings from it (their keyword arguments of the same names build one), and
the training layer's ``env_config`` / ``--config env.KEY=VALUE`` read its fields, defaults and
help texts (:meth:`EnvConfig.help`). Per-instance options (``num_envs``, ``seed``,
``render_mode``, ``keep_frames``) stay with the env classes.

>>> EnvConfig().reward_scale
0.05
>>> EnvConfig.from_mapping({"max_steps": 3, "filters": ["E", "G"]}).to_dict()["filters"]
['E', 'G']
>>> EnvConfig.from_mapping({"reward": 1})
Traceback (most recent call last):
...
ValueError: EnvConfig: unknown key(s) ['reward']; known: filters, max_steps, overexposure_weight, reuse_penalty, reward_scale, scorer, source, targets, thumb_size
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import filters as filter_registry
from .datasets.pack import ImagePack


def _doc(default: Any, text: str):
    return field(default=default, metadata={"help": text})


def _is_number(value: Any) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class EnvConfig:
    """The task of ``Exposure-v0`` (SPEC §2-4); immutable, checked on construction."""

    #: Input photos the agent edits: an :class:`ImagePack` of crops or a saved pack's ``.npz`` path;
    #: ``None`` = the bundled demo set's training inputs.
    source: ImagePack | str | Path | None = _doc(None, "input photos: ImagePack or .npz path (None: bundled demo set)")
    #: ``D(image)``: any object with ``score(images (N, T, T, 3), refs=None) -> (N,)``, higher =
    #: more target-like; ``None`` = a :class:`~exposure_env.scorers.StatisticsScorer` fitted on ``targets``.
    scorer: Any = _doc(None, "scorer with score(images, refs=None) -> (N,) (None: StatisticsScorer on targets)")
    #: Filter short names in action-index order (see :mod:`exposure_env.filters`); ``None`` = the
    #: paper's eight, ``E G W S+ T Ct BW C``.
    filters: tuple[str, ...] | None = _doc(None, "filter short names in action order (None: E G W S+ T Ct BW C)")
    #: Edits per episode, >= 1; the episode terminates after the last one.
    max_steps: int = _doc(5, "edits per episode (>= 1)")
    #: Side of the square observed crop in pixels, >= 1 and at most the source's crop size.
    thumb_size: int = _doc(64, "observed crop side in px (>= 1, <= the source's crop size)")
    #: Weight of the score gain ``score(after) - score(before)`` in the reward, >= 0.
    reward_scale: float = _doc(0.05, "weight of the score gain in the reward (>= 0)")
    #: Weight of the over-exposure penalty ``mean(max(out - 1, 0) ** 2)``, >= 0.
    overexposure_weight: float = _doc(1.0, "weight of the over-exposure penalty mean(max(out - 1, 0)^2) (>= 0)")
    #: Reward subtracted when the chosen filter was already used in the episode, >= 0.
    reuse_penalty: float = _doc(1.0, "penalty for choosing an already used filter (>= 0)")
    #: Target-style photos (pack or ``.npz`` path) that fit the default scorer; only with
    #: ``scorer=None``. ``None``: the demo targets (with ``source=None``) or the source's paired targets.
    targets: ImagePack | str | Path | None = _doc(None, "target photos for the default scorer: ImagePack or .npz path")

    def __post_init__(self):
        for name in ("source", "targets"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (ImagePack, str, Path)):
                raise ValueError(f"{name} must be an ImagePack or the path of a saved .npz pack, got {type(value).__name__}")
        if self.scorer is not None:
            if self.targets is not None:
                raise ValueError("targets only feeds the default StatisticsScorer; pass either scorer or targets")
            if not callable(getattr(self.scorer, "score", None)):
                raise ValueError(f"scorer {self.scorer!r} has no score(images, refs=None) method")
        if self.filters is not None:
            if isinstance(self.filters, str):
                raise ValueError(f"filters must be a list of short names, got the string {self.filters!r}")
            filter_registry.resolve(self.filters)  # KeyError naming the unknown filter
            object.__setattr__(self, "filters", tuple(self.filters))
        for name in ("max_steps", "thumb_size"):
            value = getattr(self, name)
            if not (_is_number(value) and value == int(value) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("reward_scale", "overexposure_weight", "reuse_penalty"):
            value = getattr(self, name)
            if not (_is_number(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def help(cls) -> dict[str, str]:
        """``{field: one-line help}`` for command lines and docs."""
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> EnvConfig:
        """A config from a dict of field values (missing fields keep their defaults)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"EnvConfig: expected a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.names()))
        if unknown:
            raise ValueError(f"EnvConfig: unknown key(s) {unknown}; known: {', '.join(sorted(cls.names()))}")
        return cls(**dict(d))

    @classmethod
    def build(cls, config: EnvConfig | Mapping[str, Any] | None = None, **overrides: Any) -> EnvConfig:
        """``config`` (a config, a mapping or ``None`` = defaults) with keyword ``overrides`` applied."""
        if isinstance(config, EnvConfig):
            base = config.to_dict()
        elif config is None or isinstance(config, Mapping):
            base = dict(config or {})
        else:
            raise ValueError(f"EnvConfig: expected an EnvConfig, a mapping or None, got {type(config).__name__}")
        return cls.from_mapping({**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """``{field: value}`` (``filters`` as a list); :meth:`from_mapping` inverts it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if out["filters"] is not None:
            out["filters"] = list(out["filters"])
        return out
