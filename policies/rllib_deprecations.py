"""RLlib 2.60 deprecation messages that RLlib's own code logs when it is used the current way.

* ``RLModule(config=[RLModuleConfig object])``: ``RLModule.__init__`` itself still builds the
  deprecated ``RLModuleConfig`` (kept for old custom modules), so every module constructed with
  the current keywords (``observation_space``, ``action_space``, ``model_config``) logs it once
  per process -- in the driver and in every env runner;
* ``ray.rllib.algorithms.appo.torch.appo_torch_rl_module.APPOTorchRLModule``:
  ``APPOConfig.get_default_rl_module_spec`` imports RLlib's own backward-compatibility alias.

Neither names anything this project calls or could call differently. :func:`silence` drops
exactly these records from RLlib's deprecation logger; every other deprecation still shows
(this project's own calls use the current API: ``config.learners(learner_class=...)``,
``RLModule(observation_space=..., action_space=..., model_config=...)``).
"""

from __future__ import annotations

import logging

#: The logger of ``ray._common.deprecation.deprecation_warning``.
DEPRECATION_LOGGER = "ray._common.deprecation"
#: Fragments of the messages RLlib logs from inside its own code (see the module docstring).
RLLIB_INTERNAL = (
    "`RLModule(config=[RLModuleConfig object])`",
    "`ray.rllib.algorithms.appo.torch.appo_torch_rl_module.APPOTorchRLModule`",
)


class _DropRLlibInternal(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in RLLIB_INTERNAL)


def silence() -> None:
    """Drop RLlib's internal deprecation records in this process (idempotent)."""
    logger = logging.getLogger(DEPRECATION_LOGGER)
    if not any(isinstance(f, _DropRLlibInternal) for f in logger.filters):
        logger.addFilter(_DropRLlibInternal())
