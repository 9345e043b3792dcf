"""What a fetch returns: the pixels and, apart, what the audit needs (identifiers only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Source = Literal["dicomweb", "fhir-binary", "inline-attachment"]
ImageKind = Literal["wsi-level", "dicom-frame", "raster"]


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """Identifiers of one fetch for the audit trail (issue #15 §6): never pixels or PHI.

    Attributes:
        source: DICOMweb, a FHIR ``Binary`` (by URL) or an inline attachment.
        endpoint_host: host the data came from (``None`` for inline data).
        study_uid / series_uid / instance_uids: DICOM UIDs (from the request or the file).
        reference: the FHIR reference fetched or carrying the attachment (``Binary/1``,
            ``DocumentReference/7#content[0]``), ``None`` for DICOMweb.
        byte_count: bytes received (or decoded from base64) for this image.
        requests: HTTP requests made.
        sha256: digest of the encoded bytes of a single-object fetch (attachments), a key for
            reusing stored results; ``None`` for DICOMweb, where the UIDs are the key.
    """

    source: Source
    endpoint_host: str | None
    study_uid: str | None = None
    series_uid: str | None = None
    instance_uids: tuple[str, ...] = ()
    reference: str | None = None
    byte_count: int = 0
    requests: int = 0
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class LevelInfo:
    """Which pyramid level of a whole-slide image was read."""

    index: int  # 0 = the finest (base) level
    count: int
    width: int
    height: int
    tile_width: int
    tile_height: int
    frames: int


@dataclass(frozen=True, slots=True)
class FetchedImage:
    """Decoded RGB pixels (``height x width x 3``, ``uint8``) with their spacing and provenance.

    ``spacing_mm`` is the physical size of one pixel (DICOM Pixel Spacing, mm; the mean of row
    and column spacing) when the source says it, else ``None`` (PNG/JPEG attachments, secondary
    captures without it): the caller then treats the image as being at the model's scale.
    """

    pixels: NDArray[np.uint8]
    spacing_mm: float | None
    kind: ImageKind
    record: FetchRecord
    level: LevelInfo | None = field(default=None)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])
