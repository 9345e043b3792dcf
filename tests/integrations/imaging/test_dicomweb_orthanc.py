"""DICOMweb WADO-RS against a real Orthanc (Debian orthanc 1.10 + orthanc-dicomweb 1.7).

Metadata and frames of secondary captures and of a whole-slide image DICOMized by Orthanc's
WSI DICOMizer; the pyramid level chosen for a pixel spacing; a TILED_SPARSE level; bearer and
basic credentials accepted and wrong ones refused by Orthanc itself.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from integrations.imaging import (
    BasicCredential,
    BearerToken,
    DicomWebClient,
    ImageSourceRefusedError,
    ImageTooLargeError,
    UnsupportedImageError,
    spacing_for_magnification,
)
from integrations.imaging.wsi import SlidePyramid
from tests.integrations.imaging import dicom_factory as f
from tests.integrations.imaging.conftest import WSI_SPACING_MM, PacsData, guarded
from tests.support.orthanc import OrthancServer


def client(pacs: OrthancServer, **limits: float) -> DicomWebClient:
    http = guarded(pacs.dicomweb_url, **limits)
    return DicomWebClient(pacs.dicomweb_url, http, credential=BearerToken(pacs.token))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_series_metadata_lists_the_secondary_captures(
    orthanc: OrthancServer, pacs_data: PacsData
) -> None:
    datasets = client(orthanc).metadata(pacs_data.sc_study, pacs_data.sc_series)
    uids = {str(ds.SOPInstanceUID) for ds in datasets}
    assert uids == {pacs_data.sc_native_uid, pacs_data.sc_jpeg_uid, pacs_data.ihc_jpeg_uid}
    assert {str(ds.SOPClassUID) for ds in datasets} == {"1.2.840.10008.5.1.4.1.1.7"}


def test_native_secondary_capture_frame_is_pixel_exact(
    orthanc: OrthancServer, pacs_data: PacsData
) -> None:
    pacs = client(orthanc)
    (ds,) = [
        d
        for d in pacs.metadata(pacs_data.sc_study, pacs_data.sc_series)
        if str(d.SOPInstanceUID) == pacs_data.sc_native_uid
    ]
    image = pacs.read_instance(pacs_data.sc_study, pacs_data.sc_series, ds)
    assert np.array_equal(image.pixels, pacs_data.idc_patches[0])
    assert image.kind == "dicom-frame"
    assert image.record.instance_uids == (pacs_data.sc_native_uid,)
    assert image.record.endpoint_host == "127.0.0.1"
    assert image.record.byte_count >= 50 * 50 * 3
    assert image.record.requests == 1


def test_study_read_returns_every_secondary_capture(
    orthanc: OrthancServer, pacs_data: PacsData
) -> None:
    images = client(orthanc).read_study(pacs_data.sc_study)
    by_uid = {image.record.instance_uids[0]: image for image in images}
    assert set(by_uid) == {pacs_data.sc_native_uid, pacs_data.sc_jpeg_uid, pacs_data.ihc_jpeg_uid}
    # JPEG baseline: what Pillow decodes from the very bytes stored, and near the source (a
    # wrong YCbCr/RGB handling would be off by tens of levels).
    for uid, source in (
        (pacs_data.sc_jpeg_uid, pacs_data.idc_patches[1]),
        (pacs_data.ihc_jpeg_uid, pacs_data.ihc_tile),
    ):
        stored = f.jpeg_bytes(source)
        with Image.open(io.BytesIO(stored)) as reference:
            assert np.array_equal(by_uid[uid].pixels, np.asarray(reference.convert("RGB")))
        assert mean_abs_diff(by_uid[uid].pixels, source) < 8
    assert all(image.record.study_uid == pacs_data.sc_study for image in images)


def test_dicomizer_pyramid_has_three_levels_with_spacings(
    orthanc: OrthancServer, pacs_data: PacsData
) -> None:
    pyramid = SlidePyramid.from_metadata(
        client(orthanc).metadata(pacs_data.wsi_study, pacs_data.wsi_series)
    )
    sizes = [(level.width, level.height) for level in pyramid.levels]
    assert sizes == [(1280, 1024), (640, 512), (320, 256)]
    spacings = [level.spacing_mm or 0 for level in pyramid.levels]
    # The DICOMizer derives spacing from --imaged-width with its own rounding (0.25625 µm).
    assert spacings[0] == pytest.approx(WSI_SPACING_MM, rel=0.03)
    assert spacings[1:] == pytest.approx([2 * spacings[0], 4 * spacings[0]])
    assert [len(level.frames) for level in pyramid.levels] == [20, 6, 2]


@pytest.mark.parametrize(
    ("target_mm", "level_index", "size"),
    [
        (None, 0, (1280, 1024)),
        (0.00025, 0, (1280, 1024)),
        (0.0009, 1, (640, 512)),  # 1.0 µm is coarser than 0.9 µm (+10 %): read 0.5 µm
        (0.001, 2, (320, 256)),
        (0.004, 2, (320, 256)),
    ],
)
def test_level_chosen_for_the_pixel_spacing(
    orthanc: OrthancServer,
    pacs_data: PacsData,
    target_mm: float | None,
    level_index: int,
    size: tuple[int, int],
) -> None:
    image = client(orthanc).read_slide(
        pacs_data.wsi_study, pacs_data.wsi_series, target_spacing_mm=target_mm
    )
    assert image.level is not None
    assert image.level.index == level_index
    assert (image.width, image.height) == size
    expected = np.asarray(Image.fromarray(pacs_data.wsi_image).resize(size, Image.Resampling.BOX))
    # JPEG tiles, and for coarser levels the DICOMizer's own downsampling: close, not equal. A
    # tile put in the wrong place would differ by tens of levels.
    assert mean_abs_diff(image.pixels, expected) < (6 if level_index == 0 else 15)
    assert image.spacing_mm == pytest.approx(WSI_SPACING_MM * 2**level_index, rel=0.03)
    assert image.record.series_uid == pacs_data.wsi_series
    assert image.record.byte_count > 0


def test_level_finer_than_the_slide_is_refused(orthanc: OrthancServer, pacs_data: PacsData) -> None:
    with pytest.raises(UnsupportedImageError, match="coarser than the required"):
        client(orthanc).read_slide(
            pacs_data.wsi_study, pacs_data.wsi_series, target_spacing_mm=0.0001
        )


def test_level_over_the_pixel_limit_is_refused_before_frames(
    orthanc: OrthancServer, pacs_data: PacsData
) -> None:
    with pytest.raises(ImageTooLargeError, match="1310720 pixels"):
        client(orthanc, max_pixels=1_000_000).read_slide(pacs_data.wsi_study, pacs_data.wsi_series)


def test_magnification_convention() -> None:
    assert spacing_for_magnification(40) == pytest.approx(0.00025)
    assert spacing_for_magnification(2.5) == pytest.approx(0.004)


def test_tiled_sparse_level_is_assembled_with_blank_tiles_white(
    orthanc: OrthancServer, pacs_data: PacsData
) -> None:
    image = client(orthanc).read_slide(pacs_data.sparse_study, pacs_data.sparse_series)
    assert image.level is not None
    assert image.level.frames == 6  # 3x4 grid, tiles of glass only were never stored
    assert (image.width, image.height) == (420, 300)
    assert mean_abs_diff(image.pixels[:150, :280], pacs_data.sparse_image[:150, :280]) < 4
    assert int(image.pixels[260:, 300:].min()) == 255  # absent tiles


def test_basic_credential_accepted_and_wrong_one_refused(tmp_path: Path) -> None:
    with OrthancServer.start(tmp_path / "basic", auth="basic") as pacs:
        ds = f.secondary_capture(f.idc_patch(0))
        pacs.upload(f.to_bytes(ds))
        good = DicomWebClient(
            pacs.dicomweb_url,
            guarded(pacs.dicomweb_url),
            credential=BasicCredential(pacs.username, pacs.password),
        )
        (image,) = good.read_study(str(ds.StudyInstanceUID))
        assert np.array_equal(image.pixels, f.idc_patch(0))
        for credential in (BasicCredential(pacs.username, "wrong"), None):
            bad = DicomWebClient(
                pacs.dicomweb_url, guarded(pacs.dicomweb_url), credential=credential
            )
            with pytest.raises(ImageSourceRefusedError) as caught:
                bad.read_study(str(ds.StudyInstanceUID))
            assert caught.value.status == 401
            assert "wrong" not in caught.value.reason


def test_wrong_bearer_token_refused(orthanc: OrthancServer, pacs_data: PacsData) -> None:
    pacs = DicomWebClient(
        orthanc.dicomweb_url, guarded(orthanc.dicomweb_url), credential=BearerToken("not-it")
    )
    with pytest.raises(ImageSourceRefusedError) as caught:
        pacs.metadata(pacs_data.sc_study)
    assert caught.value.status == 403  # Orthanc's answer to a refusing Lua request filter
    assert not caught.value.transient


def test_study_not_found_is_refused(orthanc: OrthancServer) -> None:
    with pytest.raises(ImageSourceRefusedError, match="not found") as caught:
        client(orthanc).metadata("1.2.3.4.5.6.7")
    assert caught.value.status == 404


def test_byte_limit_refuses_a_large_answer(orthanc: OrthancServer, pacs_data: PacsData) -> None:
    with pytest.raises(ImageTooLargeError, match="byte limit"):
        client(orthanc, max_bytes=20_000).read_slide(pacs_data.wsi_study, pacs_data.wsi_series)
