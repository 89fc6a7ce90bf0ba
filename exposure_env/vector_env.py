"""``ExposureVectorEnv``: ``N`` Exposure episodes as one ``gymnasium.vector.VectorEnv``.

The vector entry point of ``"Exposure-v0"``::

    gymnasium.make_vec("Exposure-v0", num_envs=64, vectorization_mode="vector_entry_point")

(RLlib: ``config.environment("exposure_env:Exposure-v0", env_config={...})`` with
``env_runners(gym_env_vectorize_mode="vector_entry_point")``; the ``module:`` prefix makes
each env runner import the package that registers the id.)

Per vector step the batch is grouped by chosen filter and each filter runs once on its
sub-batch (NumPy; one backend call per distinct filter), the scorer is called once for the
whole batch (the before-scores are cached from the previous step), and the penalties are
computed vectorised. Autoreset follows gymnasium 1.x ``NEXT_STEP``: the step after an
episode terminates ignores that env's action, starts its next episode and returns reward 0,
``terminated = truncated = False``. Env ``i`` seeded with ``seed + i`` behaves exactly like
an :class:`~exposure_env.env.ExposureEnv` seeded with ``seed + i`` given the same actions.

``info`` (dict of ``(N, ...)`` arrays; ``_key`` masks mark the envs that edited this step):
``filter`` (short names), ``filter_index``, ``params`` (filter units, NaN-padded to P),
``penalty_overexposure``, ``penalty_reuse``; always: ``score`` (current image), ``step``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .datasets.pack import ImagePack
from .episode_batch import make_engine
from .env_config import EnvConfig
from .render import display_uint8
from .scorers import Scorer


class ExposureVectorEnv(VectorEnv):
    """``num_envs`` lock-stepped Exposure episodes; the task settings as for ``ExposureEnv``
    (an :class:`EnvConfig` and/or its fields as keyword arguments).

    ``reset(seed=s)`` seeds env ``i`` with ``s + i`` (a list seeds each env); ``reset(options=
    {"reset_mask": mask})`` restarts only the masked envs. ``keep_frames=True`` records every
    intermediate image for :func:`exposure_env.render.episode_strip` (off by default: it costs
    one image copy per step).
    """

    metadata: ClassVar[dict] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        num_envs: int = 8,
        config: EnvConfig | Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
        keep_frames: bool = False,
        **settings: Any,
    ):
        self.engine = make_engine(num_envs, config, settings, keep_frames, render_mode)
        self.config, self.filters, self.render_mode = self.engine.config, self.engine.filters, render_mode
        self.num_envs = self.engine.num_envs
        self.single_observation_space, self.single_action_space = self.engine.spaces()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._seed, self._started = seed, False
        self._autoreset = np.zeros(self.num_envs, bool)
        self._names = np.array([f.short_name for f in self.filters])

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None):
        if seed is None and not self._started:
            seed = self._seed
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset: {len(seeds)} seeds for {self.num_envs} envs")
            for i, s in enumerate(seeds):
                if s is not None:
                    self.engine.rngs[i], _ = seeding.np_random(int(s))
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        mask = np.ones(self.num_envs, bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], bool).reshape(self.num_envs)
        self.engine.reset(np.flatnonzero(mask))
        self._autoreset[mask] = False
        self._started = True
        return self.engine.observation(), {"score": self.engine.scores.copy(), "_score": mask}

    def step(self, actions):
        if not self._started:
            raise RuntimeError("ExposureVectorEnv.step() before reset()")
        filt, params = self.engine.parse_actions(actions)
        restart = self._autoreset
        edit = ~restart
        reward, terminated, over, reuse, units = self.engine.advance(filt, params, edit, restart)
        self._autoreset = terminated
        info = {
            "filter": self._names[filt],
            "_filter": edit,
            "filter_index": np.where(edit, filt, -1),
            "_filter_index": edit,
            "params": units,
            "_params": edit,
            "penalty_overexposure": over,
            "_penalty_overexposure": edit,
            "penalty_reuse": reuse,
            "_penalty_reuse": edit,
            "score": self.engine.scores.copy(),
            "step": self.engine.steps.copy(),
        }
        return self.engine.observation(), reward, terminated, np.zeros(self.num_envs, bool), info

    def render(self) -> tuple[np.ndarray, ...]:
        """Every env's current image as uint8 ``(T, T, 3)`` (clipped to [0, 1], no gamma)."""
        return tuple(display_uint8(self.engine.images))

    def edits(self, i: int):
        """The edits applied so far in env ``i``'s episode."""
        return self.engine.edits(i)

    def history(self, i: int):
        """Env ``i``'s frames and labels (needs ``keep_frames=True``)."""
        return self.engine.history(i)


class _TimedScorer:
    """Wraps a scorer and accumulates the seconds spent in it (benchmarks exclude them)."""

    def __init__(self, scorer, clock=time.perf_counter):
        self.scorer, self.clock, self.seconds, self.calls = scorer, clock, 0.0, 0
        self.requires_refs = getattr(scorer, "requires_refs", False)

    def score(self, images, refs=None):
        t0 = self.clock()
        out = self.scorer.score(images, refs)
        self.seconds += self.clock() - t0
        self.calls += 1
        return out


def benchmark_env(
    num_envs: int = 64,
    steps: int = 300,
    *,
    vector: bool = True,
    include_scorer: bool = False,
    source: ImagePack | None = None,
    scorer: Scorer | None = None,
    seed: int = 0,
    blocks: int = 5,
    clock: str = "wall",
) -> float:
    """Environment steps per second (``num_envs`` x vector steps / s) under uniform random actions.

    ``vector=False`` times one :class:`ExposureEnv` (``num_envs`` is then 1) with a reset after
    each episode. ``steps`` vector steps are timed in ``blocks`` equal blocks after one warm-up
    block; the result is the median block rate (robust to a busy machine). Time inside the
    scorer is subtracted unless ``include_scorer``. Autoreset steps count: they are part of
    the stream a learner sees. ``source`` / ``scorer`` default to the environment's defaults.
    ``clock="cpu"`` measures this process's CPU time instead of wall time: steps per second
    of CPU core, unaffected by other processes waiting for the same cores.
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"benchmark_env: clock must be 'wall' or 'cpu', got {clock!r}")
    timer = time.process_time if clock == "cpu" else time.perf_counter
    from .env import ExposureEnv

    if vector:
        env = ExposureVectorEnv(num_envs, source=source, scorer=scorer, seed=seed)
    else:
        env, num_envs = ExposureEnv(source=source, scorer=scorer, seed=seed, keep_frames=False), 1
    timed = _TimedScorer(env.engine.scorer, timer)
    env.engine.scorer = timed
    rng = np.random.default_rng(seed)
    space = env.single_action_space if vector else env.action_space
    per_block = max(1, steps // blocks)
    shape = (per_block, num_envs) if vector else (per_block,)
    filt = rng.integers(0, space["filter"].n, size=shape)
    params = rng.uniform(-1, 1, size=shape + (space["params"].shape[0],)).astype(np.float32)
    env.reset(seed=seed)
    rates = []
    for b in range(blocks + 1):
        timed.seconds = 0.0
        t0 = timer()
        for k in range(per_block):
            _, _, term, _, _ = env.step({"filter": filt[k], "params": params[k]})
            if not vector and term:
                env.reset()
        elapsed = timer() - t0 - (0.0 if include_scorer else timed.seconds)
        if b > 0:  # block 0 warms up
            rates.append(num_envs * per_block / elapsed)
    return float(np.median(rates))
