"""FHIR attachments: Binary from the real test FHIR server (@medplum/fhir-router), inline data of
DocumentReference / Media, content-type checks and the decompression-bomb and truncation guards.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import JPEGBaseline8Bit

from integrations.imaging import (
    AttachmentReader,
    BearerToken,
    CorruptImageError,
    ImageNotAllowedError,
    ImageReferenceError,
    ImageSourceRefusedError,
    ImageTooLargeError,
    UnsupportedImageError,
    image_attachments,
)
from tests.integrations.imaging import dicom_factory as f
from tests.integrations.imaging.conftest import guarded
from tests.support.fhir_server import FhirServer


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def reader(**limits: Any) -> AttachmentReader:
    return AttachmentReader(guarded("http://127.0.0.1:9/fhir", **limits))


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring ``width x height``, with one tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------ FHIR Binary


def test_binary_by_relative_url_native_bytes(fhir_server: FhirServer) -> None:
    patch = f.idc_patch(0)
    fhir_server.put(
        {"resourceType": "Binary", "id": "b1", "contentType": "image/png",
         "data": b64(encode(patch, "PNG"))}
    )  # fmt: skip
    doc = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "status": "current",
        "content": [{"attachment": {"contentType": "image/png", "url": "Binary/b1"}}],
    }
    fhir_server.put(doc)
    ((location, attachment),) = image_attachments(doc)
    http = guarded(fhir_server.base_url)
    image = AttachmentReader(http, fhir_base_url=fhir_server.base_url).read(
        attachment, location=location
    )
    assert np.array_equal(image.pixels, patch)
    assert image.record.source == "fhir-binary"
    assert image.record.reference == "DocumentReference/d1#content[0]"
    assert image.record.endpoint_host == "127.0.0.1"
    assert image.record.byte_count == len(encode(patch, "PNG"))
    (request,) = [r for r in fhir_server.requests() if r["method"] == "GET"]
    assert request["url"] == "/Binary/b1"


def test_binary_answered_as_fhir_json(fhir_server: FhirServer) -> None:
    patch = f.idc_patch(1)
    body = {"resourceType": "Binary", "id": "b2", "contentType": "image/png",
            "data": b64(encode(patch, "PNG"))}  # fmt: skip
    fhir_server.add_rule(match="Binary/b2", status=200, body=body)
    http = guarded(fhir_server.base_url)
    image = AttachmentReader(http, fhir_base_url=fhir_server.base_url).read_binary("Binary/b2")
    assert np.array_equal(image.pixels, patch)
    assert image.record.reference == "Binary/b2"


def test_binary_with_the_clients_token(fhir_server: FhirServer) -> None:
    fhir_server.put(
        {"resourceType": "Binary", "id": "b3", "contentType": "image/jpeg",
         "data": b64(encode(f.ihc_image()[:64, :64], "JPEG"))}
    )  # fmt: skip
    fhir_server.configure(requireToken="ehr-token")
    http = guarded(fhir_server.base_url)
    good = AttachmentReader(
        http, fhir_base_url=fhir_server.base_url, credential=BearerToken("ehr-token")
    )
    assert good.read_binary("Binary/b3").pixels.shape == (64, 64, 3)
    bad = AttachmentReader(http, fhir_base_url=fhir_server.base_url, credential=BearerToken("x"))
    with pytest.raises(ImageSourceRefusedError) as caught:
        bad.read_binary("Binary/b3")
    assert caught.value.status == 401


def test_binary_type_unlike_the_declared_one_is_refused(fhir_server: FhirServer) -> None:
    fhir_server.put(
        {"resourceType": "Binary", "id": "b4", "contentType": "image/png",
         "data": b64(encode(f.idc_patch(0), "PNG"))}
    )  # fmt: skip
    fhir_server.add_rule(
        match="Binary/b4", status=200,
        body={"resourceType": "Binary", "contentType": "image/png",
              "data": b64(encode(f.idc_patch(0), "PNG"))},
    )  # fmt: skip
    http = guarded(fhir_server.base_url)
    attachment = {"contentType": "image/jpeg", "url": "Binary/b4"}
    with pytest.raises(
        UnsupportedImageError, match=r"image/png, the attachment declared image/jpeg"
    ):
        AttachmentReader(http, fhir_base_url=fhir_server.base_url).read(attachment)


def test_absolute_binary_url_off_the_allowlist_is_refused(fhir_server: FhirServer) -> None:
    http = guarded(fhir_server.base_url)
    attachment = {"contentType": "image/png", "url": "http://10.0.0.9/fhir/Binary/1"}
    with pytest.raises(ImageNotAllowedError):
        AttachmentReader(http, fhir_base_url=fhir_server.base_url).read(attachment)


# ------------------------------------------------------------------ inline attachments


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_lossless_inline_attachments(fmt: str) -> None:
    patch = f.idc_patch(0)
    attachment = {"contentType": f"image/{fmt.lower()}", "data": b64(encode(patch, fmt))}
    image = reader().read(attachment, location="Media/m1#content")
    assert np.array_equal(image.pixels, patch)
    assert image.record.source == "inline-attachment"
    assert image.record.endpoint_host is None


def test_inline_jpeg_and_dicom_attachments() -> None:
    tile = f.ihc_image()[:128, :128]
    jpeg = reader().read({"contentType": "image/jpeg", "data": b64(encode(tile, "JPEG"))})
    assert float(np.abs(jpeg.pixels.astype(int) - tile).mean()) < 8
    ds = f.secondary_capture(tile, syntax=JPEGBaseline8Bit)
    dicom = reader().read({"contentType": "application/dicom", "data": b64(f.to_bytes(ds))})
    assert float(np.abs(dicom.pixels.astype(int) - tile).mean()) < 8
    assert dicom.record.instance_uids == (str(ds.SOPInstanceUID),)
    assert dicom.record.study_uid == str(ds.StudyInstanceUID)


def test_rgba_png_is_composited_on_white() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2, :, :] = (200, 0, 0, 255)
    png = encode(rgba, "PNG")
    image = reader().read({"contentType": "image/png", "data": b64(png)})
    assert tuple(image.pixels[0, 0]) == (200, 0, 0)
    assert tuple(image.pixels[3, 3]) == (255, 255, 255)


def test_image_attachments_of_document_reference_and_media() -> None:
    doc = {
        "resourceType": "DocumentReference",
        "id": "d9",
        "content": [
            {"attachment": {"contentType": "application/pdf", "url": "Binary/report"}},
            {"attachment": {"contentType": "image/tiff", "url": "Binary/slide"}},
            {"attachment": {"contentType": "application/dicom; transfer-syntax=*", "data": ""}},
        ],
    }
    media = {"resourceType": "Media", "id": "m9", "content": {"contentType": "image/png"}}
    assert [loc for loc, _ in image_attachments(doc)] == [
        "DocumentReference/d9#content[1]",
        "DocumentReference/d9#content[2]",
    ]
    assert [loc for loc, _ in image_attachments(media)] == ["Media/m9#content"]


@pytest.mark.parametrize(
    ("attachment", "error", "match"),
    [
        ({"contentType": "application/pdf", "data": b64(b"%PDF-1.4")}, UnsupportedImageError,
         "application/pdf"),
        ({"contentType": "image/gif", "data": b64(b"GIF89a")}, UnsupportedImageError, "image/gif"),
        ({"data": b64(b"\x89PNG\r\n\x1a\n")}, UnsupportedImageError, "none"),
        ({"contentType": "image/png", "data": b64(b"\xff\xd8\xff\xe0jpeg")},
         UnsupportedImageError, "not of that type"),
        ({"contentType": "application/dicom", "data": b64(b"\x89PNG\r\n\x1a\n" * 20)},
         UnsupportedImageError, "not a DICOM"),
        ({"contentType": "image/png", "data": "***"}, CorruptImageError, "base64"),
        ({"contentType": "image/png"}, ImageReferenceError, "neither data nor url"),
    ],
)  # fmt: skip
def test_bad_attachments(attachment: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        reader().read(attachment)


# ------------------------------------------------------------------ limits and corruption


def test_base64_over_the_byte_limit_is_refused_before_decoding() -> None:
    data = b64(encode(f.ihc_image(), "PNG"))
    with pytest.raises(ImageTooLargeError, match="byte limit"):
        reader(max_bytes=10_000).read({"contentType": "image/png", "data": data})


def test_png_bomb_declaring_ten_gigapixels_is_refused() -> None:
    bomb = png_declaring(100_000, 100_000)
    assert len(bomb) < 200
    with pytest.raises(ImageTooLargeError):
        reader().read({"contentType": "image/png", "data": b64(bomb)})


def test_png_over_our_pixel_limit_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="16000000 pixels"):
        reader(max_pixels=1_000_000).read(
            {"contentType": "image/png", "data": b64(png_declaring(4000, 4000))}
        )


def test_dicom_declaring_huge_rows_and_columns_is_refused_before_decoding() -> None:
    ds = f.secondary_capture(f.idc_patch(0))
    ds.Rows = ds.Columns = 60_000  # pixel data stays 50x50: never decoded
    with pytest.raises(ImageTooLargeError, match="3600000000 pixels"):
        reader().read({"contentType": "application/dicom", "data": b64(f.to_bytes(ds))})


@pytest.mark.parametrize("syntax", [None, JPEGBaseline8Bit])
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_dicom_is_corrupt(syntax: str | None, keep: float) -> None:
    ds = f.secondary_capture(f.ihc_image()[:128, :128], **({"syntax": syntax} if syntax else {}))
    data = f.to_bytes(ds)
    cut = data[: int(len(data) * keep)]
    with pytest.raises(CorruptImageError, match="truncated"):
        reader().read({"contentType": "application/dicom", "data": b64(cut)})


def test_truncated_png_is_corrupt() -> None:
    png = encode(f.ihc_image(), "PNG")
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        reader().read({"contentType": "image/png", "data": b64(png[: len(png) // 2])})
