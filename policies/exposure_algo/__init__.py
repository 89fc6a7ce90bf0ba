"""The Exposure paper's own actor-critic (SPEC §6) as an RLlib algorithm, ``--algo exposure``.

``losses`` is the pure torch update math; ``replay`` the pool of image states; ``learner`` the
RLlib ``TorchLearner``; ``algorithm`` the ``Algorithm`` and its ``ExposureConfig``. Importing
this package does not import Ray; import ``policies.exposure_algo.algorithm`` for the RLlib parts.
"""
