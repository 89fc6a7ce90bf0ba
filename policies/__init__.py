"""Policies: RLlib RLModules and learners, export, and the batch retoucher."""
