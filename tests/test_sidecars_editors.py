"""Sidecars rendered by the real darktable / RawTherapee, compared with the project's own render.

The editors are Debian packages (``apt-get install darktable rawtherapee``; ``.ci/run`` installs
them). These tests install nothing: without a program they skip, saying which. A sidecar the
editor rejects or ignores fails: its render must be far closer to our edited render than to
our unedited one. Photos are 128 x 128 (darktable's start-up, ~5 s, dominates a render).
"""

from __future__ import annotations

import ctypes
import glob
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from exposure_env import io as image_io
from exposure_env.edits import Edit, apply_edits
from exposure_env.sidecars import InputDecoding, render
from exposure_env.sidecars import darktable as DT
from exposure_env.sidecars import editors
from rewards.metrics import delta_e76, psnr

SLOPES = (0.6, 1.9, 0.7, 1.5, 0.5, 2.0, 0.9, 1.2)
#: Filters each editor expresses exactly, in one list (darktable: partial BW too).
EXACT = {
    "darktable": [Edit("E", (0.6,)), Edit("G", (0.5,)), Edit("W", (1.15, 0.95, 0.85)), Edit("BW", (0.4,)), Edit("L", (0.03, 1.2))],
    "rawtherapee": [Edit("E", (0.6,)), Edit("G", (0.5,)), Edit("W", (1.15, 0.95, 0.85)), Edit("T", SLOPES),
                    Edit("L", (0.03, 1.2)), Edit("BW", (1.0,))],
}
CURVES = [Edit("T", SLOPES), Edit("C", tuple(np.linspace(1.1, 0.9, 24))), Edit("E", (0.3,)), Edit("G", (0.6,))]
APPROX = [Edit("Ct", (0.5,)), Edit("S+", (0.5,)), Edit("G", (0.5,))]


def _need(editor: str) -> None:
    if editors.program(editor) is None:
        pytest.skip(f"{editors.PROGRAMS[editor]} is not installed (apt-get install {editor}); editor check skipped")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A real photo (scikit-image's astronaut, 128 x 128) as 16-bit TIFF, 8-bit PNG and JPEG."""
    from skimage import data

    d = tmp_path_factory.mktemp("editor_photos")
    img = data.astronaut()[::4, ::4]
    tifffile.imwrite(d / "a16.tif", (img.astype(np.float64) / 255 * 65535).round().astype(np.uint16), photometric="rgb")
    Image.fromarray(img).save(d / "a8.png")
    Image.fromarray(img).save(d / "a8.jpg", quality=95)
    return d


def _check(editor, photo, edits, tmp_path, min_psnr):
    """Render with the editor; require ``min_psnr`` to our render and clear distance from the unedited one."""
    dec = InputDecoding.for_file(photo)
    side = tmp_path / f"{photo.stem}.{editor}.side"
    side.write_bytes(render(editor, dec, edits, photo.name))
    got = editors.render(editor, photo, side, scratch=tmp_path)
    linear = image_io.read_image(photo)
    ours = np.clip(apply_edits(linear, edits), 0, 1)
    plain = np.clip(linear, 0, 1)
    assert got.shape == ours.shape
    agree, ignored = psnr(got, ours), psnr(got, plain)
    assert agree >= min_psnr, f"{editor} on {photo.name}: {agree:.1f} dB to our render (want >= {min_psnr})"
    assert agree >= ignored + 10, f"{editor} on {photo.name}: sidecar ignored? {agree:.1f} dB edited vs {ignored:.1f} dB unedited"
    return agree, delta_e76(got, ours)


@pytest.mark.slow
def test_darktable_renders_exact_filters(photos, tmp_path):
    _need("darktable")
    agree, de = _check("darktable", photos / "a16.tif", EXACT["darktable"], tmp_path, 50.0)
    assert de < 0.5


@pytest.mark.slow
def test_darktable_renders_curves_and_approximations(photos, tmp_path):
    _need("darktable")
    _check("darktable", photos / "a8.png", CURVES, tmp_path, 50.0)
    _check("darktable", photos / "a8.jpg", APPROX, tmp_path, 30.0)


def test_rawtherapee_renders_exact_filters(photos, tmp_path):
    _need("rawtherapee")
    agree, de = _check("rawtherapee", photos / "a16.tif", EXACT["rawtherapee"], tmp_path, 50.0)
    assert de < 0.5
    _check("rawtherapee", photos / "a8.jpg", CURVES, tmp_path, 50.0)


def test_rawtherapee_renders_approximations(photos, tmp_path):
    _need("rawtherapee")
    _check("rawtherapee", photos / "a8.png", APPROX, tmp_path, 30.0)


# --------------------------------------------------------------------------- darktable's own struct layouts
class _Intro(ctypes.Structure):
    _fields_ = [("api_version", ctypes.c_int), ("params_version", ctypes.c_int), ("type_name", ctypes.c_char_p),
                ("size", ctypes.c_size_t)]


class _Header(ctypes.Structure):  # dt_introspection_type_header_t (introspection API 8)
    _fields_ = [("type", ctypes.c_int), ("type_name", ctypes.c_char_p), ("name", ctypes.c_char_p),
                ("field_name", ctypes.c_char_p), ("description", ctypes.c_char_p), ("size", ctypes.c_size_t),
                ("offset", ctypes.c_size_t), ("so", ctypes.c_void_p)]


#: Fields whose byte offsets the writer relies on (op -> {field: offset}).
OFFSETS = {
    "exposure": {"black": 4, "exposure": 8},
    "rgblevels": {"preserve_colors": 4, "levels": 8},
    "rgbcurve": {"curve_num_nodes": 480, "curve_type": 492, "curve_autoscale": 504, "preserve_colors": 512},
    "channelmixerrgb": {"normalize_R": 96, "adaptation": 132, "gamut": 148, "clip": 152, "version": 156},
    "colorin": {"intent": 516, "type_work": 528},
    "velvia": {"bias": 4},
}


def test_struct_layouts_match_the_installed_darktable():
    libs = sorted(glob.glob("/usr/lib/*/darktable/libdarktable.so")) + sorted(glob.glob("/usr/lib/darktable/libdarktable.so"))
    if not libs:
        pytest.skip("darktable's libraries are not installed (apt-get install darktable); layout check skipped")
    ctypes.CDLL(libs[0], mode=ctypes.RTLD_GLOBAL)
    version = None
    for op, (modversion, fmt) in DT.MODULES.items():
        lib = ctypes.CDLL(str(Path(libs[0]).parent / "plugins" / f"lib{op}.so"))
        lib.introspection_init.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.get_introspection.restype = ctypes.POINTER(_Intro)
        intro = lib.get_introspection().contents
        lib.introspection_init(None, intro.api_version)
        assert intro.params_version == modversion, op
        assert intro.size == struct.calcsize(fmt), op
        lib.get_f.restype = ctypes.POINTER(_Header)
        lib.get_f.argtypes = [ctypes.c_char_p]
        for name, offset in OFFSETS.get(op, {}).items():
            field = lib.get_f(name.encode())
            assert field and field.contents.offset == offset, f"{op}.{name}"
        version = version or intro.api_version
    assert version == 8
