"""DICOMweb WADO-RS client: metadata, then frames, decoded into RGB images (DICOM PS3.18 §10.4).

Requests (all through :class:`~integrations.imaging.http.GuardedHttp`):

- ``GET {base}/studies/{study}[/series/{series}]/metadata`` with
  ``Accept: application/dicom+json`` (PS3.18 §10.4.1.1.2; ``application/json`` also read);
  bulk data URIs in the metadata are never followed;
- ``GET {base}/studies/{study}/series/{series}/instances/{sop}/frames/{n,m,…}`` (PS3.18
  §10.4.1.1.3) with ``Accept: multipart/related; type="application/octet-stream";
  transfer-syntax=*``: the server sends frames as stored (JPEG as ``image/jpeg``, JPEG 2000 as
  ``image/jp2``, native as ``application/octet-stream``), each part naming its transfer syntax
  (else the media type's default, PS3.18 Table 8.7.3-5). When the stored syntax is one we do not
  decode (:data:`~integrations.imaging.dicom_pixels.SUPPORTED_TRANSFER_SYNTAXES`), the frames
  are asked for again as Explicit VR Little Endian, which Orthanc and dcm4chee transcode to.

What is read: whole-slide series (VL WSI, modality SM) as one level of the pyramid chosen for
a pixel spacing (:mod:`integrations.imaging.wsi`), and single-frame images (Secondary Capture,
VL Microscopic, VL Slide-Coordinates Microscopic, VL Photographic) as they are. UIDs are
checked against PS3.5 §9.1 (digits and dots, at most 64 characters) before they enter a URL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from integrations.imaging import dicom_pixels as px
from integrations.imaging.errors import (
    CorruptImageError,
    ImageReferenceError,
    UnsupportedImageError,
)
from integrations.imaging.guards import Budget, check_pixels
from integrations.imaging.http import Credential, GuardedHttp, MediaType
from integrations.imaging.model import FetchedImage, FetchRecord, LevelInfo
from integrations.imaging.multipart import parse_multipart
from integrations.imaging.wsi import (
    WSI_SOP_CLASS,
    SlidePyramid,
    assemble,
    check_level_size,
    pixel_spacing_mm,
)

_UID: Final = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
METADATA_TYPES: Final = frozenset({"application/dicom+json", "application/json"})
ACCEPT_METADATA: Final = "application/dicom+json, application/json;q=0.9"
ACCEPT_STORED: Final = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
ACCEPT_NATIVE: Final = (
    f'multipart/related; type="application/octet-stream"; transfer-syntax={px.EXPLICIT_LE}'
)
#: PS3.18 Table 8.7.3-5: the transfer syntax a frame media type stands for when it names none.
_DEFAULT_SYNTAX: Final = {
    "application/octet-stream": px.EXPLICIT_LE,
    "image/jpeg": px.JPEG_BASELINE,
    "image/jp2": px.JPEG2000_LOSSLESS,
    "image/dicom-rle": px.RLE_LOSSLESS,
    "image/x-dicom-rle": px.RLE_LOSSLESS,
}
SINGLE_FRAME_CLASSES: Final = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC (read when 1 frame)
        "1.2.840.10008.5.1.4.1.1.77.1.2",  # VL Microscopic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.3",  # VL Slide-Coordinates Microscopic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image Storage
    }
)


def check_uid(uid: str) -> str:
    if not (0 < len(uid) <= 64 and _UID.match(uid)):
        raise ImageReferenceError("malformed DICOM UID (PS3.5 §9.1)")
    return uid


def _no_bulk_data(*_: str) -> None:
    """Bulk data URIs in metadata point anywhere: never followed."""
    return


def _frame_syntax(part_type: MediaType, outer: MediaType) -> str:
    syntax = part_type.params.get("transfer-syntax")
    if syntax:
        return syntax
    inner = MediaType.parse(outer.params.get("type", ""))
    if inner.essence == part_type.essence and inner.params.get("transfer-syntax"):
        return inner.params["transfer-syntax"]
    return _DEFAULT_SYNTAX.get(part_type.essence, "")


class DicomWebClient:
    """Reads images from one DICOMweb (WADO-RS) service.

    Args:
        base_url: the service root, e.g. ``https://pacs.example.org/dicom-web``; must be on the
            allowlist of ``http``.
        http: the guarded HTTP client (allowlist, limits, timeouts).
        credential: the client's ``fhirAuthorization`` bearer token or a configured PACS
            credential (:class:`BearerToken` / :class:`BasicCredential`); ``None`` sends none.
    """

    def __init__(
        self, base_url: str, http: GuardedHttp, *, credential: Credential | None = None
    ) -> None:
        self._host = http.allowlist.check(base_url).origin.host
        self._base = base_url.rstrip("/")
        self._http = http
        self._credential = credential

    def _get(self, path: str, accept: str, types: frozenset[str], budget: Budget) -> Any:
        return self._http.get(
            f"{self._base}/{path}",
            accept=accept,
            allowed_types=types,
            budget=budget,
            credential=self._credential,
        )

    def metadata(
        self, study_uid: str, series_uid: str | None = None, *, budget: Budget | None = None
    ) -> list[Any]:
        """Instance metadata of a study or series as pydicom ``Dataset`` objects."""
        from pydicom import Dataset

        path = f"studies/{check_uid(study_uid)}"
        if series_uid is not None:
            path += f"/series/{check_uid(series_uid)}"
        body = self._get(
            f"{path}/metadata", ACCEPT_METADATA, METADATA_TYPES, budget or self._http.budget()
        )
        import orjson

        try:
            items = orjson.loads(body.content)
        except orjson.JSONDecodeError as exc:
            raise CorruptImageError(f"unreadable DICOM JSON metadata from {self._host}") from exc
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise CorruptImageError(f"DICOM JSON metadata from {self._host} is not an array")
        try:
            return [Dataset.from_json(item, _no_bulk_data) for item in items]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CorruptImageError(f"unreadable DICOM JSON metadata from {self._host}") from exc

    def frames(
        self,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        numbers: Sequence[int],
        *,
        budget: Budget,
    ) -> list[tuple[str, bytes]]:
        """Encoded frames ``numbers`` (1-based) of one instance as ``(transfer syntax, bytes)``."""
        path = (
            f"studies/{check_uid(study_uid)}/series/{check_uid(series_uid)}"
            f"/instances/{check_uid(instance_uid)}/frames/"
        )
        result: list[tuple[str, bytes]] = []
        accept = ACCEPT_STORED
        step = self._http.limits.frames_per_request
        index = 0
        while index < len(numbers):
            batch = numbers[index : index + step]
            encoded = self._frame_batch(path, batch, accept, budget)
            if accept == ACCEPT_STORED and any(
                s not in px.SUPPORTED_TRANSFER_SYNTAXES for s, _ in encoded
            ):
                accept = ACCEPT_NATIVE  # ask the server to transcode (PS3.18 §8.7.3.5)
                continue
            for syntax, _ in encoded:
                px.check_syntax(syntax)
            result.extend(encoded)
            index += step
        return result

    def _frame_batch(
        self, path: str, batch: Sequence[int], accept: str, budget: Budget
    ) -> list[tuple[str, bytes]]:
        listing = ",".join(str(int(n)) for n in batch)
        body = self._get(path + listing, accept, frozenset({"multipart/related"}), budget)
        parts = parse_multipart(body.content, body.media_type, max_parts=len(batch))
        if len(parts) != len(batch):
            raise CorruptImageError(f"{self._host} sent {len(parts)} of {len(batch)} frames")
        return [(_frame_syntax(p.media_type, body.media_type), p.content) for p in parts]

    def read_slide(
        self,
        study_uid: str,
        series_uid: str,
        *,
        target_spacing_mm: float | None = None,
        tolerance: float = 0.1,
        metadata: list[Any] | None = None,
    ) -> FetchedImage:
        """One level of a whole-slide series: the coarsest at least as fine as the target.

        Pixel limit checked on the level's size before any frame is fetched; byte limit and
        deadline over the metadata and every frame request.
        """
        budget = self._http.budget()
        if metadata is None:
            metadata = self.metadata(study_uid, series_uid, budget=budget)
        pyramid = SlidePyramid.from_metadata(metadata)
        index, level = pyramid.choose_level(target_spacing_mm, tolerance=tolerance)
        check_level_size(level, self._http.limits.max_pixels)
        by_instance: dict[str, list[int]] = {}
        for ref in level.frames:
            by_instance.setdefault(ref.instance_uid, []).append(ref.frame_number)
        tiles: dict[tuple[str, int], NDArray[np.uint8]] = {}
        for uid, numbers in by_instance.items():
            encoded = self.frames(study_uid, series_uid, uid, numbers, budget=budget)
            for number, (syntax, data) in zip(numbers, encoded, strict=True):
                frame = px.decode_frame(data, syntax, level.pixel_format)
                tiles[(uid, number)] = frame
        pixels = assemble(level, tiles)
        record = FetchRecord(
            source="dicomweb",
            endpoint_host=self._host,
            study_uid=study_uid,
            series_uid=series_uid,
            instance_uids=level.instance_uids,
            byte_count=budget.bytes_used,
            requests=budget.requests,
        )
        info = LevelInfo(
            index=index,
            count=len(pyramid.levels),
            width=level.width,
            height=level.height,
            tile_width=level.tile_width,
            tile_height=level.tile_height,
            frames=len(level.frames),
        )
        return FetchedImage(pixels, level.spacing_mm, "wsi-level", record, info)

    def read_instance(self, study_uid: str, series_uid: str, instance: Any) -> FetchedImage:
        """A single-frame image (Secondary Capture and the VL single-frame classes)."""
        budget = self._http.budget()
        uid = str(instance.SOPInstanceUID)
        if str(instance.get("SOPClassUID", "")) not in SINGLE_FRAME_CLASSES:
            raise UnsupportedImageError(
                "instance is neither a whole slide nor a single-frame image"
            )
        frames = int(instance.get("NumberOfFrames", 1) or 1)
        fmt = px.PixelFormat.from_dataset(instance)
        check_pixels(fmt.rows, fmt.columns, frames, self._http.limits.max_pixels)
        if frames != 1:
            raise UnsupportedImageError("multi-frame image that is not a tiled whole slide")
        ((syntax, data),) = self.frames(study_uid, series_uid, uid, [1], budget=budget)
        pixels = px.decode_frame(data, syntax, fmt)
        record = FetchRecord(
            source="dicomweb",
            endpoint_host=self._host,
            study_uid=study_uid,
            series_uid=series_uid,
            instance_uids=(uid,),
            byte_count=budget.bytes_used,
            requests=budget.requests,
        )
        return FetchedImage(pixels, pixel_spacing_mm(instance), "dicom-frame", record)

    def read_study(
        self, study_uid: str, *, target_spacing_mm: float | None = None
    ) -> list[FetchedImage]:
        """Every readable image of a study: one level per whole-slide series, plus each
        single-frame image. Limits and deadline apply per image (and to the metadata request).
        """
        metadata = self.metadata(study_uid)
        by_series: dict[str, list[Any]] = {}
        for ds in metadata:
            by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
        images: list[FetchedImage] = []
        for series_uid, members in by_series.items():
            if any(str(ds.get("SOPClassUID", "")) == WSI_SOP_CLASS for ds in members):
                images.append(
                    self.read_slide(
                        study_uid, series_uid, target_spacing_mm=target_spacing_mm, metadata=members
                    )
                )
            for ds in members:
                if str(ds.get("SOPClassUID", "")) in SINGLE_FRAME_CLASSES:
                    images.append(self.read_instance(study_uid, series_uid, ds))
        if not images:
            raise ImageReferenceError("study holds no whole-slide or single-frame image")
        return images
