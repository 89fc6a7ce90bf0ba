"""One module per ``exposure`` subcommand; each exposes ``register(app)``.

Heavy imports (ray, torch, rllib) stay inside the command bodies so ``exposure --help``
and ``exposure filters`` start fast.
"""
