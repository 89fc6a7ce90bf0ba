"""``EpisodeBatch``: the engine behind ``Exposure-v0``, ``N`` episodes stepped in lock-step.

One backend call per distinct filter and one scorer call per (vector) step.
:class:`~exposure_env.env.ExposureEnv` is its ``N = 1`` view and
:class:`~exposure_env.vector_env.ExposureVectorEnv` its vector view, so both give identical
images and rewards for the same seeds and actions (the spec: ``ExposureEnv``'s docstring).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from . import filters as _filters
from . import penalties
from .datasets.pack import ImagePack
from .edits import Edit
from .env_config import EnvConfig
from .scorers import StatisticsScorer, requires_refs
from .spaces import action_space, observation_space, observe
from .state import make_state


def make_engine(num_envs: int, config, settings: Mapping[str, Any], keep_frames: bool, render_mode: str | None) -> EpisodeBatch:
    """Both envs' construction: check ``render_mode`` (``"rgb_array"`` or ``None``), build the
    :class:`EnvConfig` from ``config`` and the keyword ``settings``, make the engine."""
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
    return EpisodeBatch(num_envs, EnvConfig.build(config, **settings), keep_frames)


def as_pack(pack: ImagePack | str | Path | None) -> ImagePack | None:
    """``None``, an :class:`ImagePack`, or the path of a saved pack (``.npz``) -> pack or None."""
    return ImagePack.load(pack) if isinstance(pack, (str, Path)) else pack


def default_source() -> tuple[ImagePack, ImagePack]:
    """The bundled demo set's ``(train_inputs, train_targets)`` (:func:`exposure_env.datasets.demo.demo_packs`)."""
    try:
        from .datasets.demo import demo_packs
    except ImportError as exc:
        raise ValueError(
            f"ExposureEnv: source=None needs the bundled demo set, which is unavailable ({exc}); pass source=ImagePack(...)"
        ) from None
    data = demo_packs()
    return data.train_inputs, data.train_targets


class EpisodeBatch:
    """``num_envs`` episodes stepped in lock-step on one image batch (the engine of both envs).

    Holds the internal images ``(N, T, T, 3)`` (float32 linear, unclipped), the paired target
    crops when the source has them, step counts, used-filter flags, the cached score of every
    current image, the edit history (filter index and parameters in filter units per step)
    and, with ``keep_frames``, every intermediate image. ``rngs[i]`` draws env ``i``'s photos.
    """

    def __init__(self, num_envs: int, config: EnvConfig, keep_frames: bool = False):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.filters = _filters.resolve(config.filters)
        source, targets, scorer = as_pack(config.source), as_pack(config.targets), config.scorer
        if source is None:
            source, demo_targets = default_source()
            if targets is None and scorer is None:
                targets = demo_targets
        if config.thumb_size > source.crop_size:
            raise ValueError(f"thumb_size {config.thumb_size} is larger than the source's {source.crop_size}px crops")
        if scorer is None:
            if targets is None and source.paired is None:
                raise ValueError("scorer=None needs target photos: pass targets=ImagePack/.npz path, a scorer, or a paired source")
            scorer = StatisticsScorer(targets if targets is not None else ImagePack(source.paired), crop_size=config.thumb_size)
        if requires_refs(scorer) and source.paired is None:
            raise ValueError(f"{scorer!r} needs paired targets but the image source has none")
        self.source, self.scorer = source, scorer
        self.num_envs, self.max_steps, self.thumb_size = int(num_envs), config.max_steps, config.thumb_size
        self.num_params = _filters.max_params(self.filters)
        n, t, f, p = self.num_envs, self.thumb_size, len(self.filters), self.num_params
        self._pass_refs = source.paired is not None
        self.images = np.zeros((n, t, t, 3), np.float32)
        self.refs = np.zeros((n, t, t, 3), np.float32) if self._pass_refs else None
        self.steps = np.zeros(n, np.int64)
        self.used = np.zeros((n, f), bool)
        self.scores = np.zeros(n, np.float32)
        self.hist_filter = np.full((n, self.max_steps), -1, np.int64)
        self.hist_params = np.full((n, self.max_steps, p), np.nan, np.float32)
        self.frames = np.zeros((n, self.max_steps + 1, t, t, 3), np.float32) if keep_frames else None
        self.rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(n)]
        self._all = np.arange(n)

    def spaces(self) -> tuple[spaces.Dict, spaces.Dict]:
        """``(observation_space, action_space)`` of one environment."""
        return observation_space(len(self.filters), self.max_steps, self.thumb_size), action_space(self.filters)

    # --- episode control -------------------------------------------------------------
    def load(self, rows: np.ndarray) -> None:
        """Start new episodes in ``rows``: a fresh crop from each row's own RNG, counters cleared."""
        for i in rows:
            crop, ref = self.source.sample(self.rngs[i], 1, self.thumb_size)
            self.images[i] = crop[0]
            if self._pass_refs:
                self.refs[i] = ref[0]
        self.steps[rows] = 0
        self.used[rows] = False
        self.hist_filter[rows] = -1
        self.hist_params[rows] = np.nan
        if self.frames is not None:
            self.frames[rows, 0] = self.images[rows]

    def reset(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`load` ``rows`` and score them (one scorer call); returns their scores."""
        rows = np.asarray(rows, np.int64)
        self.load(rows)
        self._rescore(rows)
        return self.scores[rows]

    def parse_actions(self, action) -> tuple[np.ndarray, np.ndarray]:
        """A batched action dict -> ``filter (N,) int64``, ``params (N, P) float32``."""
        try:
            filt, params = action["filter"], action["params"]
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"action must be a dict with 'filter' and 'params', got {type(action).__name__}") from None
        filt = np.asarray(filt).astype(np.int64, copy=False).reshape(self.num_envs)
        params = np.asarray(params, np.float32).reshape(self.num_envs, self.num_params)
        if filt.min() < 0 or filt.max() >= len(self.filters):
            raise ValueError(f"filter index out of range [0, {len(self.filters)}): {filt}")
        return filt, params

    def advance(self, filt: np.ndarray, params: np.ndarray, edit: np.ndarray, restart: np.ndarray | None = None):
        """One lock-step: apply the actions of rows ``edit``, start new episodes in ``restart``.

        ``edit`` / ``restart``: ``(N,)`` disjoint bool masks. Rows that restart (gymnasium's
        next-step autoreset) ignore their action and get reward 0. The scorer is called once
        on every changed row; the previous scores are the before-scores.
        Returns ``(reward, terminated, over, reused, params_units)``, all ``(N,)`` except
        ``params_units`` ``(N, P)`` (the applied parameters in filter units, NaN-padded).
        """
        n = self.num_envs
        if restart is not None and restart.any():
            self.load(np.flatnonzero(restart))
            changed = edit | restart
        else:
            changed = edit
        all_edit = bool(edit.all())
        rows = self._all if all_edit else np.flatnonzero(edit)
        reward = np.zeros(n, np.float32)
        over = np.zeros(n, np.float32)
        reuse = np.zeros(n, np.float32)
        units = np.full((n, self.num_params), np.nan, np.float32)
        if len(rows) == 0:  # every env restarts (next-step autoreset): nothing to edit
            self._rescore(np.flatnonzero(changed))
            return reward, np.zeros(n, bool), over, reuse, units
        if (self.steps[rows] >= self.max_steps).any():
            raise RuntimeError("step() on a finished episode: call reset() first")
        f_rows = filt[rows]
        reused = self.used[rows, f_rows]
        for fi in np.unique(f_rows):
            flt = self.filters[fi]
            sel = rows if len(f_rows) == n and (f_rows == fi).all() else rows[f_rows == fi]
            whole = len(sel) == n
            imgs = self.images if whole else self.images[sel]  # fancy index: one copy, for both uses
            p = flt.params_for(params[sel, : flt.num_params], imgs)
            units[sel, : flt.num_params] = p
            if whole:
                self.images = flt.apply(imgs, p)
            else:
                self.images[sel] = flt.apply(imgs, p)
        k = self.steps[rows]
        self.hist_filter[rows, k] = f_rows
        self.hist_params[rows, k] = units[rows]
        self.used[rows, f_rows] = True
        self.steps[rows] += 1
        if self.frames is not None:
            self.frames[rows, k + 1] = self.images[rows]
        before = self.scores[rows]  # fancy index: a copy
        self._rescore(self._all if changed.all() else np.flatnonzero(changed))
        imgs = self.images if all_edit else self.images[rows]
        over[rows] = self._overexposure(imgs)
        cfg = self.config
        reuse[rows] = penalties.reuse(reused, cfg.reuse_penalty)
        reward[rows] = penalties.step_reward(
            before, self.scores[rows], over[rows], reuse[rows], scale=cfg.reward_scale, overexposure_weight=cfg.overexposure_weight
        )
        terminated = np.zeros(n, bool)
        terminated[rows] = self.steps[rows] >= self.max_steps
        return reward, terminated, over, reuse, units

    @staticmethod
    def _overexposure(images: np.ndarray) -> np.ndarray:
        """:func:`exposure_env.penalties.overexposure`, evaluated only on images with a pixel above 1."""
        out = np.zeros(len(images), np.float32)
        hot = images.reshape(len(images), -1).max(axis=1) > 1.0
        if hot.all():
            out[:] = penalties.overexposure(images)
        elif hot.any():
            out[hot] = penalties.overexposure(images[hot])
        return out

    def _rescore(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        full = len(rows) == self.num_envs
        imgs = self.images if full else self.images[rows]
        refs = None if not self._pass_refs else (self.refs if full else self.refs[rows])
        s = np.asarray(self.scorer.score(imgs, refs), np.float32).reshape(-1)
        if s.shape[0] != len(rows):
            raise ValueError(f"scorer {self.scorer!r} returned {s.shape[0]} scores for {len(rows)} images")
        self.scores[rows] = s

    # --- views -----------------------------------------------------------------------
    def observation(self) -> dict[str, np.ndarray]:
        """Batched observation ``{"image": (N, T, T, 3), "state": (N, 3 + F)}`` (new arrays)."""
        return {"image": observe(self.images), "state": make_state(self.steps, self.used)}

    def edits(self, i: int) -> list[Edit]:
        """The edits applied so far in env ``i``'s episode."""
        out = []
        for k in range(int(self.steps[i])):
            flt = self.filters[self.hist_filter[i, k]]
            out.append(Edit(flt.short_name, tuple(self.hist_params[i, k, : flt.num_params])))
        return out

    def history(self, i: int) -> tuple[list[np.ndarray], list[str]]:
        """Env ``i``'s frames (input, then after each edit) and their labels (needs ``keep_frames``)."""
        if self.frames is None:
            raise ValueError("no frame history: create the environment with keep_frames=True")
        labels = ["input"] + [e.describe() for e in self.edits(i)]
        return [self.frames[i, k].copy() for k in range(len(labels))], labels
