"""Photo I/O: decoding every supported kind, every bad input, colour spaces, writing, thumbnails."""

from __future__ import annotations

import struct
import sys
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from exposure_env.colourspace import detect_space, linear_to_srgb, linearize, srgb_to_linear
from exposure_env.io import ImageError, mapped_tiff, read_image, write_image
from exposure_env.resample import area_weights, decision_views, resize_area, thumbnail, view_squares


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image in (0.05, 0.95): random low-frequency content (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0.05, 0.95, size=(4, 6, 3)).astype(np.float32)
    return resize_area(small, h, w)


def assert_names_file(exc_info, path, *words):
    msg = str(exc_info.value)
    assert msg.startswith(f"{path}: "), msg
    assert "\n" not in msg
    for w in words:
        assert w.lower() in msg.lower(), msg


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name, bits, tol", [("a.tif", 16, 0.5 / 65535 + 1e-7), ("a.tiff", 8, 0.5 / 255 + 1e-7),
                                             ("a.png", 16, 0.5 / 65535 + 1e-7), ("a.png", 8, 0.5 / 255 + 1e-7)])
def test_round_trip_within_quantisation(tmp_path, rng, name, bits, tol):
    img = rng.random((37, 53, 3)).astype(np.float32)
    path = write_image(tmp_path / name, img, bits=bits)
    back = read_image(path, "linear")
    assert back.dtype == np.float32 and back.shape == img.shape
    assert np.abs(back - img).max() <= tol


def test_round_trip_jpeg_and_float_tiff(tmp_path):
    img = smooth_image(64, 96)
    jpg = write_image(tmp_path / "a.jpg", img, quality=95)
    assert np.abs(read_image(jpg, "linear") - img).mean() < 0.01
    f32 = write_image(tmp_path / "f.tif", img, bits=32)
    assert np.array_equal(read_image(f32), img)  # float TIFF: linear, exact


def test_write_clips_without_transfer_and_is_atomic(tmp_path):
    img = np.full((4, 5, 3), 0.5, np.float32)
    img[0, 0] = [1.7, -0.3, 1.0]
    path = write_image(tmp_path / "sub" / "x.tif", img)
    raw = tifffile.imread(path)
    assert raw.dtype == np.uint16
    assert raw[0, 0].tolist() == [65535, 0, 65535]
    assert raw[1, 1].tolist() == [32768] * 3  # no transfer function: 0.5 -> half scale
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.tif"]  # no temp file left

    bad = img.copy()
    bad[2, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_image(path, bad)
    assert np.array_equal(tifffile.imread(path), raw)  # a failed write leaves the old file
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.tif"]


@pytest.mark.parametrize("bits, space", [(16, "display"), (8, None), (16, "linear")])
def test_mapped_tiff_writes_the_bytes_write_image_writes(tmp_path, rng, bits, space):
    dtype = np.uint16 if bits == 16 else np.uint8
    samples = rng.integers(0, np.iinfo(dtype).max + 1, size=(23, 31, 3), dtype=dtype)
    encoded = write_image(tmp_path / "a.tif", samples, bits=bits, space=space)
    with mapped_tiff(tmp_path / "sub" / "b.tif", samples.shape, bits=bits, space=space) as out:
        assert out.dtype == dtype and out.shape == samples.shape
        assert not (tmp_path / "sub" / "b.tif").exists()  # a temporary file until the block ends
        out[...] = samples
    assert (tmp_path / "sub" / "b.tif").read_bytes() == encoded.read_bytes()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["b.tif"]
    if space:
        assert np.array_equal(read_image(tmp_path / "sub" / "b.tif"), read_image(encoded))


def test_mapped_tiff_failure_keeps_the_old_file(tmp_path):
    path = write_image(tmp_path / "x.tif", np.full((4, 5, 3), 0.25, np.float32))
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="half-way"):
        with mapped_tiff(path, (4, 5, 3)) as out:
            out[:2] = 7
            raise RuntimeError("failed half-way")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.tif"]
    with pytest.raises(ValueError, match=r"x\.tif: .*\(H, W, 3\)"):
        with mapped_tiff(path, (4, 5)):
            pass
    with pytest.raises(ValueError, match="8 or 16-bit"):
        with mapped_tiff(path, (4, 5, 3), bits=32):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["x.tif"]


def test_write_rejects_bad_options(tmp_path):
    img = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="format"):
        write_image(tmp_path / "x.bmpx", img)
    with pytest.raises(ValueError, match="bits"):
        write_image(tmp_path / "x.png", img, bits=12)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        write_image(tmp_path / "x.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "x.jpg", img, quality=0)


# --------------------------------------------------------------------------- colour spaces
def test_linearize_per_space():
    x = np.array([[[0.0, 0.25, 0.5]], [[0.75, 1.0, 0.04]]], np.float32)
    assert np.array_equal(linearize(x, "linear"), x)
    assert np.array_equal(linearize(x, "display"), x)
    np.testing.assert_allclose(linearize(x, "prophoto"), x**1.8, rtol=1e-5)
    p22 = x.astype(np.float64) ** 2.2
    np.testing.assert_allclose(linearize(x, "srgb"), p22 / (2 * p22.max()), rtol=1e-5, atol=1e-7)
    assert linearize(x, "srgb").max() == pytest.approx(0.5)
    exact = linearize(x, "srgb-exact")
    assert exact[1, 0, 2] == pytest.approx(0.04 / 12.92)  # linear toe
    assert exact[0, 0, 2] == pytest.approx(((0.5 + 0.055) / 1.055) ** 2.4, rel=1e-5)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
    with pytest.raises(ValueError, match="unknown colour space"):
        linearize(x, "adobe")


def test_detect_space_defaults():
    assert detect_space("a.tif", np.uint16) == "prophoto"
    assert detect_space("a.TIFF", np.float32) == "linear"
    assert detect_space("a.tif", np.uint8) == "srgb"
    assert detect_space("a.png", np.uint16) == "srgb"
    assert detect_space("a.jpg", np.uint8) == "srgb"
    assert detect_space("a.NEF", np.uint16) == "linear"
    assert detect_space("a.dng", np.uint16) == "linear"
    assert detect_space("a.tif", np.uint16, recorded="linear") == "linear"


def test_auto_space_on_files(tmp_path):
    img = np.full((8, 8, 3), 0.5, np.float32)
    img[0, 0] = 1.0
    tifffile.imwrite(tmp_path / "prophoto.tif", np.round(img * 65535).astype(np.uint16), photometric="rgb")
    np.testing.assert_allclose(read_image(tmp_path / "prophoto.tif")[4, 4], 0.5**1.8, rtol=1e-4)
    write_image(tmp_path / "lin.tif", img, space="linear")  # recorded space wins over the 16-bit default
    np.testing.assert_allclose(read_image(tmp_path / "lin.tif")[4, 4], 0.5, atol=1e-4)
    write_image(tmp_path / "s.png", img, bits=8)
    s = read_image(tmp_path / "s.png")
    assert s.max() == pytest.approx(0.5)  # SPEC §1: x ** 2.2 / (2 max)
    np.testing.assert_allclose(s[4, 4], (128 / 255) ** 2.2 / 2, rtol=1e-4)
    np.testing.assert_allclose(read_image(tmp_path / "s.png", "display")[4, 4], 128 / 255, rtol=1e-6)


# --------------------------------------------------------------------------- RAW
def write_test_dng(path, h=64, w=96, colour=(0.5, 0.25, 0.125), white=4095):
    """A minimal valid DNG: RGGB mosaic of a flat colour, camera RGB = linear sRGB, neutral WB."""
    cfa = np.zeros((h, w), np.uint16)
    for (dy, dx), c in {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 2}.items():
        cfa[dy::2, dx::2] = round(colour[c] * white)

    def srational(values):
        return [v for x in values for v in (int(round(x * 10000)), 10000)]

    xyz_to_srgb = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]
    tags = [
        (254, "I", 1, 0, True), (271, "s", 0, "Test", True), (272, "s", 0, "Camera", True),
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
        (50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),
        (50708, "s", 0, "Test Camera", True), (50717, "I", 1, white, True), (50714, "H", 1, 0, True),
        (50721, "2i", 9, srational(xyz_to_srgb), True), (50778, "H", 1, 21, True),
        (50728, "2I", 3, srational([1, 1, 1]), True),
    ]
    tifffile.imwrite(path, cfa, photometric=32803, extratags=tags, metadata=None)
    return path


def test_raw_dng_is_linear(tmp_path):
    pytest.importorskip("rawpy")
    img = read_image(write_test_dng(tmp_path / "x.dng"))
    assert img.shape == (64, 96, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img[8:-8, 8:-8].mean(axis=(0, 1)), [0.5, 0.25, 0.125], rtol=0.02)


def test_raw_errors(tmp_path, monkeypatch):
    pytest.importorskip("rawpy")
    junk = tmp_path / "junk.cr2"
    junk.write_bytes(b"this is not a raw file at all" * 10)
    with pytest.raises(ImageError) as exc:
        read_image(junk)
    assert_names_file(exc, junk, "raw")
    dng = write_test_dng(tmp_path / "big.dng")
    with pytest.raises(ImageError) as exc:
        read_image(dng, max_pixels=1000)
    assert_names_file(exc, dng, "too large")
    monkeypatch.setitem(sys.modules, "rawpy", None)  # as if the `raw` extra were not installed
    with pytest.raises(ImageError) as exc:
        read_image(dng)
    assert_names_file(exc, dng, "rawpy", "pip install")


# --------------------------------------------------------------------------- bad inputs
def png_header_only(path, width, height, bit_depth=8, colour_type=2):
    """A tiny PNG whose IHDR claims ``width x height`` (valid chunks, a few bytes of image data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(bytes(1000))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_missing_folder_empty_unsupported(tmp_path):
    cases = [
        (tmp_path / "nope.tif", "no such file"),
        (tmp_path, "folder"),
    ]
    (tmp_path / "empty.png").write_bytes(b"")
    cases.append((tmp_path / "empty.png", "empty"))
    (tmp_path / "notes.txt").write_text("hello")
    cases.append((tmp_path / "notes.txt", "unsupported file type"))
    (tmp_path / "text.png").write_text("not a png at all")
    cases.append((tmp_path / "text.png", "not an image"))
    (tmp_path / "text.tif").write_text("not a tiff at all")
    cases.append((tmp_path / "text.tif", "not an image"))
    for path, words in cases:
        with pytest.raises(ImageError) as exc:
            read_image(path)
        assert_names_file(exc, path, words)
        assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("name, kw", [("t.tif", {}), ("t16.png", {"bits": 16}), ("t8.png", {"bits": 8}), ("t.jpg", {})])
def test_truncated_files(tmp_path, name, kw):
    path = _truncate(write_image(tmp_path / name, smooth_image(120, 160), **kw))
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert_names_file(exc, path, "truncated")


def test_content_decides_decoder(tmp_path):
    """A JPEG saved under a .png name is still read (the name is not trusted)."""
    img = smooth_image(32, 48)
    jpg = write_image(tmp_path / "a.jpg", img)
    renamed = tmp_path / "really_a_jpeg.png"
    renamed.write_bytes(jpg.read_bytes())
    np.testing.assert_allclose(read_image(renamed, "linear"), read_image(jpg, "linear"))


def test_jpeg_exif_orientation_applied(tmp_path):
    im = Image.fromarray(np.round(smooth_image(30, 50) * 255).astype(np.uint8), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = read_image(tmp_path / "rotated.jpg", "display")
    assert upright.shape == (50, 30, 3)
    stored = np.asarray(Image.open(tmp_path / "rotated.jpg"), np.float32) / 255  # as stored, sideways
    np.testing.assert_allclose(upright, np.rot90(stored, k=-1), atol=1e-6)


def test_channel_layouts(tmp_path):
    gray = (np.arange(48).reshape(6, 8) * 5).astype(np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    Image.fromarray(gray.astype(np.uint16) * 256).save(tmp_path / "gray16.png")
    Image.fromarray(np.stack([gray, gray], -1)).save(tmp_path / "graya.png")
    tifffile.imwrite(tmp_path / "gray.tif", gray.astype(np.uint16))
    tifffile.imwrite(tmp_path / "gray2.tif", np.stack([gray, gray], -1), photometric="minisblack", planarconfig="contig")
    for name in ("gray.png", "gray16.png", "graya.png", "gray.tif", "gray2.tif"):
        with pytest.raises(ImageError) as exc:
            read_image(tmp_path / name)
        assert_names_file(exc, tmp_path / name, "grayscale")

    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = 100
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    tifffile.imwrite(tmp_path / "opaque.tif", rgba.astype(np.uint16) * 257, photometric="rgb", extrasamples=["unassalpha"])
    for name in ("opaque.png", "opaque.tif"):  # fully opaque: alpha dropped, accepted
        assert read_image(tmp_path / name, "display").shape == (6, 8, 3)
    np.testing.assert_allclose(read_image(tmp_path / "opaque.png", "display"), 100 / 255, rtol=1e-6)
    rgba[0, :4, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "holes.png")
    tifffile.imwrite(tmp_path / "holes.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    for name in ("holes.png", "holes.tif"):
        with pytest.raises(ImageError) as exc:
            read_image(tmp_path / name)
        assert_names_file(exc, tmp_path / name, "RGBA", "transparen")

    Image.fromarray(np.zeros((6, 8, 4), np.uint8), "CMYK").save(tmp_path / "cmyk.jpg")
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "cmyk.jpg")
    assert_names_file(exc, tmp_path / "cmyk.jpg", "CMYK")

    pal = Image.fromarray(np.full((6, 8, 3), 60, np.uint8), "RGB").convert("P")
    pal.save(tmp_path / "palette.png")
    expected = np.asarray(pal.convert("RGB"), np.float32) / 255
    np.testing.assert_allclose(read_image(tmp_path / "palette.png", "display"), expected, rtol=1e-6)


def test_sample_types(tmp_path):
    tifffile.imwrite(tmp_path / "i16.tif", np.zeros((4, 4, 3), np.int16), photometric="rgb")
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "i16.tif")
    assert_names_file(exc, tmp_path / "i16.tif", "unsupported sample type", "int16")
    for bad, word in ((np.nan, "NaN"), (np.inf, "Inf")):
        data = np.full((4, 4, 3), 0.2, np.float32)
        data[1, 2, 0] = bad
        path = tmp_path / f"bad_{word}.tif"
        tifffile.imwrite(path, data, photometric="rgb")
        with pytest.raises(ImageError) as exc:
            read_image(path)
        assert_names_file(exc, path, word)
    hdr = np.full((4, 4, 3), 2.5, np.float32)  # float TIFF: linear, above 1 kept
    tifffile.imwrite(tmp_path / "hdr.tif", hdr, photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "hdr.tif"), hdr)


def test_size_limits_checked_from_header(tmp_path):
    huge8 = png_header_only(tmp_path / "huge8.png", 100_000, 100_000)
    huge16 = png_header_only(tmp_path / "huge16.png", 50_000, 50_000, bit_depth=16)
    for path in (huge8, huge16):  # 10 GP / 2.5 GP claimed; refused before any decoding
        with pytest.raises(ImageError) as exc:
            read_image(path)
        assert_names_file(exc, path, "too large", "MP")
    small = write_image(tmp_path / "s.tif", smooth_image(40, 50))
    with pytest.raises(ImageError) as exc:
        read_image(small, max_pixels=1999)
    assert_names_file(exc, small, "too large")
    assert read_image(small, max_pixels=2000).shape == (40, 50, 3)
    jpg = write_image(tmp_path / "s.jpg", smooth_image(40, 50))
    with pytest.raises(ImageError):
        read_image(jpg, max_pixels=1999)


def test_image_error_is_one_line():
    err = ImageError("/x/y.png", "first\nsecond   third")
    assert str(err) == "/x/y.png: first second third"
    assert err.path == "/x/y.png" and isinstance(err, ValueError)


# --------------------------------------------------------------------------- thumbnails
def test_area_weights_and_box_filter(rng):
    w = area_weights(300, 80, 10.5, 280.2)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    img = rng.random((128, 192, 3)).astype(np.float32)
    box = img[:, 32:160].reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(thumbnail(img, 64), box, atol=1e-6)  # exact box filter
    batch = np.stack([img, img[::-1]])
    np.testing.assert_allclose(thumbnail(batch, 64)[1], thumbnail(img[::-1], 64), atol=1e-7)
    # dense reference for a fractional window
    ref = np.einsum("yh,hwc,xw->yxc", area_weights(128, 37, 3.3, 90.0), img, area_weights(192, 41, 7.1, 140.0))
    np.testing.assert_allclose(resize_area(img, 37, 41, (3.3, 7.1, 90.0, 140.0)), ref, atol=1e-5)


@pytest.mark.parametrize("h, w", [(101, 151), (150, 97), (333, 500)])
def test_thumbnail_resolution_independent(rng, h, w):
    """The same photo at 2x gives the same thumbnail (odd crop offsets included)."""
    small = smooth_image(h, w, seed=h)
    big = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    t_big, t_small = thumbnail(big, 64), thumbnail(small, 64)
    assert t_big.shape == t_small.shape == (64, 64, 3)
    np.testing.assert_allclose(t_big, t_small, atol=1e-5)
    # with real detail at 2x: equal up to how a 2x2 block straddling a thumbnail-pixel edge is weighted
    big = big + rng.normal(0.0, 0.02, size=big.shape).astype(np.float32)
    small = big.reshape(h, 2, w, 2, 3).mean(axis=(1, 3))
    diff = np.abs(thumbnail(big, 64) - thumbnail(small, 64))
    assert diff.mean() < 0.15 * 0.02 and diff.max() < 0.02


@pytest.mark.parametrize("h, w, n", [(120, 120, 1), (128, 192, 3), (192, 128, 3), (90, 160, 3), (100, 300, 5), (80, 81, 3)])
def test_decision_views_cover_the_photo_in_squares(rng, h, w, n):
    """Centre square first, then squares of side min(h, w) at most half a side apart, end to end."""
    squares, side = view_squares(h, w), float(min(h, w))
    assert len(squares) == n
    assert squares[0] == ((h - side) / 2, (w - side) / 2, side, side)  # the centre square (the thumbnail's)
    assert all(b[2] == b[3] == side for b in squares)
    along = sorted(b[0] if h > w else b[1] for b in squares)
    assert along[0] == 0.0 and along[-1] == max(h, w) - side  # from one end to the other
    assert all(0 <= d <= side / 2 + 1e-9 for d in np.diff(along))  # no gap, at least half-side overlap
    img = rng.random((h, w, 3)).astype(np.float32)
    views = decision_views(img, 40)
    assert views.shape == (n, 40, 40, 3) and views.dtype == np.float32
    np.testing.assert_array_equal(views[0], thumbnail(img, 40))
    for v, (top, left, _, _) in zip(views, squares):  # each view: its square, area-averaged (dense reference)
        ref = np.einsum("yh,hwc,xw->yxc", area_weights(h, 40, top, side), img, area_weights(w, 40, left, side))
        np.testing.assert_allclose(v, ref, atol=1e-5)


def test_decision_views_of_a_wide_photo_see_its_ends():
    """A photo whose left and right ends differ from its centre: only the side views see them."""
    img = np.full((64, 192, 3), 0.2, np.float32)
    img[:, :32] = 0.9
    img[:, -32:] = 0.0
    views = decision_views(img, 16)
    np.testing.assert_allclose(views[0], 0.2, atol=1e-6)  # the centre square misses both ends
    assert len(views) == 5  # 3:1: squares 0, 32, 64 (the centre, first), 96, 128 pixels from the left
    assert np.isclose(views[1].max(), 0.9, atol=1e-6) and np.isclose(views[-1].min(), 0.0, atol=1e-6)
    np.testing.assert_allclose(decision_views(img[:, :64], 16), views[1:2], atol=1e-6)  # a square photo: itself
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) image"):
        decision_views(img[..., 0], 16)
