"""A bundled demo dataset made offline from the real photographs shipped with scikit-image.

* :mod:`.photos` -- the nine colour photographs (eight scenes) and :class:`PhotoSplit`;
* :mod:`.styles` -- the RAW-like degradation and the styles (``expert``, ``faded``), each a
  five-step edit list of the agent's own filters with its own split of the photos;
* :mod:`.build`  -- the packs (:func:`demo_packs`) and full-size folders (:func:`write_demo_folders`).

Splits (inputs / targets / validation, disjoint by scene; the targets' crops span the
validation truth's luminance, contrast and saturation):

* ``expert``: astronaut, chelsea, hubble / coffee, rocket, ihc / motorcycle left + right, retina;
* ``faded``:  coffee, motorcycle left + right, hubble, retina / astronaut, rocket, ihc / chelsea.

``demo_packs(seed, style=...)`` -> :class:`DemoData` (``train_inputs`` ~1200 crops,
``train_targets`` ~1200, ``val`` ~128 paired crops, 80x80, random squares of 0.25-1.0 of the
short side), deterministic per seed, cached as ``.npz`` under ``$EXPOSURE_RL_CACHE/demo``
(default ``~/.cache/exposure-rl/demo``).
"""

from .build import CROPS, DEMO_VERSION, DemoData, DemoFolders, build_demo, demo_cache_dir, demo_packs, write_demo_folders
from .photos import GROUPS, PHOTO_FILES, PhotoSplit, load_photo, photo_path
from .styles import DEFAULT_STYLE, STYLES, Style, degrade, expert_edits, expert_style, faded_edits, get_style

__all__ = [
    "CROPS",
    "DEFAULT_STYLE",
    "DEMO_VERSION",
    "GROUPS",
    "PHOTO_FILES",
    "STYLES",
    "DemoData",
    "DemoFolders",
    "PhotoSplit",
    "Style",
    "build_demo",
    "degrade",
    "demo_cache_dir",
    "demo_packs",
    "expert_edits",
    "expert_style",
    "faded_edits",
    "get_style",
    "load_photo",
    "photo_path",
    "write_demo_folders",
]
