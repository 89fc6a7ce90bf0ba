"""The Exposure paper's own actor-critic (SPEC §6) as an RLlib algorithm, ``--algo exposure``.

The pure torch update math: ``episode_update`` (the default), ``td_update`` (the paper's) and
``update_parts`` (what both share); ``replay`` the pool of image states; ``learner`` the RLlib
``TorchLearner``; ``module`` its RLModule; ``algorithm`` the ``Algorithm``, its ``ExposureConfig``
and the settings ``tune_configs.algorithms.build_config`` finishes it with. Importing this package
does not import Ray; import ``policies.exposure_algo.algorithm`` for the RLlib parts.
"""
