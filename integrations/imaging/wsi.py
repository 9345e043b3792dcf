"""Whole-slide pyramids from DICOM metadata: levels, tile positions, level choice, assembly.

VL Whole Slide Microscopy Image Storage (PS3.3 A.32.8, SOP class 1.2.840.10008.5.1.4.1.1.77.1.6):
a series holds one pyramid; each level is one instance (or a concatenation of instances) whose
frames are tiles of ``Rows x Columns`` over a Total Pixel Matrix of
``TotalPixelMatrixRows x TotalPixelMatrixColumns`` (PS3.3 C.8.12.4).

Tile positions (PS3.3 C.7.6.17.3 and C.8.12.6.1):

- when the Per-Frame Functional Groups carry a Plane Position (Slide) Sequence, each frame's
  1-based ``Column/RowPositionInTotalImagePixelMatrix`` is used. That is required for
  ``TILED_SPARSE`` and is what Orthanc's WSI DICOMizer writes (it sets no Dimension Organization
  Type);
- otherwise ``TILED_FULL``: frames fill the matrix row by row, left to right, first focal plane
  and first optical path first; a concatenation's ``ConcatenationFrameOffsetNumber`` shifts its
  frames. Frames beyond one plane (other focal planes or optical paths) are not read.

When several frames sit at one position (focal planes, optical paths) the first one in stored
order is read. LABEL and OVERVIEW images are never pyramid levels (a label may show the patient's
name).

**Library choice.** We parse with pydicom and compute the geometry here instead of using
``wsidicom``: wsidicom's DICOMweb source fetches through its own HTTP client (``requests``
via ``dicomweb-client``), so the allowlist, redirect, byte-limit and deadline guards of
:mod:`integrations.imaging.http` could not apply to its requests; highdicom targets creating and
reading complete objects with their pixel data, not frame-by-frame retrieval. pydicom 3.0.2
(pinned) gives ``Dataset.from_json`` for DICOM JSON metadata and the frame decoders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from integrations.imaging.dicom_pixels import PixelFormat
from integrations.imaging.errors import (
    CorruptImageError,
    ImageReferenceError,
    ImageTooLargeError,
    UnsupportedImageError,
)

WSI_SOP_CLASS: Final = "1.2.840.10008.5.1.4.1.1.77.1.6"
_NOT_PYRAMID: Final = frozenset({"LABEL", "OVERVIEW"})
#: By convention 40x scanning is about 0.25 µm per pixel, so spacing ≈ 10 µm / magnification.
_UM_AT_1X: Final = 10.0


def spacing_for_magnification(magnification: float) -> float:
    """Pixel spacing (mm) of an objective magnification, by the 40x ≈ 0.25 µm/px convention.

    Scanners differ (0.22-0.27 µm/px at "40x"); pass the bundle's pixel spacing when it has one.
    """
    if magnification <= 0:
        raise ValueError("magnification must be positive")
    return _UM_AT_1X / magnification / 1000.0


@dataclass(frozen=True, slots=True)
class FrameRef:
    """One stored tile: instance, 1-based frame number, 0-based top-left in the level's matrix."""

    instance_uid: str
    frame_number: int
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class PyramidLevel:
    width: int
    height: int
    tile_width: int
    tile_height: int
    spacing_mm: float | None
    pixel_format: PixelFormat
    frames: tuple[FrameRef, ...]

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def instance_uids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.instance_uid for f in self.frames))


def _value(ds: Any, path: Sequence[str]) -> Any:
    """Follow sequence keywords to the first item's attribute (``None`` where absent)."""
    current = ds
    for name in path[:-1]:
        seq = current.get(name)
        if not seq:
            return None
        current = seq[0]
    return current.get(path[-1])


def pixel_spacing_mm(ds: Any) -> float | None:
    """Mean of row and column Pixel Spacing (shared functional groups, else top level), mm."""
    spacing = _value(
        ds, ("SharedFunctionalGroupsSequence", "PixelMeasuresSequence", "PixelSpacing")
    )
    if spacing is None:
        spacing = ds.get("PixelSpacing")
    try:
        values = [float(v) for v in spacing] if spacing is not None else []
    except (TypeError, ValueError):
        return None
    if len(values) != 2 or min(values) <= 0:
        return None
    return (values[0] + values[1]) / 2


def _flavours(ds: Any) -> set[str]:
    found: set[str] = set()
    for keyword in ("ImageType", "FrameType"):
        value = ds.get(keyword)
        if value is None:
            continue
        found.update(str(v).upper() for v in (value if not isinstance(value, str) else [value]))
    return found


def _positions(ds: Any, uid: str, tiles_across: int, tiles_down: int) -> list[FrameRef]:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and per_frame[0].get("PlanePositionSlideSequence"):
        if len(per_frame) != frames:
            raise CorruptImageError("per-frame functional groups do not match NumberOfFrames")
        refs: list[FrameRef] = []
        for number, item in enumerate(per_frame, start=1):
            plane = item.get("PlanePositionSlideSequence")
            try:
                x = int(plane[0].ColumnPositionInTotalImagePixelMatrix) - 1
                y = int(plane[0].RowPositionInTotalImagePixelMatrix) - 1
            except (AttributeError, IndexError, TypeError, ValueError) as exc:
                raise CorruptImageError(
                    "a frame has no position in the total pixel matrix"
                ) from exc
            refs.append(FrameRef(uid, number, x, y))
        return refs
    if str(ds.get("DimensionOrganizationType", "")).upper() == "TILED_SPARSE":
        raise CorruptImageError("TILED_SPARSE image without per-frame plane positions")
    offset = int(ds.get("ConcatenationFrameOffsetNumber", 0) or 0)
    tile_w, tile_h = _tile(ds)
    refs = []
    for number in range(1, frames + 1):
        index = offset + number - 1
        if index >= tiles_across * tiles_down:
            break  # further focal planes / optical paths (TILED_FULL order, PS3.3 C.7.6.17.3)
        refs.append(
            FrameRef(uid, number, (index % tiles_across) * tile_w, (index // tiles_across) * tile_h)
        )
    return refs


def _tile(ds: Any) -> tuple[int, int]:
    return int(ds.Columns), int(ds.Rows)


@dataclass(frozen=True, slots=True)
class SlidePyramid:
    """The levels of one whole-slide series, finest first."""

    study_uid: str
    series_uid: str
    levels: tuple[PyramidLevel, ...]

    @classmethod
    def from_metadata(cls, datasets: Iterable[Any]) -> SlidePyramid:
        """Build the pyramid from a series' instance metadata (pydicom ``Dataset`` objects)."""
        groups: dict[tuple[int, int], list[Any]] = {}
        study = series = ""
        for ds in datasets:
            if str(ds.get("SOPClassUID", "")) != WSI_SOP_CLASS or _flavours(ds) & _NOT_PYRAMID:
                continue
            try:
                key = (int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows))
            except (AttributeError, TypeError, ValueError) as exc:
                raise CorruptImageError("whole-slide image without a total pixel matrix") from exc
            groups.setdefault(key, []).append(ds)
            study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        if not groups:
            raise ImageReferenceError("series holds no whole-slide (VL WSI) pyramid level")
        levels = [_level(width, height, members) for (width, height), members in groups.items()]
        levels.sort(key=lambda level: -level.pixels)
        return cls(study, series, tuple(levels))

    def choose_level(
        self, target_spacing_mm: float | None, *, tolerance: float = 0.1
    ) -> tuple[int, PyramidLevel]:
        """The coarsest level at least as fine as ``target_spacing_mm`` (+ ``tolerance``).

        Reading the coarsest sufficient level fetches the fewest bytes; the tiler then
        downsamples to the exact spacing. Without a target (or without spacings in the
        metadata) the base level is returned.

        Raises:
            UnsupportedImageError: every level is coarser than the target (no upsampling).
        """
        if target_spacing_mm is None or any(level.spacing_mm is None for level in self.levels):
            return 0, self.levels[0]
        limit = target_spacing_mm * (1 + tolerance)
        fine_enough = [
            (i, level) for i, level in enumerate(self.levels) if (level.spacing_mm or 0) <= limit
        ]
        if not fine_enough:
            finest = self.levels[0].spacing_mm or 0
            raise UnsupportedImageError(
                f"slide's finest level ({finest * 1000:.3g} µm/px) is coarser than the "
                f"required {target_spacing_mm * 1000:.3g} µm/px"
            )
        return max(fine_enough, key=lambda pair: pair[1].spacing_mm or 0)


def _level(width: int, height: int, members: list[Any]) -> PyramidLevel:
    first = members[0]
    fmt = PixelFormat.from_dataset(first)
    tile_w, tile_h = _tile(first)
    across, down = math.ceil(width / tile_w), math.ceil(height / tile_h)
    seen: dict[tuple[int, int], FrameRef] = {}
    members = sorted(members, key=lambda d: int(d.get("ConcatenationFrameOffsetNumber", 0) or 0))
    for ds in members:
        if _tile(ds) != (tile_w, tile_h):
            raise CorruptImageError("instances of one pyramid level have different tile sizes")
        for ref in _positions(ds, str(ds.SOPInstanceUID), across, down):
            if not (0 <= ref.x < width and 0 <= ref.y < height):
                raise CorruptImageError("a tile lies outside the total pixel matrix")
            seen.setdefault((ref.x, ref.y), ref)
    return PyramidLevel(
        width, height, tile_w, tile_h, pixel_spacing_mm(first), fmt, tuple(seen.values())
    )


def check_level_size(level: PyramidLevel, max_pixels: int) -> None:
    if level.pixels > max_pixels:
        raise ImageTooLargeError(
            f"chosen slide level has {level.pixels} pixels ({level.width}x{level.height}), "
            f"over the {max_pixels} limit"
        )


def assemble(
    level: PyramidLevel, tiles: Mapping[tuple[str, int], NDArray[np.uint8]]
) -> NDArray[np.uint8]:
    """Paste decoded tiles into the level's matrix; absent (sparse) tiles stay white."""
    canvas = np.full((level.height, level.width, 3), 255, dtype=np.uint8)
    for ref in level.frames:
        tile = tiles[(ref.instance_uid, ref.frame_number)]
        h = min(level.tile_height, level.height - ref.y)
        w = min(level.tile_width, level.width - ref.x)
        canvas[ref.y : ref.y + h, ref.x : ref.x + w] = tile[:h, :w]
    return canvas
