"""Imaging fixtures: a real Orthanc holding the test images, and the real test FHIR server.

Images uploaded once per session (through Orthanc's REST API):

- secondary captures of the two real IDC patches (native and JPEG baseline) and of a 256x256
  tile of scikit-image's IHC sample (JPEG baseline), one study;
- a whole-slide image DICOMized by Debian's ``OrthancWSIDicomizer`` (orthanc-wsi 1.1): a
  1280x1024 mosaic of the IHC sample and the IDC patches with a glass margin, three pyramid
  levels (0.25, 0.5, 1.0 µm/px), 256 px JPEG tiles;
- a TILED_SPARSE level built with pydicom (blank tiles left out, frames shuffled).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from integrations.imaging import EndpointAllowlist, FetchLimits, GuardedHttp
from tests.integrations.imaging import dicom_factory as f
from tests.support.fhir_server import fhir_server, fhir_server_session
from tests.support.orthanc import OrthancServer, orthanc

__all__ = ["fhir_server", "fhir_server_session", "orthanc"]

WSI_SPACING_MM = 0.00025


@dataclass(frozen=True)
class PacsData:
    sc_study: str
    sc_series: str
    sc_native_uid: str
    sc_jpeg_uid: str
    ihc_jpeg_uid: str
    idc_patches: tuple[NDArray[np.uint8], NDArray[np.uint8]]
    ihc_tile: NDArray[np.uint8]
    wsi_study: str
    wsi_series: str
    wsi_image: NDArray[np.uint8]
    sparse_study: str
    sparse_series: str
    sparse_image: NDArray[np.uint8]


def wsi_mosaic() -> NDArray[np.uint8]:
    """1280x1024: IHC sample 2x2 on the left, IDC patches in a row, glass on the right."""
    mosaic = np.full((1024, 1280, 3), 236, dtype=np.uint8)
    mosaic[:1024, :1024] = np.tile(f.ihc_image(), (2, 2, 1))
    for i in range(2):
        mosaic[100 : 150, 1100 + 60 * i : 1150 + 60 * i] = f.idc_patch(i)  # fmt: skip
    return mosaic


@pytest.fixture(scope="session")
def pacs_data(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> PacsData:
    study, series = generate_uid(), generate_uid()
    patches = (f.idc_patch(0), f.idc_patch(1))
    ihc_tile = f.ihc_image()[128:384, 128:384]
    native = f.secondary_capture(patches[0], study_uid=study, series_uid=series)
    jpeg = f.secondary_capture(
        patches[1], syntax=JPEGBaseline8Bit, study_uid=study, series_uid=series
    )
    ihc = f.secondary_capture(ihc_tile, syntax=JPEGBaseline8Bit, study_uid=study, series_uid=series)
    for ds in (native, jpeg, ihc):
        orthanc.upload(f.to_bytes(ds))

    mosaic = wsi_mosaic()
    wsi_study, wsi_series = orthanc.upload_slide(mosaic, spacing_mm=WSI_SPACING_MM, name="mosaic")

    sparse_study, sparse_series = generate_uid(), generate_uid()
    sparse_image = np.full((300, 420, 3), 245, dtype=np.uint8)
    sparse_image[:150, :280] = f.ihc_image()[:150, :280]
    level = f.sparse_wsi_level(
        sparse_image,
        tile=128,
        spacing_mm=0.0005,
        study_uid=sparse_study,
        series_uid=sparse_series,
    )
    orthanc.upload(f.to_bytes(level))
    return PacsData(
        sc_study=study,
        sc_series=series,
        sc_native_uid=str(native.SOPInstanceUID),
        sc_jpeg_uid=str(jpeg.SOPInstanceUID),
        ihc_jpeg_uid=str(ihc.SOPInstanceUID),
        idc_patches=patches,
        ihc_tile=ihc_tile,
        wsi_study=wsi_study,
        wsi_series=wsi_series,
        wsi_image=mosaic,
        sparse_study=sparse_study,
        sparse_series=sparse_series,
        sparse_image=sparse_image,
    )


_OPEN: list[GuardedHttp] = []


def guarded(*endpoints: str, **limits: float) -> GuardedHttp:
    """A guarded client for these endpoints; closed after the test (:func:`_close_clients`)."""
    http = GuardedHttp(EndpointAllowlist(endpoints), FetchLimits(**limits))  # type: ignore[arg-type]
    _OPEN.append(http)
    return http


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()
