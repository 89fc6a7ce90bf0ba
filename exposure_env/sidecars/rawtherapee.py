"""RawTherapee ``.pp3`` processing profile (RawTherapee 5.9, profile ``Version=349``), written with configparser.

RawTherapee runs its tools in a fixed order, one instance each, so the profile maps the edit
list onto that order (:func:`plan`):

1. ``[Color Management]``: ``InputProfile=(none)`` takes the file values as linear sRGB-primaries
   RGB (no conversion, whatever profile the file embeds), working profile sRGB, output
   ``RTv4_sRGB``.
2. Ct, when every edit before it maps R, G and B alike (E, G, T, Level): ``[Exposure] Curve``
   (tone curve 1) = input decoding + those edits, ``Curve2`` in "Luminance" mode = Ct's curve
   ``(1 - p) Y + p (0.5 - 0.5 cos(pi Y))`` applied as a ratio -- approximate only in the
   luminance weights (RawTherapee: Rec.709 ``Y``; ours 0.27 / 0.67 / 0.06). Otherwise Ct
   becomes a CIELAB L* curve (``[Luminance Curve] LCurve``): exact on greys only.
3. ``[RGB Curves]`` (R, G, B "control cage" curves; RawTherapee applies them to sRGB-encoded
   values): the input decoding (unless in tone curve 1) and every other per-channel edit (E, G,
   W, T, C, Level) composed in list order, ending in our output value, so RawTherapee's sRGB
   output holds it. Exact up to the curve fit (:mod:`.curvefit`, 40-72 control points).
4. S+ -> ``[Exposure] Saturation`` (HSV saturation after the RGB curves): approximation, amount
   ``100 * SATURATION_SCALE * p``.
5. BW -> ``[Black & White]`` channel mixer with our weights 27/67/6, before-curve = sRGB encoding
   and after-curve = sRGB decoding (so the mix sees our values): exact for ``p = 1``. A partial
   blend has no tool: ``[Luminance Curve] Chromaticity = -100 p`` (approximation).

Per-channel edits that follow S+ or BW in the list, and S+/BW/Ct out of RawTherapee's order, are
moved to RawTherapee's place; :func:`plan` lists every approximation in ``Plan.notes``.
Rendering PNG/JPEG inputs with ``rawtherapee-cli`` needs ``-a`` (not parsed by default).
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass, field

import numpy as np

from ..colour import LUM_WEIGHTS
from ..colourspace import linear_to_srgb, srgb_to_linear
from .curvefit import RawTherapeeNurbs, fit_adaptive, per_channel_map, sample_grid
from .decoding import InputDecoding

APP_VERSION = "5.9"
PROFILE_VERSION = 349
#: Control points per fitted curve: uniform start, and the most after adding points at corners.
CAGE_POINTS = 40
MAX_CAGE_POINTS = 72
#: S+ amount -> RawTherapee ``[Exposure] Saturation`` / 100 (fitted on photos, see docs/benchmarks.md).
SATURATION_SCALE = 0.5
#: RawTherapee's order of the tools standing in for non-per-channel filters.
TOOL_ORDER = ("S+", "BW", "Ct")
#: Per-channel filters that map R, G and B through the same curve (RawTherapee's tone curves can hold them).
SAME_ON_ALL_CHANNELS = frozenset({"E", "G", "T", "L"})
_CURVE_TYPE_NURBS = 3


@dataclass
class Plan:
    """Where each edit goes (see the module docstring) and every approximation made.

    ``before_contrast``: per-channel edits in tone curve 1 when Ct runs as the luminance tone
    curve (tone curve 2); ``per_channel``: the RGB-curve edits; ``others``: S+ / BW / Ct edits;
    ``contrast``: ``"tone"`` (tone curve 2), ``"lab"`` (L* curve) or ``None``.
    """

    before_contrast: list = field(default_factory=list)
    per_channel: list = field(default_factory=list)
    others: dict = field(default_factory=dict)
    contrast: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.notes


def plan(edits) -> Plan:
    """Split ``edits`` into RawTherapee's stages and list every approximation made."""
    edits = list(edits)
    p = Plan()
    kinds = [e.filter for e in edits]
    if "Ct" in kinds:
        head = edits[: kinds.index("Ct")]
        if all(e.filter in SAME_ON_ALL_CHANNELS for e in head):
            p.contrast, p.before_contrast = "tone", head
            edits = edits[len(head):]
        else:
            p.contrast = "lab"
    seen_other = None
    start = len(p.before_contrast)
    for k, e in enumerate(edits, start + 1):
        if e.filter_obj.per_channel:
            if seen_other is not None and not (seen_other == "Ct" and p.contrast == "tone"):
                p.notes.append(f"step {k} ({e.filter}) moved before {seen_other}: RawTherapee's RGB curves come first")
            p.per_channel.append(e)
            continue
        if e.filter in p.others:
            p.notes.append(f"step {k} ({e.filter}): dropped, RawTherapee has one {e.filter} tool (the first is kept)")
            continue
        order = ("Ct",) + TOOL_ORDER[:2] if p.contrast == "tone" else TOOL_ORDER
        if seen_other is not None and order.index(e.filter) < order.index(seen_other):
            p.notes.append(f"step {k} ({e.filter}) moved before {seen_other}: RawTherapee runs {', '.join(order)} in that order")
        if seen_other is None or order.index(e.filter) > order.index(seen_other):
            seen_other = e.filter
        p.others[e.filter] = e
        if e.filter == "S+":
            p.notes.append(f"step {k} (S+): HSV saturation stands in for Saturation+")
        elif e.filter == "Ct":
            what = "a Rec.709-luminance tone curve" if p.contrast == "tone" else "a CIELAB L* curve"
            p.notes.append(f"step {k} (Ct): {what} stands in for the luminance contrast")
        elif e.filter == "BW" and e.params[0] < 0.999:
            p.notes.append(f"step {k} (BW {e.params[0]:.2f}): partial black & white as a CIELAB chroma reduction")
    return p


def _cage(xs: np.ndarray, ys: np.ndarray) -> str:
    """A ``DiagonalCurve`` string: ``3;x1;y1;...;`` (type 3 = control cage)."""
    return f"{_CURVE_TYPE_NURBS};" + "".join(f"{x:.6f};{y:.6f};" for x, y in zip(xs, ys))


def _fit_cage(target_fn) -> str:
    """A control cage fitted to ``target_fn`` (vectorised, [0, 1] -> [0, 1])."""
    t = sample_grid()
    return _curve(t, np.clip(target_fn(t), 0.0, 1.0))


def rgb_curve_targets(decoding: InputDecoding | None, per_channel_edits, u: np.ndarray) -> np.ndarray:
    """``(len(u), 3)``: curve outputs for curve inputs ``u`` (sRGB-encoded RawTherapee values).

    ``decoding``: the curve's input is the file value (first stage), else our linear value.
    The output is our value after ``per_channel_edits`` (clipped to [0, 1]).
    """
    x = srgb_to_linear(np.asarray(u, np.float32)).astype(np.float64)
    lin = decoding.linearize(x) if decoding is not None else x
    return np.clip(per_channel_map(per_channel_edits, lin), 0.0, 1.0)


def _curve(t: np.ndarray, target: np.ndarray) -> str:
    return _cage(*fit_adaptive(RawTherapeeNurbs, t, target, CAGE_POINTS, MAX_CAGE_POINTS))


def _lstar(y):
    y = np.asarray(y, np.float64)
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27) / 100.0


def _lstar_inv(u):
    L = 100.0 * np.asarray(u, np.float64)
    return np.where(L > 8.0, ((L + 16) / 116) ** 3, L * 27 / 24389)


def _contrast_lcurve(amount: float):
    """L* curve of Ct on greys: grey value ``v`` (display) -> ``(1 - p) v + p (0.5 - 0.5 cos(pi v))``."""

    def fn(u):
        v = linear_to_srgb(_lstar_inv(u)).astype(np.float64)  # our (display) grey value
        out = (1 - amount) * v + amount * (0.5 - 0.5 * np.cos(np.pi * np.clip(v, 0, 1)))
        return _lstar(srgb_to_linear(np.clip(out, 0, 1)).astype(np.float64))

    return fn


def sections(decoding: InputDecoding, edits) -> dict[str, dict[str, str]]:
    """The profile as ``{section: {key: value}}`` (see the module docstring)."""
    p = plan(edits)
    s: dict[str, dict[str, str]] = {
        "Version": {"AppVersion": APP_VERSION, "Version": str(PROFILE_VERSION)},
        "Color Management": {
            "InputProfile": "(none)", "ToneCurve": "false", "ApplyLookTable": "false",
            "ApplyBaselineExposureOffset": "false", "ApplyHueSatMap": "false", "WorkingProfile": "sRGB",
            "WorkingTRC": "none", "OutputProfile": "RTv4_sRGB",
        },
    }
    saturation, chroma = 0.0, 0.0
    if "S+" in p.others:
        saturation = 100.0 * SATURATION_SCALE * p.others["S+"].params[0]
    bw = p.others.get("BW")
    if bw is not None and bw.params[0] < 0.999:
        chroma, bw = -100.0 * bw.params[0], None
    t = sample_grid()
    tone = {"CurveMode": "Standard", "CurveMode2": "Standard", "Curve": "0;", "Curve2": "0;"}
    if p.contrast == "tone":  # tone curve 1: decoding + edits before Ct; tone curve 2: Ct on luminance
        amount = p.others["Ct"].params[0]
        pre = rgb_curve_targets(decoding, p.before_contrast, t)[:, 0]
        lum = srgb_to_linear(t).astype(np.float64)
        ct = (1 - amount) * lum + amount * (0.5 - 0.5 * np.cos(np.pi * lum))
        tone = {"CurveMode": "Standard", "CurveMode2": "Luminance",
                "Curve": _curve(t, linear_to_srgb(pre).astype(np.float64)),
                "Curve2": _curve(t, linear_to_srgb(ct).astype(np.float64))}
    s["Exposure"] = {
        "Auto": "false", "Compensation": "0", "Brightness": "0", "Contrast": "0",
        "Saturation": str(int(np.clip(round(saturation), -100, 100))), "Black": "0", "HighlightCompr": "0", **tone,
    }
    targets = rgb_curve_targets(None if p.contrast == "tone" else decoding, p.per_channel, t)
    s["RGB Curves"] = {"Enabled": "true", "LumaMode": "false"}
    for k, name in enumerate(("rCurve", "gCurve", "bCurve")):
        s["RGB Curves"][name] = _curve(t, targets[:, k])
    if bw is not None:
        w = [round(100 * v) for v in LUM_WEIGHTS]
        s["Black & White"] = {
            "Enabled": "true", "Method": "ChannelMixer", "Auto": "false", "ComplementaryColors": "false",
            "Setting": "RGB-Rel", "Filter": "None", "MixerRed": str(w[0]), "MixerGreen": str(w[1]),
            "MixerBlue": str(w[2]), "GammaRed": "0", "GammaGreen": "0", "GammaBlue": "0", "Algorithm": "SP",
            "BeforeCurveMode": "Standard", "BeforeCurve": _fit_cage(lambda u: linear_to_srgb(u).astype(np.float64)),
            "AfterCurveMode": "Standard", "AfterCurve": _fit_cage(lambda u: srgb_to_linear(u).astype(np.float64)),
        }
    lab = {}
    if p.contrast == "lab":
        lab["LCurve"] = _fit_cage(_contrast_lcurve(p.others["Ct"].params[0]))
    if chroma:
        lab["Chromaticity"] = str(int(round(chroma)))
    if lab:
        s["Luminance Curve"] = {"Enabled": "true", **lab}
    return s


def sidecar(decoding: InputDecoding, edits) -> bytes:
    """The ``.pp3`` text (UTF-8 bytes)."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # keys are case-sensitive in RawTherapee
    cp.read_dict(sections(decoding, edits))
    buf = io.StringIO()
    cp.write(buf, space_around_delimiters=False)
    return buf.getvalue().encode("utf-8")


def read_profile(data: bytes) -> dict[str, dict[str, str]]:
    """A ``.pp3`` parsed back into ``{section: {key: value}}`` (tests, round trips)."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read_string(data.decode("utf-8"))
    return {name: dict(cp[name]) for name in cp.sections()}


def parse_curve(text: str) -> tuple[int, np.ndarray, np.ndarray]:
    """``"3;x1;y1;...;"`` -> (type, xs, ys)."""
    vals = [float(v) for v in text.strip().strip(";").split(";") if v != ""]
    return int(vals[0]), np.asarray(vals[1::2]), np.asarray(vals[2::2])
