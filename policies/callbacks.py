"""Per-episode training metrics for RLlib (``result["env_runners"][key]``, mean over 100 episodes).

From each finished episode's env infos (:class:`exposure_env.vector_env.ExposureVectorEnv`):

``score_gain``          scorer value of the final image minus that of the input (the reward's
                        critic part, unscaled)
``final_score``         scorer value of the final image
``penalty_overexposure`` summed over the episode; ``reused_filters``: filters applied twice
``filter_used/<F>``     1 when filter ``F`` was applied in the episode, else 0 (frequency)

Fake images for the critic (``env_config["scorer"]["feed"] == "final"``): at the end of each
``sample()`` the final image of every episode that ended in it goes to the discriminator actor's
fake pool in one ``add_fake`` call (with ``feed == "all"`` the env's scorer adds every scored
image itself, SPEC §6's pool of all steps).

Callbacks run inside env runners, where an exception kills the runner: every field is read
with a default and malformed infos are skipped.
"""

from __future__ import annotations

import logging

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback

logger = logging.getLogger(__name__)

WINDOW = 100


def _float(v, default=np.nan) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


class ExposureCallbacks(RLlibCallback):
    """Logs the episode metrics listed in the module docstring."""

    def on_episode_end(self, *, episode, metrics_logger=None, env=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        infos = episode.get_infos()
        if not isinstance(infos, (list, tuple)) or len(infos) < 2:
            return
        infos = [i if isinstance(i, dict) else {} for i in infos]
        first, last = _float(infos[0].get("score")), _float(infos[-1].get("score"))
        steps = infos[1:]
        log = metrics_logger.log_value
        if np.isfinite(first) and np.isfinite(last):
            log("score_gain", last - first, reduce="mean", window=WINDOW)
            log("final_score", last, reduce="mean", window=WINDOW)
        over = [_float(i.get("penalty_overexposure"), 0.0) for i in steps]
        log("penalty_overexposure", float(np.sum(over)), reduce="mean", window=WINDOW)
        log("reused_filters", float(sum(_float(i.get("penalty_reuse"), 0.0) > 0 for i in steps)), reduce="mean", window=WINDOW)
        names = getattr(self, "_names", None)
        used = {str(i["filter"]) for i in steps if "filter" in i}
        if names is None:
            flist = getattr(getattr(env, "unwrapped", None), "filters", None)
            if flist is None:
                from exposure_env.filters import DEFAULT_FILTERS as flist
            names = self._names = [f.short_name for f in flist]
        for name in sorted(set(names) | used):
            log(f"filter_used/{name}", float(name in used), reduce="mean", window=WINDOW)

    def on_sample_end(self, *, env_runner=None, samples=None, **kwargs) -> None:
        spec = (getattr(getattr(env_runner, "config", None), "env_config", None) or {}).get("scorer") or {}
        if spec.get("kind") != "discriminator" or spec.get("feed") != "final" or not samples:
            return
        finals = []
        for ep in samples:
            if getattr(ep, "is_done", False) and len(ep) > 0:
                obs = ep.get_observations(-1)
                if isinstance(obs, dict) and "image" in obs:
                    finals.append(np.asarray(obs["image"], np.float32))
        if not finals:
            return
        try:
            handle = getattr(self, "_critic", None)
            if handle is None:
                import ray

                handle = self._critic = ray.get_actor(spec["name"])
            handle.add_fake.remote(np.stack(finals))  # fire and forget: ordered before the next train()
        except Exception as exc:  # noqa: BLE001 - never kill the env runner over the critic's pool
            logger.warning("could not feed final images to the discriminator %r: %s", spec.get("name"), exc)
