"""The decision process of SPEC §3-4 as a Gymnasium environment, ``"Exposure-v0"``.

The specification (spaces, reward, episode end, arguments) is :class:`ExposureEnv`'s docstring;
the engine is :class:`exposure_env.episode_batch.EpisodeBatch`, the spaces
:mod:`exposure_env.spaces`, the reward's terms :mod:`exposure_env.penalties` and the task
settings :class:`exposure_env.env_config.EnvConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from .edits import Edit
from .env_config import EnvConfig
from .episode_batch import make_engine
from .render import display_uint8


class ExposureEnv(gym.Env):
    """``Exposure-v0``: retouch one photo crop with ``max_steps`` global filter edits.

    ## Description

    The white-box photo retouching task of Hu et al., *Exposure* (SIGGRAPH 2018), SPEC §2-4.
    An episode starts from a random ``T x T`` crop (``T = thumb_size``, 64) of a photo in
    linear RGB. Each step the agent picks one filter and that filter's parameters; the filter
    is applied to the *unclipped* internal image (float32, 1 = white), the step count
    increments and the filter is marked used. A scorer ``D(image)`` (higher = more like the
    target style) pays the improvement.

    ## Action Space

    ``Dict(filter=Discrete(F), params=Box(-1, 1, (P,), float32))``: ``F`` filters (8 by
    default), ``P`` = the most parameters of any filter (24 by default). The chosen filter
    reads ``params[:k]`` through ``Filter.params_for`` (``params_from_action``: linear in the
    action; an action of 0 is the identity) and ignores the rest. Default filter set:

    ===  ========  ===================  ==========  =================================================
    idx  filter    name                 params      filter units (action -1 .. 1)
    ===  ========  ===================  ==========  =================================================
    0    ``E``     Exposure             ``[0:1]``   ``img * 2**e``, e in [-3.5, 3.5] EV
    1    ``G``     Gamma                ``[0:1]``   ``max(img, 0.001) ** g``, g in [1/3, 3] (log scale)
    2    ``W``     White balance        ``[0:3]``   R/G/B multipliers, luminance-normalised
                                                    (R in [0.68, 1.40], G [0.78, 1.17], B [0.43, 2.13])
    3    ``S+``    Saturation+          ``[0:1]``   blend amount in [0, 1] (action <= 0: off)
    4    ``T``     Tone curve           ``[0:8]``   8 segment slopes in [0.5, 2] (equal slopes: identity)
    5    ``Ct``    Contrast             ``[0:1]``   blend amount in [-1, 1] (negative flattens)
    6    ``BW``    Black & white        ``[0:1]``   blend amount in [0, 1] (action <= 0: off)
    7    ``C``     Colour curves        ``[0:24]``  8 slopes per channel R0..7, G0..7, B0..7 in [0.9, 1.1]
    ===  ========  ===================  ==========  =================================================

    ``L`` (Level: black point in [0, 0.999], white point in [1, 2], ``[0:2]``) can be added
    with ``filters=[...]``; the formulas are in :mod:`exposure_env.filters`. ``AE`` and ``AW``
    (:mod:`exposure_env.filters.auto`) replace ``E`` and ``W`` with auto-anchored versions:
    action 0 exposes the current image to a mean luminance of 0.18 / neutralises it by grey
    world, the action is an offset from there (``filters=["AE", "G", "AW", ...]``). ``AWs``
    anchors at a share of grey world in [0, 1] read from the red action (``W``'s unused slot).
    Their edits are recorded as plain ``E`` / ``W`` edits.

    ## Observation Space

    ``Dict(image=Box(0, 4, (T, T, 3), float32), state=Box(0, hi, (3 + F,), float32))``.
    ``image`` is the internal image clipped to ``[0, OBS_MAX]`` (:data:`~exposure_env.spaces.OBS_MAX`
    = 4: two stops above white stay visible; :func:`~exposure_env.spaces.observe`, which the
    retoucher uses too). ``state`` is
    :func:`exposure_env.state.make_state`:

    ======  ==================  =================  =============================================
    index   field               range              meaning
    ======  ==================  =================  =============================================
    0       ``reward_given``    {0, 1}             1 once a step's reward has been paid (step > 0)
    1       ``stopped``         {0}                always 0: there is no stop action
    2       ``step``            0 .. max_steps     edits made so far
    3 + i   ``used_i``          {0, 1}             filter ``i`` already applied in this episode
    ======  ==================  =================  =============================================

    ## Rewards

    Per step (SPEC §4, :func:`exposure_env.penalties.step_reward`)::

        r = reward_scale * (score(after) - score(before))
            - overexposure_weight * mean(max(out - 1, 0) ** 2)
            - reuse_penalty * [filter already used in this episode]

    The over-exposure mean runs over the pixels and channels of the edited internal image.
    The learner's entropy term is not part of the env's reward.

    ## Starting State

    A crop drawn from ``source`` (random photo, random position, random horizontal flip; its
    paired target crop too when the source has one) with the env's RNG (``reset(seed=...)``);
    step 0, no filter used. ``info = {"score": D(crop)}``.

    ## Episode End

    **Terminated** after ``max_steps`` edits (the limit is part of the task: the paper's
    5-step episodes, ``done = 1`` in its value target). Never **truncated**. ``step()`` after
    the end raises ``RuntimeError`` until ``reset()``.

    ``info`` after a step: ``filter`` (short name), ``filter_index``, ``params`` (filter units),
    ``edit`` (:class:`~exposure_env.edits.Edit`), ``text`` (its description), ``score``,
    ``score_before``, ``penalty_overexposure``, ``penalty_reuse``, ``step``.

    ## Arguments

    ``ExposureEnv(config=None, *, seed=None, render_mode="rgb_array", keep_frames=True, **settings)``

    * ``config``: an :class:`~exposure_env.env_config.EnvConfig` or a mapping of its fields;
      ``settings`` (keyword arguments) override single fields. The fields: ``source`` (input
      photos: ``ImagePack`` or ``.npz`` path; ``None``: the bundled demo set), ``scorer``
      (``None``: :class:`~exposure_env.scorers.StatisticsScorer` fitted on ``targets``, else
      on the demo or the source's paired targets), ``filters`` (short names), ``max_steps``
      (5), ``thumb_size`` (64 px), ``reward_scale`` (0.05), ``overexposure_weight`` (1.0),
      ``reuse_penalty`` (1.0), ``targets``. Ranges: :meth:`EnvConfig.help`.
    * ``seed``: used by the first ``reset()`` without a seed.
    * ``render_mode``: ``"rgb_array"`` (``render()`` -> uint8 ``(T, T, 3)``, clipped to [0, 1],
      no gamma) or ``None``.
    * ``keep_frames``: record every intermediate image (:meth:`history`, the step strip).

    ## Example

    >>> import gymnasium as gym
    >>> import numpy as np
    >>> env = gym.make("Exposure-v0", max_steps=3)  # the bundled demo set and statistics scorer
    >>> obs, info = env.reset(seed=0)
    >>> obs["image"].shape, obs["state"].tolist()
    ((64, 64, 3), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    >>> params = np.zeros(24, np.float32)
    >>> params[0] = 0.5  # Exposure: +1.75 EV
    >>> obs, reward, terminated, truncated, info = env.step({"filter": 0, "params": params})
    >>> info["text"], obs["state"][:4].tolist(), terminated, truncated
    ('Exposure +1.75 EV', [1.0, 0.0, 1.0, 1.0], False, False)

    The vector version: ``gym.make_vec("Exposure-v0", num_envs=64,
    vectorization_mode="vector_entry_point")`` (:class:`~exposure_env.vector_env.ExposureVectorEnv`).

    ## Version History

    * v0: the paper's eight filters and 5-step episodes; actions in [-1, 1] with 0 = identity,
      observations clipped to [0, 4], reward = scaled score gain minus over-exposure and
      reuse penalties, no stop action.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
        keep_frames: bool = True,
        **settings: Any,
    ):
        self.engine = make_engine(1, config, settings, keep_frames, render_mode)
        self.config, self.filters, self.render_mode = self.engine.config, self.engine.filters, render_mode
        self.observation_space, self.action_space = self.engine.spaces()
        self._seed, self._started = seed, False
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
