"""Reading photos: ``read_image`` -> ``(H, W, 3)`` float32 linear RGB (see :mod:`exposure_env.io`).

One decoder per file kind (TIFF, 16-bit PNG, Pillow formats, camera RAW), then the shared
steps: channels -> RGB, samples -> [0, 1], transfer function -> linear. Every problem raises
:class:`ImageError` with a one-line ``"<path>: <problem>"`` message.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np

from ..colourspace import (
    RASTER_SUFFIXES,
    RAW_SUFFIXES,
    SPACES,
    TIFF_SUFFIXES,
    check_space,
    detect_space,
    linearize,
)

#: Largest photo read by default, in pixels (200 MP; medium-format backs reach 150 MP).
DEFAULT_MAX_PIXELS = 200_000_000

#: Every suffix :func:`read_image` accepts (lower case).
SUPPORTED_SUFFIXES = frozenset(TIFF_SUFFIXES | RASTER_SUFFIXES | RAW_SUFFIXES)

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
