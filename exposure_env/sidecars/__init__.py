"""Editor sidecars: the agent's edit list as develop settings that darktable, RawTherapee and Lightroom open.

One module per editor (:mod:`.darktable`, :mod:`.rawtherapee`, :mod:`.lightroom`), the shared input
decoding (:mod:`.decoding`) and curve fitting (:mod:`.curvefit`), and the files on disk
(:mod:`.files`: names, atomic writes, the JSON edit record of ``exposure retouch``).

>>> from exposure_env.edits import Edit
>>> from exposure_env.sidecars import InputDecoding, render
>>> xmp = render("darktable", InputDecoding("prophoto"), [Edit("E", (1.0,))], "photo.tif")
>>> b"darktable:history" in xmp
True
"""

from __future__ import annotations

from .decoding import DecodingError, InputDecoding
from .files import (
    EDITORS,
    RECORD_VERSION,
    SUFFIXES,
    EditRecord,
    SidecarError,
    export_record,
    load_record,
    parse_editors,
    render,
    resolve_decoding,
    sidecar_paths,
    write_sidecars,
)

__all__ = [
    "DecodingError",
    "EDITORS",
    "EditRecord",
    "InputDecoding",
    "RECORD_VERSION",
    "SUFFIXES",
    "SidecarError",
    "export_record",
    "load_record",
    "parse_editors",
    "render",
    "resolve_decoding",
    "sidecar_paths",
    "write_sidecars",
]
