"""Datasets: photo folders, the FiveK recipe and the bundled demo set, all as :class:`ImagePack`."""

from .pack import ImagePack

# Loaded on first use (the demo imports the filters, hence torch).
_LAZY = {
    "random_square_crops": ".augment",
    "FolderDataset": ".folder",
    "pack_folder": ".folder",
    "FiveKDataset": ".fivek",
    "DemoData": ".demo",
    "demo_packs": ".demo",
    "write_demo_folders": ".demo",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ImagePack", *_LAZY]
