"""DICOM test objects built with pydicom from real pixels (IDC patches, scikit-image's IHC image).

- :func:`secondary_capture`: Secondary Capture Image Storage (PS3.3 A.8.1), RGB 8-bit, native
  (Explicit VR Little Endian) or JPEG baseline (frames encoded by Pillow, YBR_FULL_422).
- :func:`sparse_wsi_level`: one level of a VL Whole Slide Microscopy image (PS3.3 A.32.8) with
  ``DimensionOrganizationType`` TILED_SPARSE: frame positions in the Per-Frame Functional Groups
  (Plane Position (Slide) Sequence), frames in shuffled order, an empty tile left out.

These objects hold only what the readers under test look at; they are not validated IODs.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    VLWholeSlideMicroscopyImageStorage,
    generate_uid,
)

DATA = Path(__file__).resolve().parents[2] / "data"
IDC_PATCHES = sorted((DATA / "idc").rglob("*.png"))


def idc_patch(index: int = 0) -> NDArray[np.uint8]:
    with Image.open(IDC_PATCHES[index]) as image:
        return np.asarray(image.convert("RGB"))


def ihc_image() -> NDArray[np.uint8]:
    """scikit-image's immunohistochemistry sample (512x512 RGB; public domain per skimage)."""
    from skimage import data

    return np.asarray(data.immunohistochemistry(), dtype=np.uint8)


def jpeg_bytes(frame: NDArray[np.uint8], quality: int = 92) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="JPEG", quality=quality, subsampling="4:2:2")
    return out.getvalue()


def _base(sop_class: str, syntax: str, study_uid: str | None, series_uid: str | None) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = "TEST-IMG-1"
    ds.PatientName = "Test^Imaging"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 3
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PlanarConfiguration = 0
    return ds


def _encode(ds: Dataset, frames: list[NDArray[np.uint8]], syntax: str) -> None:
    if syntax == JPEGBaseline8Bit:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PixelData = encapsulate([jpeg_bytes(f) for f in frames])
        ds["PixelData"].VR = "OB"
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
        ds["PixelData"].VR = "OB"


def to_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def secondary_capture(
    pixels: NDArray[np.uint8],
    *,
    syntax: str = ExplicitVRLittleEndian,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Dataset:
    ds = _base(SecondaryCaptureImageStorage, syntax, study_uid, series_uid)
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.Rows, ds.Columns = pixels.shape[:2]
    _encode(ds, [pixels], syntax)
    return ds


def sparse_wsi_level(
    image: NDArray[np.uint8],
    *,
    tile: int,
    spacing_mm: float,
    study_uid: str,
    series_uid: str,
    skip_blank: bool = True,
    seed: int = 7,
) -> Dataset:
    """One TILED_SPARSE level of ``image`` (tiles padded white at the right/bottom edges)."""
    ds = _base(VLWholeSlideMicroscopyImageStorage, JPEGBaseline8Bit, study_uid, series_uid)
    ds.Modality = "SM"
    ds.ImageType = ["DERIVED", "PRIMARY", "VOLUME", "NONE"]
    ds.DimensionOrganizationType = "TILED_SPARSE"
    height, width = image.shape[:2]
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = height, width
    ds.Rows = ds.Columns = tile
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.NumberOfOpticalPaths = 1
    measures = Dataset()
    measures.PixelSpacing = [spacing_mm, spacing_mm]
    measures.SliceThickness = 0.001
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    positions: list[tuple[int, int]] = []
    frames: list[NDArray[np.uint8]] = []
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            frame = np.full((tile, tile, 3), 255, dtype=np.uint8)
            part = image[y : y + tile, x : x + tile]
            frame[: part.shape[0], : part.shape[1]] = part
            if skip_blank and int(np.ptp(part)) == 0:  # a tile of glass only
                continue
            positions.append((x, y))
            frames.append(frame)
    order = list(range(len(frames)))
    random.Random(seed).shuffle(order)
    per_frame = []
    for index in order:
        x, y = positions[index]
        plane = Dataset()
        plane.ColumnPositionInTotalImagePixelMatrix = x + 1  # 1-based (PS3.3 C.8.12.6.1)
        plane.RowPositionInTotalImagePixelMatrix = y + 1
        plane.XOffsetInSlideCoordinateSystem = 0.0
        plane.YOffsetInSlideCoordinateSystem = 0.0
        plane.ZOffsetInSlideCoordinateSystem = 0.0
        item = Dataset()
        item.PlanePositionSlideSequence = Sequence([plane])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.NumberOfFrames = len(order)
    _encode(ds, [frames[i] for i in order], JPEGBaseline8Bit)
    return ds
