"""Entry points: the ``exposure`` CLI, RLlib/Tune configurations and the FiveK/demo recipes."""
