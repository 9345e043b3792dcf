"""Imaging fetchers: DICOMweb WADO-RS and FHIR attachments → decoded RGB images (issue #15).

Public interface (the imaging service builds these from its settings)::

    allowlist = EndpointAllowlist(["https://pacs.example.org/dicom-web", "https://ehr/fhir/r4"])
    http = GuardedHttp(allowlist, FetchLimits(max_bytes=..., max_pixels=..., deadline_s=...))

    pacs = DicomWebClient("https://pacs.example.org/dicom-web", http,
                          credential=BearerToken(token) or BasicCredential(user, password))
    images = pacs.read_study(study_uid, target_spacing_mm=spacing_for_magnification(2.5))
    slide = pacs.read_slide(study_uid, series_uid, target_spacing_mm=0.004)

    reader = AttachmentReader(http, fhir_base_url="https://ehr/fhir/r4", credential=BearerToken(t))
    for location, attachment in image_attachments(document_reference):
        image = reader.read(attachment, location=location)

Each :class:`FetchedImage` carries ``pixels`` (H x W x 3 uint8), ``spacing_mm`` and a
:class:`FetchRecord` (UIDs, host, bytes: what the audit records). Errors:
:mod:`integrations.imaging.errors`. Heavy imports (pydicom, Pillow) happen on first use.
"""

from integrations.imaging.attachments import AttachmentReader, image_attachments
from integrations.imaging.dicom_pixels import SUPPORTED_TRANSFER_SYNTAXES
from integrations.imaging.dicomweb import DicomWebClient
from integrations.imaging.errors import (
    CorruptImageError,
    ImageFetchTimeoutError,
    ImageNotAllowedError,
    ImageReferenceError,
    ImageSourceRefusedError,
    ImageSourceUnavailableError,
    ImageTooLargeError,
    ImagingError,
    UnsupportedImageError,
)
from integrations.imaging.guards import EndpointAllowlist, FetchLimits
from integrations.imaging.http import BasicCredential, BearerToken, Credential, GuardedHttp
from integrations.imaging.model import FetchedImage, FetchRecord, LevelInfo
from integrations.imaging.raster import IMAGE_TYPES
from integrations.imaging.wsi import spacing_for_magnification

__all__ = [
    "IMAGE_TYPES",
    "SUPPORTED_TRANSFER_SYNTAXES",
    "AttachmentReader",
    "BasicCredential",
    "BearerToken",
    "CorruptImageError",
    "Credential",
    "DicomWebClient",
    "EndpointAllowlist",
    "FetchLimits",
    "FetchRecord",
    "FetchedImage",
    "GuardedHttp",
    "ImageFetchTimeoutError",
    "ImageNotAllowedError",
    "ImageReferenceError",
    "ImageSourceRefusedError",
    "ImageSourceUnavailableError",
    "ImageTooLargeError",
    "ImagingError",
    "LevelInfo",
    "UnsupportedImageError",
    "image_attachments",
    "spacing_for_magnification",
]
