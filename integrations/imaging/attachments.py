"""Images attached to FHIR resources: inline ``Attachment.data`` and ``Binary`` by URL (FHIR R4).

``DocumentReference.content[].attachment`` and ``Media.content`` are ``Attachment`` elements
(R4 §2.24.0.1): ``contentType`` plus either ``data`` (base64) or ``url``. A ``url`` is read
as a FHIR ``Binary``: relative ``Binary/{id}`` against the configured FHIR base, or an absolute
URL that must be on the imaging allowlist. The read asks for the native type first and the
``Binary`` resource as JSON second (R4 Binary §"Serving Binary Resources using the RESTful
API"), and reads either answer.

Only PNG, JPEG, TIFF and DICOM (``application/dicom``) are accepted: the declared content type
must be one of them, the bytes must start with that type's signature, and the decoder is held to
that one format. Base64 data is size-checked before it is decoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

from integrations.imaging.errors import (
    CorruptImageError,
    ImageReferenceError,
    UnsupportedImageError,
)
from integrations.imaging.guards import Budget
from integrations.imaging.http import Credential, GuardedHttp, MediaType
from integrations.imaging.model import FetchedImage, FetchRecord, ImageKind, Source
from integrations.imaging.raster import (
    DICOM_TYPE,
    IMAGE_TYPES,
    check_signature,
    decode_part10,
    decode_raster,
    read_part10,
)

_FHIR_JSON: Final = frozenset({"application/fhir+json", "application/json"})
_BINARY_REF: Final = re.compile(r"^Binary/[A-Za-z0-9\-.]{1,64}$")


def image_attachments(resource: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(location, attachment)`` of every image attachment of a DocumentReference or Media.

    ``location`` names where it sits (``DocumentReference/7#content[0]``) for audit and errors.
    Attachments of other types are left out (not an error: a report PDF is not an image).
    """
    kind = resource.get("resourceType")
    rid = resource.get("id", "")
    found: list[tuple[str, Mapping[str, Any]]] = []
    if kind == "DocumentReference":
        for i, content in enumerate(resource.get("content") or []):
            attachment = content.get("attachment") if isinstance(content, Mapping) else None
            if isinstance(attachment, Mapping):
                found.append((f"DocumentReference/{rid}#content[{i}]", attachment))
    elif kind == "Media":
        attachment = resource.get("content")
        if isinstance(attachment, Mapping):
            found.append((f"Media/{rid}#content", attachment))
    return [
        (loc, att)
        for loc, att in found
        if MediaType.parse(str(att.get("contentType", ""))).essence in IMAGE_TYPES
    ]


def _content_type(value: Any) -> str:
    essence = MediaType.parse(str(value or "")).essence
    if essence not in IMAGE_TYPES:
        raise UnsupportedImageError(
            f"attachment content type {essence or 'none'!r} is not one of "
            + ", ".join(sorted(IMAGE_TYPES))
        )
    return essence


def _b64(text: Any, budget: Budget | None) -> bytes:
    """Decode base64; with a budget, its decoded size is charged before decoding."""
    if not isinstance(text, str):
        raise CorruptImageError("attachment data is not a base64 string")
    if budget is not None:
        budget.spend(len(text) * 3 // 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CorruptImageError("attachment data is not valid base64") from exc


class AttachmentReader:
    """Reads inline attachments and FHIR ``Binary`` resources into RGB images.

    Args:
        http: the guarded HTTP client (allowlist, limits).
        fhir_base_url: the FHIR server that relative ``Binary/{id}`` URLs refer to (on the
            allowlist), or ``None`` when only inline data and absolute URLs are expected.
        credential: bearer token (the client's ``fhirAuthorization``) sent to the FHIR server.
    """

    def __init__(
        self,
        http: GuardedHttp,
        *,
        fhir_base_url: str | None = None,
        credential: Credential | None = None,
    ) -> None:
        self._http = http
        self._base = fhir_base_url.rstrip("/") if fhir_base_url else None
        if fhir_base_url:
            http.allowlist.check(fhir_base_url)
        self._credential = credential

    def read(self, attachment: Mapping[str, Any], *, location: str | None = None) -> FetchedImage:
        """Decode one attachment (inline ``data`` preferred over ``url``)."""
        budget = self._http.budget()
        declared = attachment.get("contentType")
        if attachment.get("data") is not None:
            content_type = _content_type(declared)
            data = _b64(attachment["data"], budget)
            return self._decode(
                data,
                content_type,
                source="inline-attachment",
                host=None,
                reference=location,
                budget=budget,
            )
        url = attachment.get("url")
        if not isinstance(url, str) or not url:
            raise ImageReferenceError("attachment has neither data nor url")
        expected = _content_type(declared) if declared else None
        return self.read_binary(url, content_type=expected, location=location, budget=budget)

    def read_binary(
        self,
        url: str,
        *,
        content_type: str | None = None,
        location: str | None = None,
        budget: Budget | None = None,
    ) -> FetchedImage:
        """GET a ``Binary`` (native bytes or the resource as JSON) and decode it."""
        budget = budget or self._http.budget()
        if _BINARY_REF.match(url):
            if self._base is None:
                raise ImageReferenceError("relative Binary reference without a FHIR base URL")
            url = f"{self._base}/{url}"
        elif not url.startswith(("http://", "https://")):
            raise ImageReferenceError("attachment url is neither Binary/{id} nor an absolute URL")
        native = [content_type] if content_type else sorted(IMAGE_TYPES)
        body = self._http.get(
            url,
            accept=", ".join([*native, "application/fhir+json;q=0.5"]),
            allowed_types=IMAGE_TYPES | _FHIR_JSON,
            budget=budget,
            credential=self._credential,
        )
        tail = "/".join(url.split("?", 1)[0].rstrip("/").split("/")[-2:])
        reference = location or (tail if _BINARY_REF.match(tail) else None)
        if body.media_type.essence in _FHIR_JSON:
            data, received_type = self._from_binary_json(body.content)
        else:
            data, received_type = body.content, body.media_type.essence
        if content_type and received_type != content_type:
            raise UnsupportedImageError(
                f"Binary is {received_type}, the attachment declared {content_type}"
            )
        return self._decode(
            data,
            received_type,
            source="fhir-binary",
            host=body.host,
            reference=reference,
            budget=budget,
        )

    @staticmethod
    def _from_binary_json(content: bytes) -> tuple[bytes, str]:
        import orjson

        try:
            resource = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise CorruptImageError("Binary resource is not valid JSON") from exc
        if not isinstance(resource, dict) or resource.get("resourceType") != "Binary":
            raise CorruptImageError("answer is not a FHIR Binary resource")
        content_type = _content_type(resource.get("contentType"))
        data = resource.get("data")
        if data is None:
            raise CorruptImageError("Binary resource holds no data")
        # The JSON body was already counted; its base64 decodes to fewer bytes.
        return _b64(data, None), content_type

    def _decode(
        self,
        data: bytes,
        content_type: str,
        *,
        source: Source,
        host: str | None,
        reference: str | None,
        budget: Budget,
    ) -> FetchedImage:
        check_signature(data, content_type)
        max_pixels = self._http.limits.max_pixels
        study = series = None
        instances: tuple[str, ...] = ()
        spacing = None
        if content_type == DICOM_TYPE:
            from integrations.imaging.wsi import pixel_spacing_mm

            ds = read_part10(data)
            pixels = decode_part10(ds, max_pixels)
            study = str(ds.get("StudyInstanceUID", "")) or None
            series = str(ds.get("SeriesInstanceUID", "")) or None
            instances = (str(ds.get("SOPInstanceUID", "")),)
            spacing = pixel_spacing_mm(ds)
        else:
            pixels = decode_raster(data, content_type, max_pixels)
        record = FetchRecord(
            source=source,
            endpoint_host=host,
            study_uid=study,
            series_uid=series,
            instance_uids=instances,
            reference=reference,
            byte_count=len(data),
            requests=budget.requests,
            sha256=hashlib.sha256(data).hexdigest(),
        )
        kind: ImageKind = "dicom-frame" if content_type == DICOM_TYPE else "raster"
        return FetchedImage(pixels, spacing, kind, record)
