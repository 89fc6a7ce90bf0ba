"""``ExposureAlgoRLModule``: :class:`policies.rl_module.ExposureRLModule` for ``--algo exposure``.

The same networks, spaces, ``policy_heads`` and ``policy_outputs`` as PPO's module (so its
checkpoints export and retouch exactly like PPO's); three differences of behaviour:

* the parameter heads are deterministic (SPEC §6): ``pi.log_std`` is frozen at
  :data:`DETERMINISTIC_LOG_STD`, so env runners act with the mean parameters (a Gaussian of
  std ``2e-9``) and an exported policy's stochastic mode only varies the filter choice;
* dropout at decision time (the paper's one-to-many mapping, SPEC §3) when ``model_config``
  sets ``dropout > 0``: the policy feature's dropout then stays active in the env runners'
  exploration passes too (RLlib runs them in eval mode), not only in training;
* ``forward_train`` computes nothing: the learner evaluates the networks itself inside
  :mod:`policies.exposure_algo.episode_update` / :mod:`~policies.exposure_algo.td_update`.

**Averaged policy** (``model_config["policy_average"] = beta``, ``0 < beta < 1``; 0 = off): the
module also keeps ``pi_average``, an exponential moving average of ``pi``'s weights updated after
every learner update (:meth:`ExposureAlgoRLModule.update_policy_average`, with the usual warm-up
``min(beta, (1 + n) / (10 + n))`` after ``n`` updates). The env runners explore with ``pi``
(the policy being trained); validation, checkpoints selected by it, export and the retoucher
decide with ``pi_average`` (:meth:`~ExposureAlgoRLModule.policy_heads`). A GAN's generator
oscillates around the moving critic; the average of its recent weights is steadier and usually
better than any single snapshot (the weight averaging of progressive GANs / StyleGAN, Polyak
averaging in RL). Not in the 2018 release or SPEC. Off by default: at 0.99 it lost on both demo
styles in 5-minute runs (docs/benchmarks.md "Quality candidates"), lagging the policy it averages.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from policies.rl_module import ExposureRLModule

#: ``pi.log_std`` of a deterministic policy (std = exp(-20) ~ 2e-9 in action units).
DETERMINISTIC_LOG_STD = -20.0


class ExposureAlgoRLModule(ExposureRLModule):
    """Deterministic-parameter policy + value for the Exposure actor-critic (module docstring)."""

    averages_policy = True

    def setup(self):
        super().setup()
        with torch.no_grad():
            self.pi.log_std.fill_(DETERMINISTIC_LOG_STD)
        self.pi.log_std.requires_grad_(False)
        self.pi_average: nn.Module | None = None
        if float(self.resolved_config["policy_average"]) > 0:
            self.pi_average = copy.deepcopy(self.pi).requires_grad_(False)
            self.register_buffer("policy_average_updates", torch.zeros((), dtype=torch.int64))

    def policy_heads(self, image: torch.Tensor, state: torch.Tensor, net: nn.Module | None = None):
        """Raw outputs ``(logits (N, F), means (N, F, P), log_std (F, P))`` of ``net``; by
        default the averaged policy when there is one, else ``pi`` (module docstring)."""
        return super().policy_heads(image, state, net or self.pi_average)

    @torch.no_grad()
    def update_policy_average(self) -> float:
        """Move ``pi_average`` towards ``pi`` after one learner update; the decay used (0: none kept)."""
        if self.pi_average is None:
            return 0.0
        n = int(self.policy_average_updates)
        beta = min(float(self.resolved_config["policy_average"]), (1.0 + n) / (10.0 + n))
        for avg, cur in zip(self.pi_average.parameters(), self.pi.parameters()):
            avg.lerp_(cur, 1.0 - beta)
        self.policy_average_updates += 1
        return beta

    @property
    def decision_dropout(self) -> bool:
        """Whether the policy feature's dropout is applied when acting (``dropout > 0``)."""
        return float(self.resolved_config.get("dropout", 0.0)) > 0

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        if not self.decision_dropout:
            return self._forward(batch, **kwargs)
        drops = [m for m in self.pi.param_encoder.modules() if isinstance(m, torch.nn.Dropout)]
        was = [m.training for m in drops]
        for m in drops:
            m.train()
        try:
            return self._forward(batch, **kwargs)
        finally:
            for m, w in zip(drops, was):
                m.train(w)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {}
