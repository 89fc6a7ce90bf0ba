"""Writing photos: ``write_image`` clips to [0, 1], applies no transfer function, writes atomically.

Formats by suffix (:data:`WRITE_FORMATS`): TIFF (8/16-bit or float, optional compression),
PNG (8/16-bit) and JPEG (8-bit, ``quality`` 1..100). Bad images or options raise
``ValueError`` naming the path.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_write
from ..colourspace import check_space

#: ``write_image`` formats by suffix.
WRITE_FORMATS = {".tif": "tiff", ".tiff": "tiff", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
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


@contextmanager
def mapped_tiff(path: str | Path, shape: tuple[int, int, int], *, bits: int = 16, space: str | None = None) -> Iterator[np.ndarray]:
    """An uncompressed 8/16-bit RGB TIFF whose samples are filled in place; atomic.

    Yields a writable ``(H, W, 3)`` uint8/uint16 array mapped onto the pixel data of a new
    file beside ``path`` (header written, samples not yet: the file is sparse until filled).
    Fill it completely (e.g. :func:`exposure_env.fused_cpu.apply_fused` with ``out=``) and drop
    the reference before the block ends (the map closes with its last reference); on leaving
    the block the file is renamed to ``path``, on an error it is removed. The bytes equal
    ``write_image(path, samples, bits=bits, space=space)``'s, without the encoder's copy of the
    photo into the page cache. The file's blocks are reserved first, so a full disk raises
    ``OSError`` rather than crashing the process while the map is filled. Raises
    ``ValueError`` naming ``path`` for a bad shape, bit depth or space.
    """
    import tifffile

    path = Path(path)
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or shape[-1] != 3 or min(shape) < 1:
        raise ValueError(f"{path}: expected an (H, W, 3) RGB shape, got {shape}")
    if bits not in (8, 16):
        raise ValueError(f"{path}: a mapped TIFF holds 8 or 16-bit samples, not {bits}")
    if space is not None:
        space = check_space(space)
    dtype = np.uint8 if bits == 8 else np.uint16
    with atomic_write(path) as tmp:
        offset, size = tifffile.imwrite(
            tmp, shape=shape, dtype=dtype, photometric="rgb", metadata={"space": space} if space else None, returnoffset=True
        )
        _reserve(tmp, offset, size)
        samples = np.memmap(tmp, dtype=dtype, mode="r+", offset=offset, shape=shape)
        yield samples
        del samples  # unmapped once the caller drops its reference too


def _reserve(path: Path, offset: int, size: int) -> None:
    """Allocate the file's blocks up front: a full disk is an ``OSError`` here, not a crash
    (SIGBUS) when the map is filled."""
    fd = os.open(path, os.O_RDWR)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, offset, size)
    except OSError as exc:
        raise OSError(exc.errno, f"{path}: cannot reserve {size} bytes for the photo ({exc.strerror})") from None
    finally:
        os.close(fd)


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
    from ..fused_cpu import quantize

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
