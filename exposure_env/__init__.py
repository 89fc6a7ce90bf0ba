"""exposure-rl's white box: filters, colour math, datasets and the ``Exposure-v0`` environment.

Importing the package registers ``"Exposure-v0"`` with Gymnasium (entry point
:class:`exposure_env.env.ExposureEnv`, vector entry point
:class:`exposure_env.vector_env.ExposureVectorEnv`); the environment modules themselves are
imported only when an environment is made.
"""

from gymnasium.envs.registration import register as _register
from gymnasium.envs.registration import registry as _registry

if "Exposure-v0" not in _registry:
    _register(
        id="Exposure-v0",
        entry_point="exposure_env.env:ExposureEnv",
        vector_entry_point="exposure_env.vector_env:ExposureVectorEnv",
    )
