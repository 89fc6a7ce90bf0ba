"""Photo files in and out: ``read_image`` -> linear RGB float32, ``write_image``.

The decoders live in :mod:`.read`, the encoders in :mod:`.write`; thumbnails and resizing in
:mod:`exposure_env.resample`.

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

from .read import DEFAULT_MAX_PIXELS, SUPPORTED_SUFFIXES, ImageError, is_supported, read_image
from .write import PNG_COMPRESSIONS, TIFF_COMPRESSIONS, WRITE_FORMATS, check_compression, mapped_tiff, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "PNG_COMPRESSIONS",
    "SUPPORTED_SUFFIXES",
    "TIFF_COMPRESSIONS",
    "WRITE_FORMATS",
    "check_compression",
    "is_supported",
    "mapped_tiff",
    "read_image",
    "write_image",
]
