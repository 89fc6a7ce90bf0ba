"""Editor sidecars without the editors: struct values, pp3 keys, crs: schema facts, records and files."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import tifffile
from PIL import Image

from exposure_env import io as image_io
from exposure_env.edits import Edit
from exposure_env.filters.curves import curve as segment_curve
from exposure_env.sidecars import (
    InputDecoding,
    SidecarError,
    export_record,
    load_record,
    parse_editors,
    render,
    resolve_decoding,
    sidecar_paths,
    write_sidecars,
)
from exposure_env.sidecars import darktable as DT
from exposure_env.sidecars import lightroom as LR
from exposure_env.sidecars import rawtherapee as RT
from exposure_env.sidecars.curvefit import DarktableHermite, RawTherapeeNurbs, fit, per_channel_map, sample_grid
from exposure_env.sidecars.decoding import DecodingError

SLOPES = (0.6, 1.9, 0.7, 1.5, 0.5, 2.0, 0.9, 1.2)
ALL = [
    Edit("E", (0.8,)),
    Edit("G", (0.45,)),
    Edit("W", (1.2, 0.95, 0.8)),
    Edit("S+", (0.6,)),
    Edit("T", SLOPES),
    Edit("Ct", (0.4,)),
    Edit("BW", (0.3,)),
    Edit("C", tuple(np.linspace(0.9, 1.1, 24))),
    Edit("L", (0.05, 1.3)),
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A 16-bit TIFF (prophoto by default), an 8-bit PNG (srgb) and a float TIFF (linear)."""
    d = tmp_path_factory.mktemp("photos")
    y, x = np.mgrid[0:24, 0:32] / np.array([23.0, 31.0])[:, None, None]
    img = np.stack([x, y, 0.5 * (1 - x) + 0.2 * y], -1).clip(0, 1)
    tifffile.imwrite(d / "p16.tif", (img * 65535).round().astype(np.uint16), photometric="rgb")
    Image.fromarray((img * 200).round().astype(np.uint8)).save(d / "p8.png")
    tifffile.imwrite(d / "lin.tif", img.astype(np.float32), photometric="rgb")
    return d


# --------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("name, space", [("p16.tif", "prophoto"), ("p8.png", "srgb"), ("lin.tif", "linear")])
def test_decoding_reproduces_read_image(photos, name, space):
    path = photos / name
    dec = InputDecoding.for_file(path)
    assert dec.space == space
    values = image_io.read_image(path, "display")  # the file values, untouched
    np.testing.assert_allclose(dec.linearize(values), image_io.read_image(path), rtol=2e-5, atol=2e-7)
    if space == "srgb":  # the per-photo 1 / (2 max) rescale is recorded
        assert dec.gain == pytest.approx(1.0 / (2 * (200 / 255) ** 2.2), rel=1e-5)
    assert InputDecoding.from_dict(json.loads(json.dumps(dec.to_dict()))) == InputDecoding(dec.space, np.float32(dec.gain))


def test_decoding_refuses_raw_and_bad_gain(tmp_path):
    with pytest.raises(DecodingError, match="camera RAW"):
        InputDecoding.for_file(tmp_path / "x.nef")
    with pytest.raises(ValueError, match="positive"):
        InputDecoding("srgb", 0.0)


# --------------------------------------------------------------------------- curve models
def test_hermite_matrix_matches_the_spline_and_nurbs_is_straight_on_a_line():
    xn = np.array([0.0, 0.2, 0.5, 0.7, 1.0])
    yn = np.array([0.0, 0.3, 0.55, 0.8, 1.0])  # no Fritsch-Carlson limiting here
    t = np.linspace(0, 1, 101)
    np.testing.assert_allclose(DarktableHermite.matrix(xn, t) @ yn, DarktableHermite.evaluate(xn, yn, t), atol=1e-12)
    cage_y = 0.2 + 0.5 * xn  # collinear cage -> the curve is that line
    np.testing.assert_allclose(RawTherapeeNurbs.evaluate(xn, cage_y, t), 0.2 + 0.5 * t, atol=1e-9)
    assert RawTherapeeNurbs.evaluate(xn, yn, np.array([0.0, 1.0])).tolist() == [0.0, 1.0]


def test_fit_reaches_smooth_and_cornered_targets():
    t = sample_grid()
    xn = np.linspace(0, 1, 20) ** 1.5
    eotf = np.where(t <= 0.04045, t / 12.92, ((t + 0.055) / 1.055) ** 2.4)
    assert np.abs(DarktableHermite.evaluate(xn, fit(DarktableHermite, xn, t, eotf), t) - eotf).max() < 3e-3
    xs, ys = DT._tone_nodes(SLOPES)
    assert len(xs) <= 20
    assert np.abs(DarktableHermite.evaluate(xs, ys, t) - segment_curve(t, list(SLOPES))).max() < 0.01


def test_per_channel_map_is_the_filters():
    x = np.linspace(0, 1, 9)
    out = per_channel_map([Edit("E", (1.0,)), Edit("W", (1.1, 1.0, 0.9))], x)
    np.testing.assert_allclose(out, np.stack([2 * x * 1.1, 2 * x, 2 * x * 0.9], -1), rtol=1e-6)
    with pytest.raises(ValueError, match="per-channel"):
        per_channel_map([Edit("S+", (0.5,))], x)


# --------------------------------------------------------------------------- darktable
def test_darktable_struct_sizes_are_the_4_2_layouts():
    sizes = {"colorin": 1044, "colorout": 520, "exposure": 24, "rgblevels": 44, "rgbcurve": 516,
             "channelmixerrgb": 160, "velvia": 8}
    versions = {"colorin": 7, "colorout": 5, "exposure": 6, "rgblevels": 1, "rgbcurve": 1, "channelmixerrgb": 3, "velvia": 2}
    for op, (ver, fmt) in DT.MODULES.items():
        assert struct.calcsize(fmt) == sizes[op] and ver == versions[op], op


def _items(edits, dec=InputDecoding("prophoto")):
    return DT.read_history(DT.sidecar(dec, edits, "photo.tif"))


def test_darktable_params_decode_to_the_edit_values():
    hist = _items(ALL)
    ops = [h["operation"] for h in hist]
    assert ops[0] == "colorin" and ops[-1] == "colorout" and ops[-2] == "rgbcurve"
    by_name = {h["multi_name"]: h for h in hist}
    colorin = DT.unpack("colorin", hist[0]["params"])
    assert colorin[0] == DT.LIN_REC709 and colorin[5] == DT.LIN_REC709  # file values as linear Rec.709
    decode = DT.unpack("rgblevels", by_name["input decoding (prophoto)"]["params"])
    b, g, w = decode[2:5]
    assert (b, w) == (0.0, 1.0) and 10 ** ((g - 0.5) / 0.5) == pytest.approx(1.8, rel=1e-5)
    e = DT.unpack("exposure", by_name["1: Exposure +0.80 EV"]["params"])
    assert e[0] == 0 and e[1] == 0.0 and e[2] == pytest.approx(0.8)
    gam = DT.unpack("rgblevels", next(h for n, h in by_name.items() if n.startswith("2: Gamma"))["params"])
    assert 10 ** ((gam[3] - 0.5) / 0.5) == pytest.approx(0.45, rel=1e-5) and gam[0] == DT.LINKED
    floor = DT.unpack("rgbcurve", by_name["2: floor 0.001 before the gamma"]["params"])
    assert floor[120] == 4 and floor[:8] == pytest.approx((0.0, 0.001, 0.001, 0.001, 0.002, 0.002, 1.0, 1.0))
    wb = DT.unpack("channelmixerrgb", next(h for n, h in by_name.items() if n.startswith("3: White"))["params"])
    assert np.allclose(np.reshape(wb[:12], (3, 4))[:, :3], np.diag([1.2, 0.95, 0.8]), atol=1e-7)
    assert wb[24:30] == (0,) * 6 and wb[33] == DT.ADAPTATION_RGB and wb[38] == 0 and wb[37] == 0.0  # no normalise, gamut, clip
    bw = DT.unpack("channelmixerrgb", next(h for n, h in by_name.items() if n.startswith("7: Black"))["params"])
    expected = 0.7 * np.eye(3) + 0.3 * np.outer(np.ones(3), [0.27, 0.67, 0.06])
    assert np.allclose(np.reshape(bw[:12], (3, 4))[:, :3], expected, atol=1e-7)
    ct = DT.unpack("rgbcurve", next(h for n, h in by_name.items() if n.startswith("6: Contrast"))["params"])
    assert ct[-1] == DT.NORM_LUMINANCE and ct[-3] == DT.LINKED
    cc = DT.unpack("rgbcurve", next(h for n, h in by_name.items() if n.startswith("8: Colour"))["params"])
    assert cc[-3] == DT.INDEPENDENT and all(2 <= n <= 20 for n in cc[120:123]) and cc[123:126] == (2, 2, 2)
    lv = DT.unpack("rgblevels", next(h for n, h in by_name.items() if n.startswith("9: Level"))["params"])
    assert lv[2] == pytest.approx(0.05) and lv[4] == pytest.approx(1.3) and lv[3] == pytest.approx((0.05 + 1.3) / 2)
    vel = DT.unpack("velvia", next(h for n, h in by_name.items() if n.startswith("4: Saturation"))["params"])
    assert vel == pytest.approx((DT.VELVIA_STRENGTH * 0.6, 1.0))


def test_darktable_instances_run_in_edit_order():
    items = DT.history(InputDecoding("srgb", 0.7), [Edit("T", SLOPES), Edit("E", (1.0,)), Edit("C", tuple([1.0] * 24))])
    order = DT.iop_order(items)
    assert len(order) == len(set(order))
    assert [op for op, _ in order].count("rgbcurve") == 3 and ("rgbcurve", 2) in order
    ours = order[order.index(("colorin", 0)) + 1 : order.index(("colorin", 0)) + 6]
    assert ours == [("rgblevels", 0), ("rgbcurve", 0), ("exposure", 0), ("rgbcurve", 1), ("rgbcurve", 2)]
    assert order.index(("colorout", 0)) > order.index(("rgbcurve", 2)) and order[-1] == ("gamma", 0)
    assert set(op for op, _ in order) == set(DT.V30_ORDER)
    hist = DT.read_history(DT.to_xmp(items, "a.png"))
    assert [h["multi_priority"] for h in hist if h["operation"] == "rgbcurve"] == [0, 1, 2]


def test_darktable_param_encoding_round_trips():
    for data in (b"\x01\x02", bytes(range(256)) * 5):
        text = DT.encode_params(data)
        assert DT.decode_params(text) == data
        assert text.startswith("gz") == (len(data) > 100)
    # darktable's own encoding of its default colorout params (from a darktable 4.2.1 export)
    assert DT.unpack("colorout", DT.decode_params("gz35eJxjZBgFo4CBAQAEEAAC"))[0] == DT.SRGB


# --------------------------------------------------------------------------- RawTherapee
def test_rawtherapee_profile_keys_and_curves():
    dec = InputDecoding("prophoto")
    edits = [Edit("E", (0.5,)), Edit("W", (1.1, 1.0, 0.9)), Edit("S+", (0.6,)), Edit("BW", (1.0,))]
    prof = RT.read_profile(RT.sidecar(dec, edits))
    assert prof["Version"] == {"AppVersion": "5.9", "Version": "349"}
    cm = prof["Color Management"]
    assert (cm["InputProfile"], cm["WorkingProfile"], cm["OutputProfile"]) == ("(none)", "sRGB", "RTv4_sRGB")
    assert prof["Exposure"]["Saturation"] == "30" and prof["Exposure"]["Curve"] == "0;"
    bw = prof["Black & White"]
    assert (bw["Enabled"], bw["Method"], bw["MixerRed"], bw["MixerGreen"], bw["MixerBlue"]) == ("true", "ChannelMixer", "27", "67", "6")
    t = sample_grid()
    target = RT.rgb_curve_targets(dec, edits[:2], t)
    for k, key in enumerate(("rCurve", "gCurve", "bCurve")):
        kind, xs, ys = RT.parse_curve(prof["RGB Curves"][key])
        assert kind == 3 and RT.CAGE_POINTS <= len(xs) <= RT.MAX_CAGE_POINTS
        assert np.abs(RawTherapeeNurbs.evaluate(xs, ys, t) - target[:, k]).max() < 0.01
    # the curve maps the sRGB encoding of a file value to our output: check one point by hand
    u = np.array([0.5])
    x = ((0.5 + 0.055) / 1.055) ** 2.4
    assert RT.rgb_curve_targets(dec, edits[:2], u)[0, 0] == pytest.approx(min(1.0, x**1.8 * 2**0.5 * 1.1), rel=1e-5)


def test_rawtherapee_plan_names_every_approximation():
    assert RT.plan([Edit("E", (1.0,)), Edit("C", tuple([1.0] * 24)), Edit("BW", (1.0,))]).exact
    p = RT.plan([Edit("E", (1.0,)), Edit("Ct", (0.5,)), Edit("G", (0.5,))])
    assert p.contrast == "tone" and [e.filter for e in p.before_contrast] == ["E"] and len(p.notes) == 1
    p = RT.plan([Edit("W", (1.1, 1.0, 0.9)), Edit("Ct", (0.5,))])
    assert p.contrast == "lab" and "L* curve" in p.notes[0]
    p = RT.plan([Edit("BW", (0.5,)), Edit("S+", (0.5,)), Edit("E", (0.2,))])
    text = " ".join(p.notes)
    assert "partial black & white" in text and "moved before" in text and "HSV" in text
    prof = RT.read_profile(RT.sidecar(InputDecoding("linear"), [Edit("Ct", (0.3,)), Edit("BW", (0.5,))]))
    assert prof["Luminance Curve"]["Chromaticity"] == "-50" and "Black & White" not in prof
    assert prof["Exposure"]["CurveMode2"] == "Luminance" and RT.parse_curve(prof["Exposure"]["Curve2"])[0] == 3


# --------------------------------------------------------------------------- Lightroom
#: Adobe's published Camera Raw schema facts checked here (independently of the writer's table).
CRS_NS = "http://ns.adobe.com/camera-raw-settings/1.0/"
CRS_RANGES = {"Exposure2012": (-5.0, 5.0), "Contrast2012": (-100, 100), "Saturation": (-100, 100), "Vibrance": (-100, 100)}


def test_lightroom_xmp_follows_the_crs_schema():
    edits = [Edit("E", (1.2,)), Edit("G", (0.5,)), Edit("W", (1.2, 1.0, 0.8)), Edit("Ct", (-0.5,)), Edit("S+", (0.4,)), Edit("E", (0.3,))]
    data = LR.sidecar(InputDecoding("srgb", 0.6), edits)
    assert LR.validate(data) == []
    assert f'xmlns:crs="{CRS_NS}"'.encode() in data
    attrs, curves = LR.read_settings(data)
    assert attrs["ProcessVersion"] == "11.0" and attrs["ToneCurveName2012"] == "Custom" and attrs["HasSettings"] == "True"
    assert float(attrs["Exposure2012"]) == pytest.approx(1.5)
    assert attrs["Contrast2012"] == "-50" and attrs["Vibrance"] == "20" and attrs["ConvertToGrayscale"] == "False"
    for name, (lo, hi) in CRS_RANGES.items():
        if name in attrs:
            assert lo <= float(attrs[name]) <= hi
    assert curves["ToneCurvePV2012"] == [(0, 0), (255, 255)]  # W differs per channel -> RGB curves
    red, blue = curves["ToneCurvePV2012Red"], curves["ToneCurvePV2012Blue"]
    assert len(red) == LR.CURVE_POINTS and all(isinstance(v, int) for pt in red for v in pt)
    assert red[-1][1] > blue[-1][1]  # warmer: red gain 1.2 > blue 0.8
    bw = LR.read_settings(LR.sidecar(InputDecoding("linear"), [Edit("BW", (1.0,))]))[0]
    assert bw["ConvertToGrayscale"] == "True"
    partial = LR.read_settings(LR.sidecar(InputDecoding("linear"), [Edit("BW", (0.4,))]))[0]
    assert partial["Saturation"] == "-40"


def test_lightroom_validator_catches_schema_violations():
    good = LR.sidecar(InputDecoding("linear"), [Edit("E", (1.0,))])
    assert LR.validate(good.replace(b'crs:Exposure2012="+1.00"', b'crs:Exposure2012="+7.00"'))[0].startswith("crs:Exposure2012")
    assert "not a setting" in LR.validate(good.replace(b"crs:HasSettings", b"crs:HasSetting"))[0]
    assert "points" in " ".join(LR.validate(good.replace(b"<rdf:li>255, 255</rdf:li>", b"<rdf:li>300, 255</rdf:li>", 1)))
    assert "not a crs" in LR.validate(b"<x")[0]


# --------------------------------------------------------------------------- records and files
def _record(path, edits=ALL[:3], **extra):
    obj = {"input": extra.pop("input", "missing.tif"), "input_space": "auto", "edits": [e.to_dict() for e in edits], **extra}
    path.write_text(json.dumps(obj))
    return path


def test_parse_editors():
    assert parse_editors("darktable, Lightroom,darktable") == ("darktable", "lightroom")
    with pytest.raises(ValueError, match="unknown editor 'gimp'"):
        parse_editors("darktable,gimp")
    with pytest.raises(ValueError, match="no editor"):
        parse_editors(" , ")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not valid JSON"),
        ('{"edits": [{"filter": "E", "params": [NaN]}]}', "finite"),
        ('{"edits": [{"filter": "Q", "params": [1]}]}', "step 1: unknown filter 'Q'"),
        ('{"edits": [{"filter": "W", "params": [1, 2]}]}', "step 1: White balance takes 3"),
        ('{"edits": [{"filter": "E"}]}', "lacks the field 'params'"),
        ('{"record_version": 9, "edits": []}', "newer than this exposure-rl"),
        ('{"photo": "x.tif"}', "not an exposure-rl edit record"),
    ],
)
def test_bad_records_give_one_line_naming_the_file(tmp_path, text, problem):
    path = tmp_path / "rec.json"
    path.write_text(text)
    with pytest.raises(SidecarError) as err:
        load_record(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and problem in msg and "\n" not in msg


def test_old_records_read_the_photo_and_new_ones_do_not(photos, tmp_path):
    old = load_record(_record(tmp_path / "old.json", input=str(photos / "p8.png")))
    assert old.version == 1 and old.decoding is None
    assert resolve_decoding(old) == InputDecoding.for_file(photos / "p8.png")
    missing = load_record(_record(tmp_path / "gone.json", input=str(tmp_path / "gone.png")))
    with pytest.raises(SidecarError, match="older exposure-rl.*--input"):
        resolve_decoding(missing)
    new = load_record(_record(tmp_path / "new.json", record_version=2, decoding={"space": "srgb", "gain": 0.75}))
    assert resolve_decoding(new) == InputDecoding("srgb", 0.75)


def test_export_writes_all_three_beside_the_record_atomically(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    rec = _record(out / "p16.json", input=str(photos / "p16.tif"))
    written = export_record(rec, ("darktable", "rawtherapee", "lightroom"))
    assert written == [str(out / "p16.darktable.xmp"), str(out / "p16.rawtherapee.pp3"), str(out / "p16.lightroom.xmp")]
    assert sorted(p.name for p in out.iterdir()) == sorted(["p16.json"] + [p.rsplit("/", 1)[1] for p in written])  # no temp files
    assert DT.read_history((out / "p16.darktable.xmp").read_bytes())[1]["multi_name"] == "input decoding (prophoto)"
    with pytest.raises(SidecarError, match="already exists.*--overwrite"):
        export_record(rec, ("rawtherapee",))
    assert export_record(rec, ("rawtherapee",), overwrite=True) == [str(out / "p16.rawtherapee.pp3")]
    with pytest.raises(SidecarError, match="folder of the input photo"):
        export_record(rec, ("darktable",), out_dir=photos)


def test_unwritable_folder_is_one_line(photos, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SidecarError) as err:
        write_sidecars(blocker / "sub" / "p", ("lightroom",), InputDecoding("linear"), ALL[:1], "p.tif")
    assert str(err.value).startswith(str(blocker / "sub" / "p.lightroom.xmp")) and "cannot be written" in str(err.value)


def test_every_filter_renders_for_every_editor():
    dec = InputDecoding("srgb", 0.55)
    for editor in ("darktable", "rawtherapee", "lightroom"):
        for e in ALL:
            assert render(editor, dec, [e], "p.png")
    assert sidecar_paths("o/p_s1", ["rawtherapee"])["rawtherapee"].name == "p_s1.rawtherapee.pp3"
    assert math.isfinite(float(LR.settings(dec, ALL)["Exposure2012"]))
