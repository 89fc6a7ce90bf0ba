"""The decision process of SPEC §3-4 as a Gymnasium environment, ``"Exposure-v0"``.

One episode retouches one 64x64 crop of a photo in ``max_steps`` (5) edits. Each step the
agent picks a filter and that filter's parameters; the filter is applied to the *unclipped*
linear image, the step count increments and the filter is marked used. The episode
**terminates** (``terminated=True``, never ``truncated``) after ``max_steps`` edits: the
5-step limit is part of the task (the paper's test-time episode length; its value target has
``done = 1`` there), not a time limit cutting off an unfinished task.

Reward (SPEC §4, :func:`rewards.penalties.step_reward`)::

    r = reward_scale * (score(after) - score(before))
        - overexposure_weight * mean(max(out - 1, 0) ** 2) - reuse_penalty * [filter already used]

The entropy term belongs to the learner; there is no stop action, hence no stop penalty.

Spaces (F filters, P = ``filters.max_params``, 24 for the default set)::

    observation  Dict(image=Box(0, OBS_MAX, (T, T, 3), float32), state=Box(0, hi, (3 + F,), float32))
    action       Dict(filter=Discrete(F), params=Box(-1, 1, (P,), float32))

The chosen filter reads ``params[:num_params]`` through ``Filter.params_from_action``
(0 = identity). The observed image is the internal image clipped to ``[0, OBS_MAX]``
(:func:`observe`): values above 1 stay visible (two stops of headroom) while network inputs
stay bounded; the internal image itself is never clipped. Anything that feeds a policy at
test time (the retoucher) must use :func:`observe` too.

:class:`EpisodeBatch` is the engine: ``N`` episodes stepped together with one backend call per
distinct filter and one scorer call per step. :class:`ExposureEnv` is its ``N = 1`` view and
:class:`exposure_env.vector_env.ExposureVectorEnv` its vector view, so both give identical
images and rewards for the same seeds and actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rewards import penalties

from . import filters as _filters
from .datasets.pack import ImagePack
from .edits import Edit
from .render import display_uint8
from .scorers import Scorer, StatisticsScorer, requires_refs
from .state import make_state, state_dim

#: Upper bound of observed pixel values (linear; 1 = white, 4 = two stops above white).
OBS_MAX = 4.0


def observe(images: np.ndarray) -> np.ndarray:
    """The policy's view of linear images: a new float32 array clipped to ``[0, OBS_MAX]``."""
    return np.clip(images, 0.0, OBS_MAX).astype(np.float32, copy=False)


def observation_space(num_filters: int, max_steps: int, thumb_size: int) -> spaces.Dict:
    """``Dict(image, state)`` for one environment (see module docstring)."""
    hi = np.ones(state_dim(num_filters), np.float32)
    hi[2] = max_steps  # the step count field of exposure_env.state
    return spaces.Dict(
        {
            "image": spaces.Box(0.0, OBS_MAX, (thumb_size, thumb_size, 3), np.float32),
            "state": spaces.Box(np.zeros_like(hi), hi, dtype=np.float32),
        }
    )


def action_space(filter_list: Sequence[_filters.Filter]) -> spaces.Dict:
    """``Dict(filter=Discrete(F), params=Box(-1, 1, (P,)))`` for one environment."""
    return spaces.Dict(
        {
            "filter": spaces.Discrete(len(filter_list)),
            "params": spaces.Box(-1.0, 1.0, (_filters.max_params(filter_list),), np.float32),
        }
    )


def as_pack(pack: ImagePack | str | Path | None, name: str) -> ImagePack | None:
    """``None``, an :class:`ImagePack`, or the path of a saved pack (``.npz``) -> pack or None."""
    if pack is None or isinstance(pack, ImagePack):
        return pack
    if isinstance(pack, (str, Path)):
        return ImagePack.load(pack)
    raise ValueError(f"{name} must be an ImagePack or the path of a saved .npz pack, got {type(pack).__name__}")


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

    def __init__(
        self,
        num_envs: int,
        source: ImagePack | str | Path | None = None,
        scorer: Scorer | None = None,
        filters: Sequence[str] | None = None,
        max_steps: int = 5,
        thumb_size: int = 64,
        reward_scale: float = 0.05,
        overexposure_weight: float = 1.0,
        reuse_penalty: float = 1.0,
        keep_frames: bool = False,
        targets: ImagePack | str | Path | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.filters = _filters.resolve(filters)
        source, targets = as_pack(source, "source"), as_pack(targets, "targets")
        if source is None:
            source, demo_targets = default_source()
            if targets is None and scorer is None:
                targets = demo_targets
        if thumb_size > source.crop_size:
            raise ValueError(f"thumb_size {thumb_size} is larger than the source's {source.crop_size}px crops")
        if scorer is None:
            if targets is None and source.paired is None:
                raise ValueError("scorer=None needs target photos: pass targets=ImagePack/.npz path, a scorer, or a paired source")
            scorer = StatisticsScorer(targets if targets is not None else ImagePack(source.paired), crop_size=thumb_size)
        elif targets is not None:
            raise ValueError("targets only feeds the default StatisticsScorer; pass either scorer or targets")
        if not callable(getattr(scorer, "score", None)):
            raise ValueError(f"scorer {scorer!r} has no score(images, refs=None) method")
        if requires_refs(scorer) and source.paired is None:
            raise ValueError(f"{scorer!r} needs paired targets but the image source has none")
        self.source, self.scorer = source, scorer
        self.num_envs, self.max_steps, self.thumb_size = int(num_envs), int(max_steps), int(thumb_size)
        self.reward_scale = float(reward_scale)
        self.overexposure_weight, self.reuse_penalty = float(overexposure_weight), float(reuse_penalty)
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
            p = flt.params_from_action(params[sel, : flt.num_params])
            units[sel, : flt.num_params] = p
            if len(sel) == n:
                self.images = flt.apply(self.images, p)
            else:
                self.images[sel] = flt.apply(self.images[sel], p)
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
        reuse[rows] = penalties.reuse(reused, self.reuse_penalty)
        reward[rows] = penalties.step_reward(
            before, self.scores[rows], over[rows], reuse[rows], scale=self.reward_scale, overexposure_weight=self.overexposure_weight
        )
        terminated = np.zeros(n, bool)
        terminated[rows] = self.steps[rows] >= self.max_steps
        return reward, terminated, over, reuse, units

    @staticmethod
    def _overexposure(images: np.ndarray) -> np.ndarray:
        """:func:`rewards.penalties.overexposure`, evaluated only on images with a pixel above 1."""
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


class ExposureEnv(gym.Env):
    """``Exposure-v0``: retouch one photo crop in ``max_steps`` edits (see module docstring).

    ``source``: :class:`ImagePack` of input crops or a saved pack's path (``None``: the bundled
    demo set); ``scorer``: a :class:`Scorer` (``None``: :class:`StatisticsScorer` fitted on
    ``targets`` -- a pack or path --, else on the demo targets or the source's paired targets);
    ``filters``: short names (``None``: the paper's eight). Paths keep RLlib ``env_config``
    small. ``keep_frames`` records every intermediate image for the step strip.
    ``info`` after a step: ``filter`` (short name), ``filter_index``, ``params`` (filter units),
    ``edit`` (:class:`Edit`), ``text`` (its description), ``score``, ``score_before``,
    ``penalty_overexposure``, ``penalty_reuse``, ``step``.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        source: ImagePack | str | Path | None = None,
        scorer: Scorer | None = None,
        filters: Sequence[str] | None = None,
        max_steps: int = 5,
        thumb_size: int = 64,
        reward_scale: float = 0.05,
        overexposure_weight: float = 1.0,
        reuse_penalty: float = 1.0,
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
        keep_frames: bool = True,
        targets: ImagePack | str | Path | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        self.engine = EpisodeBatch(
            1, source, scorer, filters, max_steps, thumb_size, reward_scale, overexposure_weight, reuse_penalty, keep_frames, targets
        )
        self.filters = self.engine.filters
        self.observation_space = observation_space(len(self.filters), max_steps, thumb_size)
        self.action_space = action_space(self.filters)
        self.render_mode = render_mode
        self._seed = seed
        self._started = False
        self._one = np.ones(1, bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and not self._started:
            seed = self._seed
        super().reset(seed=seed)
        self._started = True
        self.engine.rngs[0] = self.np_random
        score = float(self.engine.reset(np.zeros(1, np.int64))[0])
        return self._obs(), {"score": score}

    def step(self, action):
        if not self._started:
            raise RuntimeError("ExposureEnv.step() before reset()")
        filt, params = self.engine.parse_actions(action)
        before = float(self.engine.scores[0])
        reward, terminated, over, reuse, units = self.engine.advance(filt, params, self._one)
        flt = self.filters[int(filt[0])]
        edit = Edit(flt.short_name, tuple(units[0, : flt.num_params]))
        info = {
            "filter": flt.short_name,
            "filter_index": int(filt[0]),
            "params": list(edit.params),
            "edit": edit,
            "text": edit.describe(),
            "score": float(self.engine.scores[0]),
            "score_before": before,
            "penalty_overexposure": float(over[0]),
            "penalty_reuse": float(reuse[0]),
            "step": int(self.engine.steps[0]),
        }
        return self._obs(), float(reward[0]), bool(terminated[0]), False, info

    def _obs(self) -> dict[str, np.ndarray]:
        obs = self.engine.observation()
        return {"image": obs["image"][0], "state": obs["state"][0]}

    @property
    def image(self) -> np.ndarray:
        """The current internal image ``(T, T, 3)`` float32 linear, unclipped (a copy)."""
        return self.engine.images[0].copy()

    def edits(self) -> list[Edit]:
        """The edits applied so far in this episode."""
        return self.engine.edits(0)

    def history(self) -> tuple[list[np.ndarray], list[str]]:
        """Frames of this episode (input, then after each edit) and their labels."""
        return self.engine.history(0)

    def render(self) -> np.ndarray:
        """The current image as uint8 ``(T, T, 3)``: clipped to [0, 1], no gamma."""
        return display_uint8(self.engine.images[0])
