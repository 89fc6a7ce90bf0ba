"""Datasets: photo folders, the FiveK recipe and the bundled demo set, all as :class:`ImagePack`."""

from .pack import ImagePack

__all__ = ["ImagePack"]
