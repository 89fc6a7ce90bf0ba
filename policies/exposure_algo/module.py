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
"""

from __future__ import annotations

from typing import Any

import torch

from policies.rl_module import ExposureRLModule

#: ``pi.log_std`` of a deterministic policy (std = exp(-20) ~ 2e-9 in action units).
DETERMINISTIC_LOG_STD = -20.0


class ExposureAlgoRLModule(ExposureRLModule):
    """Deterministic-parameter policy + value for the Exposure actor-critic (module docstring)."""

    def setup(self):
        super().setup()
        with torch.no_grad():
            self.pi.log_std.fill_(DETERMINISTIC_LOG_STD)
        self.pi.log_std.requires_grad_(False)

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
