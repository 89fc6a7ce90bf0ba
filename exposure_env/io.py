"""Photo files in and out: ``read_image`` -> linear RGB float32, ``write_image``, ``thumbnail``.

Reading (:func:`read_image`) returns ``(H, W, 3)`` float32 linear RGB, nominally [0, 1]:

* TIFF (tifffile): 8/16-bit unsigned or float samples; float TIFFs are linear as they are
  (negatives clipped to 0, values above 1 kept).
* PNG (16-bit through imagecodecs, 8-bit through Pillow), JPEG and other Pillow formats;
  an EXIF orientation is applied (the photo comes out upright).
* camera RAW (``.dng .cr2 .cr3 .nef .arw .raf .orf .rw2 ...``) through rawpy/LibRaw:
  demosaiced, camera white balance, linear (``gamma=(1, 1)``), no auto-brightening, 16 bit.
* the transfer function comes from :mod:`exposure_env.colourspace` (``space="auto"`` picks
  the documented default per file type).
* channels: RGB is required. RGBA is accepted only when every pixel is opaque (the alpha
  channel is dropped); transparent RGBA, grayscale, grayscale+alpha and CMYK are rejected.

Every problem with a file raises :class:`ImageError` whose message is one line,
``"<path>: <problem>"``.

Writing (:func:`write_image`) clips to [0, 1] and applies **no** transfer function: the
agent's own edits (Gamma, curves) are the display transform. Files are written atomically.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .colourspace import (
    RASTER_SUFFIXES,
    RAW_SUFFIXES,
    SPACES,
    TIFF_SUFFIXES,
    check_space,
    detect_space,
    linearize,
)
from .resample import area_taps, area_weights, centre_square, resize_area, thumbnail  # noqa: F401 (re-exported)

#: Largest photo read by default, in pixels (200 MP; medium-format backs reach 150 MP).
DEFAULT_MAX_PIXELS = 200_000_000

#: Every suffix :func:`read_image` accepts (lower case).
SUPPORTED_SUFFIXES = frozenset(TIFF_SUFFIXES | RASTER_SUFFIXES | RAW_SUFFIXES)

#: ``write_image`` formats by suffix.
WRITE_FORMATS = {".tif": "tiff", ".tiff": "tiff", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PIL_LOCK = threading.Lock()


class ImageError(ValueError):
    """A photo file that cannot be used; ``str(err)`` is ``"<path>: <problem>"`` on one line."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


def is_supported(path: str | Path) -> bool:
    """True when ``path``'s suffix is one :func:`read_image` decodes."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


# --------------------------------------------------------------------------- reading
def read_image(path: str | Path, space: str = "auto", *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a photo into ``(H, W, 3)`` float32 linear RGB (see the module docstring).

    ``space``: ``"auto"`` (default per file type, :func:`exposure_env.colourspace.detect_space`)
    or one of :data:`exposure_env.colourspace.SPACES`. ``max_pixels``: larger photos are
    refused from their header, before decoding.
    """
    space = check_space(space, allow_auto=True)
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in RAW_SUFFIXES:
        pixels, recorded = _read_raw(path, max_pixels), None
    else:
        with open(path, "rb") as fh:
            head = fh.read(32)
        if head.startswith(_TIFF_MAGIC):
            pixels, recorded = _read_tiff(path, max_pixels)
        elif head.startswith(_PNG_MAGIC) and head[12:16] == b"IHDR":
            _check_size(path, int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big"), max_pixels)
            if head[24] == 16:
                pixels = _read_png16(path, head)
            else:
                pixels = _read_pillow(path, max_pixels)
            recorded = None
        else:
            pixels, recorded = _read_pillow(path, max_pixels), None
    rgb = _to_rgb(path, pixels)
    values = _to_unit(path, rgb)
    if space == "auto":
        space = detect_space(path, rgb.dtype, recorded)
    return np.ascontiguousarray(linearize(values, space), dtype=np.float32)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        kinds = "TIFF, PNG, JPEG, WebP, BMP or a camera RAW file (.dng, .cr2, .nef, .arw, ...)"
        raise ImageError(path, f"unsupported file type {path.suffix or '(no suffix)'!r}; expected {kinds}")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ImageError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageError(path, "empty file (0 bytes)")


def _check_size(path: Path, height: int, width: int, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageError(path, f"image has no pixels ({width} x {height})")
    if height * width > max_pixels:
        raise ImageError(
            path,
            f"image too large: {width} x {height} = {height * width / 1e6:.1f} MP "
            f"(limit {max_pixels / 1e6:.1f} MP; raise max_pixels to allow it)",
        )


def _read_tiff(path: Path, max_pixels: int):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages:
                raise ImageError(path, "TIFF file has no images")
            page = tif.pages.first
            axes, shape = page.axes, page.shape
            if "Y" not in axes or "X" not in axes:
                raise ImageError(path, f"TIFF is not a 2-D image (axes {axes}, shape {shape})")
            _check_size(path, shape[axes.index("Y")], shape[axes.index("X")], max_pixels)
            if int(page.photometric) == 5:  # SEPARATED
                raise ImageError(path, "CMYK TIFF; convert it to RGB first")
            if int(page.photometric) == 3:  # PALETTE
                raise ImageError(path, "palette (indexed-colour) TIFF; convert it to RGB first")
            data = page.asarray()
            meta = tif.shaped_metadata or ()
            recorded = meta[0].get("space") if meta and isinstance(meta[0], dict) else None
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(path, "not enough memory to decode this TIFF") from exc
    except Exception as exc:  # tifffile raises several types for broken files
        raise ImageError(path, f"truncated or corrupt TIFF ({type(exc).__name__}: {exc})") from exc
    if data.ndim == 3 and axes.startswith("S"):  # planar (separate) samples
        data = np.moveaxis(data, 0, -1)
    elif data.ndim > 3:
        raise ImageError(path, f"TIFF has an unsupported layout (axes {axes}, shape {data.shape})")
    if recorded is not None and str(recorded).lower() not in SPACES:
        recorded = None  # someone else's metadata: fall back to the defaults
    return data, recorded


def _read_png16(path: Path, head: bytes) -> np.ndarray:
    """16-bit PNG (Pillow has no 16-bit RGB mode); ``head`` holds the IHDR, size already checked."""
    colour_type = head[25]
    if colour_type in (0, 4):
        raise ImageError(path, f"grayscale image ({'1 channel' if colour_type == 0 else 'gray + alpha'}, 16-bit PNG); an RGB colour photo is needed")
    try:
        import imagecodecs
    except ImportError as exc:  # pragma: no cover - imagecodecs is a dependency
        raise ImageError(path, "16-bit PNG needs the imagecodecs package (pip install imagecodecs)") from exc
    try:
        return imagecodecs.png_decode(path.read_bytes())
    except Exception as exc:
        raise ImageError(path, f"truncated or corrupt PNG ({type(exc).__name__}: {exc})") from exc


_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _read_pillow(path: Path, max_pixels: int) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    with _PIL_LOCK:  # our own size check replaces Pillow's global decompression-bomb limit
        old_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(path)
        except UnidentifiedImageError as exc:
            raise ImageError(path, f"not an image: the contents are no known image format despite the {path.suffix} name") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(path, f"corrupt image header ({exc})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = old_limit
    with im:
        width, height = im.size
        _check_size(path, height, width, max_pixels)
        mode = im.mode
        if mode in _GRAY_MODES:
            raise ImageError(path, f"grayscale image (mode {mode}); an RGB colour photo is needed")
        if mode == "CMYK":
            raise ImageError(path, "CMYK image; convert it to RGB first")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im.load()
                im = ImageOps.exif_transpose(im)  # camera JPEGs: show the photo upright, as viewers do
                if mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif mode == "PA":
                    im = im.convert("RGBA")
                elif mode == "RGBa":
                    im = im.convert("RGBA")
                elif mode not in ("RGB", "RGBA", "RGBX"):
                    try:
                        im = im.convert("RGB")
                    except ValueError as exc:
                        raise ImageError(path, f"unsupported colour mode {mode}") from exc
                data = np.asarray(im)
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(path, f"truncated or corrupt image data ({exc})") from exc
    if mode == "RGBX":
        data = data[..., :3]
    return data


def _read_raw(path: Path, max_pixels: int) -> np.ndarray:
    try:
        import rawpy
    except ImportError as exc:
        raise ImageError(path, "camera RAW files need rawpy: pip install 'exposure-rl[raw]'") from exc
    try:
        with rawpy.imread(str(path)) as raw:
            _check_size(path, raw.sizes.height, raw.sizes.width, max_pixels)
            return raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True)
    except ImageError:
        raise
    except rawpy.LibRawError as exc:
        raise ImageError(path, f"not a readable camera RAW file ({type(exc).__name__}: {exc})") from exc
    except MemoryError as exc:
        raise ImageError(path, "not enough memory to develop this RAW file") from exc


def _to_rgb(path: Path, data: np.ndarray) -> np.ndarray:
    """Any decoded ``(H, W[, C])`` array -> ``(H, W, 3)``; reject what is not a colour photo."""
    if data.ndim == 2 or (data.ndim == 3 and data.shape[-1] == 1):
        raise ImageError(path, "grayscale image (1 channel); an RGB colour photo is needed")
    if data.ndim != 3:
        raise ImageError(path, f"unsupported image layout, shape {data.shape}")
    channels = data.shape[-1]
    if channels == 2:
        raise ImageError(path, "grayscale image with alpha (2 channels); an RGB colour photo is needed")
    if channels == 4:
        alpha = data[..., 3]
        opaque = _unit_max(data.dtype)
        transparent = int(np.count_nonzero(alpha < opaque))
        if transparent:
            share = 100.0 * transparent / alpha.size
            raise ImageError(path, f"RGBA image with transparency ({share:.1f}% of pixels not opaque); flatten it onto a background first")
        return data[..., :3]
    if channels != 3:
        raise ImageError(path, f"{channels} channels; an RGB colour photo (3 channels) is needed")
    return data


def _unit_max(dtype) -> float:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return 1.0
    if dt.kind == "u" and dt.itemsize in (1, 2):
        return float(np.iinfo(dt).max)
    return 0.0


def _to_unit(path: Path, rgb: np.ndarray) -> np.ndarray:
    """Samples -> float32 in [0, 1] (integers by their type's max; floats as they are)."""
    dt = rgb.dtype
    if dt.kind == "u" and dt.itemsize in (1, 2):  # one pass, no float temporary (same values)
        return np.multiply(rgb, np.float32(1.0 / np.iinfo(dt).max), dtype=np.float32)
    if dt.kind == "f":
        out = rgb.astype(np.float32)
        bad = ~np.isfinite(out)
        if bad.any():
            raise ImageError(path, f"float image contains NaN or Inf values ({int(bad.any(axis=-1).sum())} pixels)")
        return np.maximum(out, 0.0)
    raise ImageError(path, f"unsupported sample type {dt} (expected 8/16-bit unsigned integers or floats)")


# --------------------------------------------------------------------------- writing
#: TIFF compressions (``write_image(compression=...)``; deflate/LZW with the horizontal predictor).
TIFF_COMPRESSIONS = ("none", "deflate", "lzw", "zstd")
#: PNG compressions: ``none`` (zlib level 0: fastest, largest) or ``deflate`` (level 6).
PNG_COMPRESSIONS = ("none", "deflate")


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    format: str | None = None,
    bits: int = 16,
    quality: int = 95,
    space: str | None = None,
    compression: str | None = None,
) -> Path:
    """Write ``(H, W, 3)`` RGB, clipped to [0, 1], with no transfer function; atomic.

    ``image``: float values (clipped, scaled and rounded half to even in one pass,
    :func:`exposure_env.fused_cpu.quantize`: no full-size float temporaries), or uint8 / uint16
    samples already quantised that way (written as they are; ``bits`` must match).
    ``format``: ``"tiff"``, ``"png"`` or ``"jpeg"`` (default from the suffix: ``.tif/.tiff``,
    ``.png``, ``.jpg/.jpeg``). ``bits``: 16 or 8 for TIFF and PNG (32 = float TIFF); JPEG is
    always 8-bit with ``quality`` 1..100. ``compression``: TIFF ``none`` (default), ``deflate``,
    ``lzw`` or ``zstd``; PNG ``deflate`` (default) or ``none``; JPEG: the quality is the knob.
    ``space``: recorded in TIFF metadata so that ``read_image(space="auto")`` reads the values
    back in that space (e.g. ``"linear"``). Raises ``ValueError`` naming the path for a bad image
    or option.
    """
    path = Path(path)
    fmt = (format or WRITE_FORMATS.get(path.suffix.lower(), "")).lower()
    fmt = {"tif": "tiff", "jpg": "jpeg"}.get(fmt, fmt)
    if fmt not in ("tiff", "png", "jpeg"):
        raise ValueError(f"{path}: cannot tell the output format; use .tif/.tiff, .png or .jpg/.jpeg (or format=)")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{path}: expected an (H, W, 3) RGB image, got shape {arr.shape}")
    if space is not None:
        space = check_space(space)
    allowed = {"tiff": (8, 16, 32), "png": (8, 16), "jpeg": (8, 16)}[fmt]
    if bits not in allowed:
        raise ValueError(f"{path}: {fmt.upper()} cannot be written with {bits} bits (choose {', '.join(map(str, allowed))})")
    if fmt == "jpeg" and not 1 <= int(quality) <= 100:
        raise ValueError(f"{path}: JPEG quality must be in 1..100, got {quality}")
    compression = check_compression(path, fmt, compression)
    if fmt == "jpeg":
        bits = 8
    data = _samples(path, arr, bits)
    with atomic_write(path) as tmp:
        _encode(tmp, fmt, data, quality, space, compression)
    return path


def check_compression(path, fmt: str, compression: str | None) -> str | None:
    """``compression`` checked for ``fmt`` (lower case; ``None`` = the format's default); ``ValueError`` naming ``path``."""
    if compression is None:
        return None
    name = str(compression).lower()
    known = {"tiff": TIFF_COMPRESSIONS, "png": PNG_COMPRESSIONS, "jpeg": ()}[fmt]
    if name not in known:
        choices = ", ".join(known) if known else "none (JPEG size is set by the quality)"
        raise ValueError(f"{path}: {fmt.upper()} compression {compression!r} unknown; choose {choices}")
    return name


def _samples(path: Path, arr: np.ndarray, bits: int) -> np.ndarray:
    """The samples to encode: uint8/uint16 for 8/16 bits, float32 clipped to [0, 1] for 32."""
    if arr.dtype.kind == "u":
        if arr.dtype.itemsize * 8 != bits:
            raise ValueError(f"{path}: {arr.dtype} samples cannot be written with {bits} bits")
        return np.ascontiguousarray(arr)
    if arr.dtype.kind != "f":
        raise ValueError(f"{path}: expected float or uint8/uint16 samples, got {arr.dtype}")
    if bits == 32:
        arr = arr.astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: image contains NaN or Inf values")
        return np.clip(arr, 0.0, 1.0)
    from .fused_cpu import quantize

    try:
        return quantize(arr, bits)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _encode(dest: Path, fmt: str, data: np.ndarray, quality: int, space: str | None, compression: str | None) -> None:
    if fmt == "tiff":
        import tifffile

        codec = {None: None, "none": None, "deflate": "zlib", "lzw": "lzw", "zstd": "zstd"}[compression]
        tifffile.imwrite(
            dest, data, photometric="rgb", metadata={"space": space} if space else None,
            compression=codec, predictor=codec in ("zlib", "lzw") or None,
        )
    elif fmt == "png" and data.dtype == np.uint16:
        import imagecodecs

        dest.write_bytes(imagecodecs.png_encode(data, level=0 if compression == "none" else None))
    elif fmt == "png":
        from PIL import Image

        Image.fromarray(data, "RGB").save(dest, format="PNG", compress_level=0 if compression == "none" else 6)
    else:
        import imagecodecs

        # libjpeg-turbo straight from the array (no PIL copy); 4:4:4 at high quality, else 4:2:0
        dest.write_bytes(imagecodecs.jpeg8_encode(data, level=int(quality), subsampling="444" if quality >= 90 else "420"))
