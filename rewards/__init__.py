"""Rewards: the WGAN-GP discriminator (and its Ray actor), penalties and quality metrics."""
