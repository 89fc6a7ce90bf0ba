"""darktable ``.xmp`` sidecar: one ``darktable:history`` entry per edit, module structs of darktable 4.2.

The history reproduces the project's render of the *original* photo: ``colorin`` takes the file
values as linear Rec.709 (no conversion; working profile linear Rec.709, so per-channel edits act
on the same RGB as ours), the input decoding of :mod:`.decoding`, one module instance per edit
in edit order (a custom ``iop_order_list``: darktable's pipeline order is otherwise fixed), and a
final curve that undoes ``colorout``'s sRGB encoding, so darktable's sRGB export holds our output
values (and its screen shows them as our output file looks).

Module parameters are the C structs of **darktable 4.2.1** (``DT_MODULE_INTROSPECTION`` version
= ``modversion``), packed little-endian with :mod:`struct` (sizes checked by the tests against
darktable's own introspection when darktable is installed):

======================  ====  =====  ===============================================================
module                  ver   bytes  fields
======================  ====  =====  ===============================================================
colorin                 7     1044   type, filename[512], intent, normalize, blue_mapping, type_work,
                                     filename_work[512]
colorout                5     520    type, filename[512], intent
exposure                6     24     mode, black, exposure (EV), deflicker_percentile,
                                     deflicker_target_level, compensate_exposure_bias
rgblevels               1     44     autoscale, preserve_colors, levels[3][3] (black, grey, white)
rgbcurve                1     516    curve_nodes[3][20]{x, y}, curve_num_nodes[3], curve_type[3],
                                     curve_autoscale, compensate_middle_grey, preserve_colors
channelmixerrgb         3     160    red/green/blue/saturation/lightness/grey[4], 6 normalize flags,
                                     illuminant, illum_fluo, illum_led, adaptation, x, y,
                                     temperature, gamut, clip, version
velvia                  2     8      strength (%), bias
======================  ====  =====  ===============================================================

Per filter (exact = same formula up to float/LUT rounding; measured in docs/benchmarks.md):

* E exposure: ``exposure`` (black 0) -- exact.
* G gamma: two entries -- an ``rgb curve`` for the floor ``max(x, 0.001)`` (flat to 0.001, then the
  identity; rounded only between 0.001 and 0.002) and ``rgb levels`` linked, grey point set so
  darktable's ``10 ** ((grey - mid) / half)`` equals the exponent -- exact.
* W white balance: ``color calibration`` in "RGB" (no CAT) mode, diagonal channel mixer -- exact.
* S+ saturation: ``velvia`` (bias 1, strength ``VELVIA_STRENGTH * p`` %) -- approximation: darktable
  has no HSV saturation; 50 % was the best of strengths 10..100 on four photos (16-bit TIFF and
  PNG), about 1 dB better than leaving S+ out.
* T tone curve: ``rgb curve`` linked, monotone spline through 20 least-squares nodes (0, 1, every
  knot +/- 0.01 and the 4 sharpest knots) -- exact but for corners rounded within 0.01.
* Ct contrast: ``rgb curve`` with "preserve colors: luminance" -- darktable's luminance is Rec.709
  ``Y`` (0.2126, 0.7152, 0.0722), ours 0.27 R + 0.67 G + 0.06 B: approximation.
* BW black & white: ``color calibration`` mixer rows ``(1 - p) I + p [L weights]`` -- exact.
* C colour curves: ``rgb curve`` independent channels, 3 curves fitted like T -- as T.
* Level: ``rgb levels`` (black, white, grey in the middle) -- exact up to the white point (beyond
  it darktable keeps rising where we clip at 1: visible only if a later step darkens again).
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Sequence
from xml.etree import ElementTree as ET

import numpy as np

from ..colour import LUM_WEIGHTS
from ..colourspace import linear_to_srgb, srgb_to_linear
from ..filters.curves import SEGMENTS, curve as segment_curve
from ..filters.gamma import FLOOR
from .curvefit import DarktableHermite, fit, kink_nodes, sample_grid
from .decoding import InputDecoding

DARKTABLE_VERSION = "4.2.1"

# dt_colorspaces_color_profile_type_t (src/common/colorspaces.h, 4.2)
SRGB, LIN_REC709 = 1, 3
# rgbcurve / rgblevels enums
LINKED, INDEPENDENT = 0, 1
NORM_NONE, NORM_LUMINANCE = 0, 1
MONOTONE_HERMITE = 2
# channelmixerrgb enums
ILLUMINANT_PIPE, ILLUM_FLUO_F3, ILLUM_LED_B5, ADAPTATION_RGB, CHANNELMIXERRGB_V_3 = 0, 2, 4, 4, 2
#: S+ amount -> velvia strength in % (fitted, see the module docstring).
VELVIA_STRENGTH = 50.0
#: The Gamma filter's floor, ``max(x, 0.001)``.
GAMMA_FLOOR = FLOOR

#: darktable 4.2.1's "v3.0" pipeline order (``v30_order`` in src/common/iop_order.c).
V30_ORDER = (
    "rawprepare invert temperature highlights cacorrect hotpixels rawdenoise demosaic denoiseprofile "
    "bilateral rotatepixels scalepixels lens cacorrectrgb hazeremoval ashift flip clipping liquify spots "
    "retouch exposure mask_manager tonemap toneequal crop graduatednd profile_gamma equalizer colorin "
    "channelmixerrgb diffuse censorize negadoctor blurs nlmeans colorchecker defringe atrous lowpass "
    "highpass sharpen colortransfer colormapping channelmixer basicadj colorbalance colorbalancergb "
    "rgbcurve rgblevels basecurve filmic sigmoid filmicrgb lut3d colisa tonecurve levels shadhi "
    "zonesystem globaltonemap relight bilat colorcorrection colorcontrast velvia vibrance colorzones "
    "bloom colorize lowlight monochrome grain soften splittoning vignette colorreconstruct colorout "
    "clahe finalscale overexposed rawoverexposed dither borders watermark gamma"
).split()

#: op -> (modversion, struct format); the tests compare sizes with darktable's introspection.
MODULES = {
    "colorin": (7, "<i512siiii512s"),
    "colorout": (5, "<i512si"),
    "exposure": (6, "<iffffi"),
    "rgblevels": (1, "<ii9f"),
    "rgbcurve": (1, "<120f3i3iiii"),
    "channelmixerrgb": (3, "<24f6i4i4fii"),
    "velvia": (2, "<ff"),
}


@dataclass(frozen=True)
class HistoryItem:
    """One ``darktable:history`` entry: operation, struct bytes and a label (``multi_name``)."""

    operation: str
    params: bytes
    label: str = ""

    @property
    def modversion(self) -> int:
        return MODULES[self.operation][0]


def pack(op: str, *values) -> bytes:
    """The params struct of ``op`` from its field values (see :data:`MODULES`)."""
    fmt = MODULES[op][1]
    return struct.pack(fmt, *values)


def unpack(op: str, data: bytes) -> tuple:
    """Inverse of :func:`pack` (raises ``struct.error`` on a wrong size)."""
    return struct.unpack(MODULES[op][1], data)


# --------------------------------------------------------------------------- module params
def colorin(input_type: int, work_type: int = LIN_REC709) -> bytes:
    return pack("colorin", input_type, b"", 0, 0, 0, work_type, b"")


def colorout(output_type: int = SRGB) -> bytes:
    return pack("colorout", output_type, b"", 0)


def exposure(ev: float, black: float = 0.0) -> bytes:
    """``out = (in - black) / (2 ** -ev - black)``; manual mode, no exposure-bias compensation."""
    return pack("exposure", 0, black, ev, 50.0, -4.0, 0)


def rgblevels(black: float, white: float, gamma: float, independent: Sequence | None = None) -> bytes:
    """``out = ((in - black) / (white - black)) ** gamma`` (0 below black), linked channels.

    darktable stores a grey point, ``gamma = 10 ** ((grey - mid) / half)`` with ``mid`` and
    ``half`` the centre and half-width of [black, white]. ``independent`` = three
    ``(black, white, gamma)`` triples, one per channel.
    """
    triples = [(black, white, gamma)] * 3 if independent is None else list(independent)
    levels = []
    for b, w, g in triples:
        half = (w - b) / 2.0
        levels += [b, b + half + half * math.log10(g), w]
    return pack("rgblevels", LINKED if independent is None else INDEPENDENT, NORM_NONE, *levels)


def rgbcurve(curves: Sequence[tuple[Sequence[float], Sequence[float]]], preserve: int = NORM_NONE) -> bytes:
    """One ``(xs, ys)`` curve (linked channels) or three (R, G, B), monotone spline, <= 20 nodes each."""
    if len(curves) not in (1, 3):
        raise ValueError("rgbcurve: give one curve (linked) or three (R, G, B)")
    nodes, counts = [], []
    for c in range(3):
        xs, ys = curves[c] if c < len(curves) else curves[0]
        if not 2 <= len(xs) <= DarktableHermite.max_nodes:
            raise ValueError(f"rgbcurve: 2..20 nodes per curve, got {len(xs)}")
        flat = [v for xy in zip(xs, ys) for v in xy]
        nodes += flat + [0.0] * (2 * DarktableHermite.max_nodes - len(flat))
        counts.append(len(xs))
    autoscale = LINKED if len(curves) == 1 else INDEPENDENT
    return pack("rgbcurve", *nodes, *counts, *([MONOTONE_HERMITE] * 3), autoscale, 0, preserve)


def channel_mixer(matrix) -> bytes:
    """``color calibration`` as a plain RGB matrix in the working space (adaptation "none (RGB)")."""
    m = np.asarray(matrix, np.float64).reshape(3, 3)
    rows = [v for r in m for v in (*r, 0.0)]
    neutral = [0.0] * 12  # saturation, lightness, grey
    return pack("channelmixerrgb", *rows, *neutral, 0, 0, 0, 0, 0, 0, ILLUMINANT_PIPE, ILLUM_FLUO_F3,
                ILLUM_LED_B5, ADAPTATION_RGB, 0.3457, 0.3585, 5003.0, 0.0, 0, CHANNELMIXERRGB_V_3)


def velvia(strength: float, bias: float = 1.0) -> bytes:
    """``velvia``: saturation boost weighted towards less saturated pixels (strength 0..100 %)."""
    return pack("velvia", float(np.clip(strength, 0.0, 100.0)), bias)


# --------------------------------------------------------------------------- curves
def _tone_nodes(slopes) -> tuple[np.ndarray, np.ndarray]:
    """20 nodes for one 8-segment curve: 0, 1, each knot +/- 0.01, the 4 sharpest knots themselves."""
    s = np.asarray(slopes, np.float64)
    knots = np.arange(1, SEGMENTS) / SEGMENTS
    sharp = knots[np.argsort(-np.abs(np.diff(s)))[:4]]
    xn = kink_nodes(knots, 0.01, sharp)
    t = sample_grid()
    return xn, fit(DarktableHermite, xn, t, segment_curve(t, list(s)))


def _contrast_nodes(amount: float) -> tuple[np.ndarray, np.ndarray]:
    """Ct's luminance curve ``(1 - p) l + p (0.5 - 0.5 cos(pi l))`` on 20 uniform nodes."""
    xn = np.linspace(0.0, 1.0, DarktableHermite.max_nodes)
    t = sample_grid()
    return xn, fit(DarktableHermite, xn, t, (1 - amount) * t + amount * (0.5 - 0.5 * np.cos(np.pi * t)))


def _encode_nodes() -> tuple[np.ndarray, np.ndarray]:
    """The sRGB EOTF on 20 nodes, weighted so the error after ``colorout``'s sRGB encoding is small."""
    xn = np.linspace(0.0, 1.0, DarktableHermite.max_nodes) ** 1.5
    t = sample_grid()
    target = srgb_to_linear(t).astype(np.float64)
    slope = np.gradient(linear_to_srgb(target).astype(np.float64), target + 1e-9)
    return xn, fit(DarktableHermite, xn, t, target, np.minimum(slope, 50.0) ** 2)


# --------------------------------------------------------------------------- history
def edit_items(edit, index: int) -> list[HistoryItem]:
    """The module instance(s) for one edit (see the module docstring for the mapping)."""
    label = f"{index}: {edit.describe()}"[:60]
    if edit.filter == "G":  # max(x, 0.001) ** g: a floor curve, then the power
        floor = GAMMA_FLOOR
        xs, ys = [0.0, floor, 2 * floor, 1.0], [floor, floor, 2 * floor, 1.0]
        return [HistoryItem("rgbcurve", rgbcurve([(xs, ys)]), f"{index}: floor {floor:g} before the gamma"),
                HistoryItem("rgblevels", rgblevels(0.0, 1.0, edit.params[0]), label)]
    return [_edit_item(edit, label)]


def _edit_item(edit, label: str) -> HistoryItem:
    p = edit.params
    f = edit.filter
    if f == "E":
        return HistoryItem("exposure", exposure(p[0]), label)
    if f == "W":
        return HistoryItem("channelmixerrgb", channel_mixer(np.diag(p)), label)
    if f == "S+":
        return HistoryItem("velvia", velvia(VELVIA_STRENGTH * p[0]), label)
    if f == "T":
        return HistoryItem("rgbcurve", rgbcurve([_tone_nodes(p)]), label)
    if f == "Ct":
        return HistoryItem("rgbcurve", rgbcurve([_contrast_nodes(p[0])], preserve=NORM_LUMINANCE), label)
    if f == "BW":
        w = np.asarray(LUM_WEIGHTS)
        return HistoryItem("channelmixerrgb", channel_mixer((1 - p[0]) * np.eye(3) + p[0] * np.outer(np.ones(3), w)), label)
    if f == "C":
        return HistoryItem("rgbcurve", rgbcurve([_tone_nodes(p[k * SEGMENTS : (k + 1) * SEGMENTS]) for k in range(3)]), label)
    if f == "L":
        return HistoryItem("rgblevels", rgblevels(p[0], p[1], 1.0), label)
    raise ValueError(f"darktable: no module for filter {f!r}")


def history(decoding: InputDecoding, edits) -> list[HistoryItem]:
    """``colorin``, the input decoding, one item per edit, the display encoding, ``colorout``."""
    items = [HistoryItem("colorin", colorin(SRGB if decoding.space == "srgb-exact" else LIN_REC709), "")]
    if decoding.space in ("prophoto", "srgb"):
        white = decoding.gain ** (-1.0 / decoding.power)  # gain * x^p == (x / white)^p
        items.append(HistoryItem("rgblevels", rgblevels(0.0, white, decoding.power), f"input decoding ({decoding.space})"))
    for k, e in enumerate(edits):
        items += edit_items(e, k + 1)
    items.append(HistoryItem("rgbcurve", rgbcurve([_encode_nodes()]), "display encoding (undo sRGB)"))
    items.append(HistoryItem("colorout", colorout(SRGB), ""))
    return items


def _priorities(items: Sequence[HistoryItem]) -> list[int]:
    seen: dict[str, int] = {}
    out = []
    for it in items:
        out.append(seen.get(it.operation, 0))
        seen[it.operation] = out[-1] + 1
    return out


def iop_order(items: Sequence[HistoryItem]) -> list[tuple[str, int]]:
    """darktable's v3.0 order with our instances moved, in history order, right after ``colorin``."""
    ours = [(it.operation, k) for it, k in zip(items, _priorities(items)) if it.operation not in ("colorin", "colorout")]
    moved = {op for op, _ in ours}
    base = [op for op in V30_ORDER if op not in moved]
    at = base.index("colorin") + 1
    return [(op, 0) for op in base[:at]] + ours + [(op, 0) for op in base[at:]]


def encode_params(data: bytes) -> str:
    """darktable's XMP encoding: ``gz`` + 2-digit factor + base64(zlib) for large structs, else hex."""
    if len(data) <= 100:
        return data.hex()
    packed = zlib.compress(data, 9)
    factor = min(len(data) // len(packed) + 1, 99)
    return f"gz{factor:02d}" + base64.b64encode(packed).decode("ascii")


def decode_params(text: str) -> bytes:
    """Inverse of :func:`encode_params` (also reads darktable's own output)."""
    if text.startswith("gz"):
        return zlib.decompress(base64.b64decode(text[4:]))
    return bytes.fromhex(text)


NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "darktable": "http://darktable.sf.net/",
}


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def to_xmp(items: Sequence[HistoryItem], source_name: str) -> bytes:
    """The sidecar document (UTF-8 bytes) for a history."""
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(_q("x", "xmpmeta"), {_q("x", "xmptk"): "exposure-rl (ElementTree)"})
    rdf = ET.SubElement(root, _q("rdf", "RDF"))
    order = iop_order(items)
    desc = ET.SubElement(rdf, _q("rdf", "Description"), {
        _q("rdf", "about"): "",
        _q("xmpMM", "DerivedFrom"): source_name,
        _q("darktable", "xmp_version"): "5",
        _q("darktable", "raw_params"): "0",
        _q("darktable", "auto_presets_applied"): "1",
        _q("darktable", "history_end"): str(len(items)),
        _q("darktable", "iop_order_version"): "0",
        _q("darktable", "iop_order_list"): ",".join(f"{op},{k}" for op, k in order),
    })
    ET.SubElement(ET.SubElement(desc, _q("darktable", "masks_history")), _q("rdf", "Seq"))
    seq = ET.SubElement(ET.SubElement(desc, _q("darktable", "history")), _q("rdf", "Seq"))
    for num, (it, prio) in enumerate(zip(items, _priorities(items))):
        ET.SubElement(seq, _q("rdf", "li"), {
            _q("darktable", "num"): str(num),
            _q("darktable", "operation"): it.operation,
            _q("darktable", "enabled"): "1",
            _q("darktable", "modversion"): str(it.modversion),
            _q("darktable", "params"): encode_params(it.params),
            _q("darktable", "multi_name"): it.label,
            _q("darktable", "multi_priority"): str(prio),
        })
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def sidecar(decoding: InputDecoding, edits, source_name: str) -> bytes:
    """The whole ``.xmp`` for ``edits`` on the photo named ``source_name`` (see the module docstring)."""
    return to_xmp(history(decoding, edits), source_name)


def read_history(data: bytes) -> list[dict]:
    """History entries of a darktable XMP (parsed with defusedxml): operation, modversion, params, ..."""
    from defusedxml import ElementTree as SafeET

    root = SafeET.fromstring(data)
    out = []
    for li in root.iter(_q("rdf", "li")):
        a = {k.split("}", 1)[1]: v for k, v in li.attrib.items() if k.startswith(f"{{{NS['darktable']}}}")}
        if "operation" in a:
            out.append(dict(a, params=decode_params(a["params"]), modversion=int(a["modversion"]),
                            multi_priority=int(a.get("multi_priority", 0))))
    return out
