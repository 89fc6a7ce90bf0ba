"""``ExposureTorchLearner``: the RLlib learner of the Exposure actor-critic (SPEC §6).

Each update gets a batch of image states (``obs = {"image", "state"}``, drawn by the algorithm
from the pool the env runners fill) and minimises the losses of its update
(:func:`~policies.exposure_algo.episode_update.episode_losses` or
:func:`~policies.exposure_algo.td_update.exposure_losses`)
on the learner's device: the filters, a *frozen* copy of the discriminator and the networks all
run in torch there. The frozen copy is refreshed from the discriminator actor's ``get_weights()``
before each update (:meth:`ExposureTorchLearner.set_critic_weights`; its architecture comes from
the actor's config once, :meth:`~ExposureTorchLearner.build_critic`), so the actor remains the
one owner (and trainer) of the discriminator.

The reward's weights (``reward_scale``, ``overexposure_weight``, ``reuse_penalty``) are read
from the env's ``env_config``, so the learner's recomputed reward is the env's reward (plus the
learner's entropy term). Optimisers (Adam, betas from the config, SPEC §6): ``policy`` (the parameter
encoder and heads; not ``pi.log_std``, which stays frozen), ``choice`` and ``value``. Their rates
follow :func:`rewards.schedule.learning_rate` over the run's length; the training iteration and
that length come in through ``timesteps[ITERATION_KEY]`` / ``timesteps[TOTAL_KEY]``.
After each update the module's averaged policy, when it keeps one, moves towards ``pi``
(:meth:`policies.exposure_algo.module.ExposureAlgoRLModule.update_policy_average`).
The ``choice`` optimiser (filter encoder and head) shares the policy's rate unless
``choice_lr`` is set.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.typing import ModuleID

from exposure_env import filters as filter_registry
from exposure_env.state import STEP
from rewards import schedule
from exposure_env.penalties import OVEREXPOSURE_WEIGHT, REUSE_WEIGHT, REWARD_SCALE
from rewards.discriminator import ARCHITECTURE_FIELDS, Discriminator

from .episode_update import episode_losses
from .td_update import exposure_losses
from .update_parts import UpdateSettings, frozen_copy

#: Keys of the 0-based training iteration and of the run's length (T) in the ``timesteps``
#: dict passed to ``update``.
ITERATION_KEY = "exposure_iteration"
TOTAL_KEY = "exposure_total_iterations"
#: ``ExposureConfig.update`` -> the loss function of one update.
UPDATES = {"episode": episode_losses, "td": exposure_losses}
POLICY_OPTIMIZER = "policy"
CHOICE_OPTIMIZER = "choice"
VALUE_OPTIMIZER = "value"
#: Key of the update's torch RNG state in the learner's state (checkpoints).
GENERATOR_STATE = "exposure_generator"


class ExposureTorchLearner(TorchLearner):
    """Deterministic parameter heads by ``-Q``, filter choice by policy gradient, value by TD(0)."""

    def build(self) -> None:
        super().build()
        cfg = self.config
        self._critic: Discriminator | None = None
        self._critic_loaded = False
        self._iteration = 0
        self._progress = 0.0
        seed = 0 if cfg.seed is None else int(cfg.seed)
        self._generator = torch.Generator(device=self._device)
        self._generator.manual_seed(seed)
        self._update_settings: dict[ModuleID, tuple[list, UpdateSettings]] = {}

    # --- checkpoint state: RLlib's plus the update's RNG ----------------------------------
    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if components is None:
            state[GENERATOR_STATE] = self._generator.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if GENERATOR_STATE in state:
            self._generator.set_state(state[GENERATOR_STATE])

    # --- optimisers ---------------------------------------------------------------------
    def configure_optimizers_for_module(self, module_id: ModuleID, config=None) -> None:
        config = config or self.config
        module = self._module[module_id]
        choice_names = ("filter_encoder.", "filter_head.")
        groups = [
            (POLICY_OPTIMIZER, [p for n, p in module.pi.named_parameters() if n != "log_std" and not n.startswith(choice_names)]),
            (CHOICE_OPTIMIZER, [p for n, p in module.pi.named_parameters() if n.startswith(choice_names)]),
            (VALUE_OPTIMIZER, list(module.vf.parameters())),
        ]
        betas = tuple(config.adam_betas)
        for name, params in groups:
            lr = self._base_lr(name)
            self.register_optimizer(
                module_id=module_id,
                optimizer_name=name,
                optimizer=torch.optim.Adam(params, lr=lr, betas=betas),
                params=params,
            )

    def _base_lr(self, optimizer_name: str) -> float:
        cfg = self.config
        if optimizer_name == CHOICE_OPTIMIZER:
            return cfg.policy_lr if cfg.choice_lr is None else cfg.choice_lr
        return cfg.policy_lr if optimizer_name == POLICY_OPTIMIZER else cfg.value_lr

    # --- the frozen discriminator copy --------------------------------------------------
    def build_critic(self, config: dict[str, Any]) -> None:
        """Create the frozen copy with the discriminator actor's config (its architecture)."""
        arch = {k: config[k] for k in ARCHITECTURE_FIELDS if k in config}
        self._critic = frozen_copy(Discriminator(arch).to(self._device))
        self._critic_loaded = False

    def set_critic_weights(self, weights: dict[str, Any]) -> None:
        """Load the discriminator actor's ``get_weights()`` into the frozen copy."""
        if self._critic is None:
            raise RuntimeError("exposure learner: build_critic(config) must come before set_critic_weights")
        with torch.no_grad():
            for name, tensor in self._critic.state_dict().items():
                tensor.copy_(torch.from_numpy(np.require(weights[name], requirements="W")))
        self._critic_loaded = True

    def critic_score(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        """Frozen ``D(images)`` ``(N,)``: differentiable in the images, not in D's weights."""
        return self._critic(images)

    # --- per-update state ---------------------------------------------------------------
    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        total = max(1, int(timesteps.get(TOTAL_KEY, self.config.total_iterations)))
        self._iteration = int(timesteps.get(ITERATION_KEY, self._iteration))
        self._progress = min(1.0, max(0.0, self._iteration / total))
        for module_id, names in self._module_optimizers.items():
            for full_name in names:
                name = full_name[len(module_id) + 1 :]
                base = self._base_lr(name)
                lr = schedule.run_learning_rate(base, self._iteration, total, decay=self.config.lr_decay,
                                                decades=self.config.lr_decay_decades, after=float(self.config.lr_after_schedule))
                self._set_optimizer_lr(self._named_optimizers[full_name], lr)

    def _settings(self, module_id: ModuleID, module) -> tuple[list, UpdateSettings]:
        if module_id not in self._update_settings:
            cfg, env = self.config, dict(self.config.env_config or {})
            flist = filter_registry.resolve(module.resolved_config["filters"])
            max_steps = int(round(float(np.asarray(module.observation_space["state"].high)[STEP])))
            settings = UpdateSettings(
                gamma=float(cfg.gamma),
                reward_scale=float(env.get("reward_scale", REWARD_SCALE)),
                overexposure_weight=float(env.get("overexposure_weight", OVEREXPOSURE_WEIGHT)),
                reuse_weight=float(env.get("reuse_penalty", REUSE_WEIGHT)),
                entropy_weight=float(cfg.entropy_weight),
                filter_epsilon=float(module.filter_epsilon),
                max_steps=max_steps,
                bound_weight=float(cfg.bound_weight),
                all_filters=bool(cfg.all_filters),
            )
            self._update_settings[module_id] = (flist, settings)
        return self._update_settings[module_id]

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Move each module's averaged policy (``model_config["policy_average"]``) towards ``pi``."""
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            self.module[module_id].unwrapped().update_policy_average()

    # --- the loss -----------------------------------------------------------------------
    def compute_loss_for_module(self, *, module_id: ModuleID, config=None, batch: dict[str, Any], fwd_out: dict[str, Any]):
        if not self._critic_loaded:
            raise RuntimeError("exposure learner: no discriminator weights yet (call set_critic_weights before update)")
        module = self.module[module_id].unwrapped()
        flist, settings = self._settings(module_id, module)
        obs = batch[Columns.OBS]
        out = UPDATES[self.config.update](
            functools.partial(module.policy_heads, net=module.pi),  # the trained policy, not its average
            module.vf,
            self.critic_score,
            flist,
            obs["image"],
            obs["state"],
            progress=self._progress,
            settings=settings,
            generator=self._generator,
        )
        stats = out.stats()
        counts = torch.bincount(out.filter_choice, minlength=len(flist)).float() / len(out.filter_choice)
        for f, frac in zip(flist, counts.tolist()):
            stats[f"filter_frac_{f.short_name}"] = frac
        stats["progress"] = self._progress
        self.metrics.log_dict(stats, key=module_id, window=1)
        return out.total
