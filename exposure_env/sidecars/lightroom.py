"""Lightroom / Camera Raw ``.xmp`` settings in Adobe's ``crs:`` schema (process version 2012 family).

**Unverified in Lightroom itself**: no Adobe program runs here. The file is checked against the
published schema facts in :data:`SCHEMA` / :func:`validate` (namespace, names, types, ranges);
how closely Lightroom's rendering follows the edits is not measured.

Model (Adobe documents the controls, not their formulas): Lightroom reads the file as sRGB,
applies ``Exposure2012`` as a gain of ``2 ** EV`` in linear light, later its point curves on
sRGB-like encoded values. So:

* E -> ``crs:Exposure2012`` (sum of the E steps, -5..+5 EV);
* the input decoding and every per-channel edit (E, G, W, T, C, Level) -> one point curve per
  channel, ``crs:ToneCurvePV2012Red/Green/Blue`` (``crs:ToneCurvePV2012`` when all three are
  the same), 17 integer points ``"x, y"`` in 0..255, built to undo the exposure gain and end
  in our output value (white balance lives here: Lightroom's Temp/Tint for rendered files has
  no published formula);
* Ct -> ``crs:Contrast2012 = 100 p``; S+ -> ``crs:Vibrance = 50 p`` (S+ lifts dull colours
  most); BW -> ``crs:ConvertToGrayscale`` for ``p = 1`` (Lightroom's own grey mix), else
  ``crs:Saturation = -100 p``.

Lightroom reads ``.xmp`` sidecars only for raw files; for TIFF/JPEG/PNG it keeps the settings
inside the file, so load this one with Camera Raw's *Load Settings...*.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import numpy as np

from ..colourspace import linear_to_srgb, srgb_to_linear
from .curvefit import per_channel_map
from .decoding import InputDecoding

CRS = "http://ns.adobe.com/camera-raw-settings/1.0/"
NS = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "crs": CRS}
PROCESS_VERSION = "11.0"
CURVE_POINTS = 17
CURVES = ("ToneCurvePV2012", "ToneCurvePV2012Red", "ToneCurvePV2012Green", "ToneCurvePV2012Blue")
#: Published crs: facts used here: attribute -> (kind, low, high) ("real", "int", "bool", "text").
SCHEMA = {
    "Version": ("text", None, None),
    "ProcessVersion": ("text", None, None),
    "HasSettings": ("bool", None, None),
    "AlreadyApplied": ("bool", None, None),
    "WhiteBalance": ("text", None, None),
    "Exposure2012": ("real", -5.0, 5.0),
    "Contrast2012": ("int", -100, 100),
    "Saturation": ("int", -100, 100),
    "Vibrance": ("int", -100, 100),
    "ConvertToGrayscale": ("bool", None, None),
    "ToneCurveName2012": ("text", None, None),
}
VIBRANCE_SCALE = 50.0


def _q(name: str, prefix: str = "crs") -> str:
    return f"{{{NS[prefix]}}}{name}"


def _points(curve) -> list[str]:
    """Integer ``"x, y"`` points of one curve sampled at ``CURVE_POINTS`` even inputs."""
    xs = np.round(np.linspace(0, 255, CURVE_POINTS)).astype(int)
    ys = np.clip(np.round(255 * np.asarray(curve)), 0, 255).astype(int)
    return [f"{x}, {y}" for x, y in zip(xs, ys)]


def curves(decoding: InputDecoding, edits, exposure_ev: float) -> np.ndarray:
    """``(CURVE_POINTS, 3)`` curve values in [0, 1]: Lightroom's encoded value after the exposure
    gain -> our output after the decoding and the per-channel edits."""
    u = np.linspace(0.0, 1.0, CURVE_POINTS)
    x = linear_to_srgb(srgb_to_linear(u) * 2.0 ** -exposure_ev).astype(np.float64)  # file value
    per = [e for e in edits if e.filter_obj.per_channel]
    return np.clip(per_channel_map(per, decoding.linearize(x)), 0.0, 1.0)


def settings(decoding: InputDecoding, edits) -> dict[str, str]:
    """The scalar ``crs:`` settings (strings, as written)."""
    edits = list(edits)
    ev = float(np.clip(sum(e.params[0] for e in edits if e.filter == "E"), -5.0, 5.0))
    out = {
        "Version": "15.0", "ProcessVersion": PROCESS_VERSION, "HasSettings": "True", "AlreadyApplied": "False",
        "WhiteBalance": "As Shot", "Exposure2012": f"{ev:+.2f}", "ToneCurveName2012": "Custom",
    }
    for e in edits:
        p = e.params[0]
        if e.filter == "Ct":
            out["Contrast2012"] = str(int(np.clip(round(100 * p), -100, 100)))
        elif e.filter == "S+":
            out["Vibrance"] = str(int(np.clip(round(VIBRANCE_SCALE * p), -100, 100)))
        elif e.filter == "BW":
            if p >= 0.999:
                out["ConvertToGrayscale"] = "True"
            else:
                out["Saturation"] = str(int(np.clip(-round(100 * p), -100, 100)))
    out.setdefault("ConvertToGrayscale", "False")
    return out


def sidecar(decoding: InputDecoding, edits) -> bytes:
    """The ``.xmp`` document (UTF-8 bytes)."""
    edits = list(edits)
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    values = settings(decoding, edits)
    root = ET.Element(_q("xmpmeta", "x"), {_q("xmptk", "x"): "exposure-rl (ElementTree)"})
    rdf = ET.SubElement(root, _q("RDF", "rdf"))
    desc = ET.SubElement(rdf, _q("Description", "rdf"), {_q("about", "rdf"): "", **{_q(k): v for k, v in values.items()}})
    c = curves(decoding, edits, float(values["Exposure2012"]))
    same = np.allclose(c[:, 0], c[:, 1]) and np.allclose(c[:, 0], c[:, 2])
    identity = [f"{x}, {x}" for x in (0, 255)]
    per_curve = {
        "ToneCurvePV2012": _points(c[:, 0]) if same else identity,
        "ToneCurvePV2012Red": identity if same else _points(c[:, 0]),
        "ToneCurvePV2012Green": identity if same else _points(c[:, 1]),
        "ToneCurvePV2012Blue": identity if same else _points(c[:, 2]),
    }
    for name in CURVES:
        seq = ET.SubElement(ET.SubElement(desc, _q(name)), _q("Seq", "rdf"))
        for pt in per_curve[name]:
            ET.SubElement(seq, _q("li", "rdf")).text = pt
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def read_settings(data: bytes) -> tuple[dict[str, str], dict[str, list[tuple[int, int]]]]:
    """``(crs attributes, curves)`` of a Camera Raw XMP, parsed with defusedxml."""
    from defusedxml import ElementTree as SafeET

    root = SafeET.fromstring(data)
    attrs: dict[str, str] = {}
    found: dict[str, list[tuple[int, int]]] = {}
    for desc in root.iter(_q("Description", "rdf")):
        attrs.update({k[len(CRS) + 2:]: v for k, v in desc.attrib.items() if k.startswith(f"{{{CRS}}}")})
        for name in CURVES:
            el = desc.find(_q(name))
            if el is not None:
                pts = []
                for li in el.iter(_q("li", "rdf")):
                    x, y = (int(v) for v in (li.text or "").split(","))
                    pts.append((x, y))
                found[name] = pts
    return attrs, found


def validate(data: bytes) -> list[str]:
    """Problems of a ``crs:`` document against :data:`SCHEMA` and the curve format (empty = valid)."""
    problems: list[str] = []
    try:
        attrs, found = read_settings(data)
    except (ValueError, SyntaxError) as exc:
        return [f"not a crs: XMP document ({exc})"]
    for name, value in attrs.items():
        if name not in SCHEMA:
            problems.append(f"crs:{name}: not a setting this writer knows")
            continue
        kind, lo, hi = SCHEMA[name]
        try:
            if kind == "bool" and value not in ("True", "False"):
                raise ValueError
            num = float(value) if kind == "real" else int(value) if kind == "int" else None
        except ValueError:
            problems.append(f"crs:{name}={value!r}: expected a {kind}")
            continue
        if num is not None and not lo <= num <= hi:
            problems.append(f"crs:{name}={value}: outside {lo}..{hi}")
    for name in CURVES:
        pts = found.get(name)
        if not pts or len(pts) < 2:
            problems.append(f"crs:{name}: missing or fewer than 2 points")
            continue
        xs = [x for x, _ in pts]
        if any(not 0 <= v <= 255 for pt in pts for v in pt) or xs != sorted(set(xs)) or xs[0] != 0 or xs[-1] != 255:
            problems.append(f"crs:{name}: points must be integers 0..255 with rising x from 0 to 255")
    return problems
