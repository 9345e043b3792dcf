"""Decoding attachment images: PNG, JPEG, TIFF (Pillow) and DICOM Part 10 files (pydicom).

Decompression-bomb guard: the declared size is read from the header (Pillow's ``open`` is
lazy; pydicom's Rows/Columns/NumberOfFrames) and checked against the pixel limit *before*
pixels are decoded. Pillow itself raises ``DecompressionBombError`` above twice its
``MAX_IMAGE_PIXELS`` while opening, and warns above it; both become
:class:`ImageTooLargeError`, and our own limit (usually far lower) applies first otherwise.
Pillow is only allowed the one format the content type names, so a file claiming to be a PNG
never reaches another of Pillow's parsers.
"""

from __future__ import annotations

import io
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from integrations.imaging import dicom_pixels as px
from integrations.imaging.errors import (
    CorruptImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from integrations.imaging.guards import check_pixels

#: Content type → Pillow format name, and the leading bytes each format starts with.
RASTER_TYPES: Final = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}
DICOM_TYPE: Final = "application/dicom"
IMAGE_TYPES: Final = frozenset({*RASTER_TYPES, DICOM_TYPE})
_MAGIC: Final = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
}
_READABLE_MODES: Final = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"})


def check_signature(data: bytes, content_type: str) -> None:
    """The bytes must start the way the declared content type does (no type confusion)."""
    if content_type == DICOM_TYPE:
        if data[128:132] != b"DICM":
            raise UnsupportedImageError(
                "declared application/dicom but is not a DICOM Part 10 file"
            )
        return
    if not any(data.startswith(m) for m in _MAGIC[content_type]):
        raise UnsupportedImageError(f"declared {content_type} but the data is not of that type")


def decode_raster(data: bytes, content_type: str, max_pixels: int) -> NDArray[np.uint8]:
    """A PNG/JPEG/TIFF (first page) as RGB ``uint8``; transparency composited over white."""
    from PIL import Image

    fmt = RASTER_TYPES[content_type]
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning (1x-2x MAX_IMAGE_PIXELS) is an exception only where warnings are errors;
        # elsewhere it is logged and the size check below refuses the image. Filtering it here
        # would need warnings.catch_warnings, which is not thread-safe.
        raise ImageTooLargeError(f"{fmt} declares more pixels than the decoder allows") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(f"{fmt} header unreadable ({type(exc).__name__})") from exc
    with image:
        width, height = image.size
        check_pixels(height, width, 1, max_pixels)
        if image.mode not in _READABLE_MODES:
            raise UnsupportedImageError(f"{fmt} pixel mode {image.mode} is not supported")
        try:
            image.load()
            if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:
            raise CorruptImageError(
                f"{fmt} data truncated or corrupt ({type(exc).__name__})"
            ) from exc


def read_part10(data: bytes) -> Any:
    """Parse a DICOM Part 10 file (pixel data kept encoded); truncation is corrupt."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise CorruptImageError(f"DICOM file unreadable ({type(exc).__name__})") from exc
    except UserWarning as exc:  # warnings raised as errors (e.g. under pytest -W error)
        raise CorruptImageError("DICOM file truncated (pixel data delimiter missing)") from exc
    if "PixelData" not in ds:
        # pydicom drops an encapsulated Pixel Data element cut short (it warns and goes on).
        raise CorruptImageError("DICOM file has no complete pixel data (truncated?)")
    return ds


def decode_part10(ds: Any, max_pixels: int) -> NDArray[np.uint8]:
    """Frame 1 of a single-frame DICOM image as RGB, after the pixel-limit check.

    A tiled whole-slide instance (with a Total Pixel Matrix) is assembled from its tiles.
    """
    from pydicom.encaps import generate_frames

    from integrations.imaging.wsi import SlidePyramid, assemble, check_level_size

    fmt = px.PixelFormat.from_dataset(ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    check_pixels(fmt.rows, fmt.columns, frames, max_pixels)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    px.check_syntax(syntax)
    if syntax in px.NATIVE:
        size = fmt.rows * fmt.columns * fmt.samples_per_pixel
        raw = bytes(ds.PixelData)
        if len(raw) < size * frames:
            raise CorruptImageError(f"pixel data truncated: {len(raw)} of {size * frames} bytes")
        encoded = [raw[i * size : (i + 1) * size] for i in range(frames)]
    else:
        try:
            encoded = list(generate_frames(ds.PixelData, number_of_frames=frames))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptImageError("encapsulated pixel data unreadable") from exc
        if len(encoded) != frames:
            raise CorruptImageError(f"pixel data holds {len(encoded)} of {frames} frames")
    if "TotalPixelMatrixColumns" in ds:
        pyramid = SlidePyramid.from_metadata([ds])
        level = pyramid.levels[0]
        check_level_size(level, max_pixels)
        tiles = {
            (ref.instance_uid, ref.frame_number): px.decode_frame(
                encoded[ref.frame_number - 1], syntax, fmt
            )
            for ref in level.frames
        }
        return assemble(level, tiles)
    if frames != 1:
        raise UnsupportedImageError("multi-frame image that is not a tiled whole slide")
    return px.decode_frame(encoded[0], syntax, fmt)
