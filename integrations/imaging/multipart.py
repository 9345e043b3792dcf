"""``multipart/related`` bodies (RFC 2387, RFC 2046 §5.1) as DICOMweb WADO-RS returns frames.

The body was already read under the byte limit; parsing copies each part once. A body whose
closing delimiter is missing (a cut connection, a truncated proxy answer) is corrupt.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.imaging.errors import CorruptImageError
from integrations.imaging.http import MediaType


@dataclass(frozen=True, slots=True)
class Part:
    media_type: MediaType
    content: bytes


def _headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return headers


def parse_multipart(body: bytes, media_type: MediaType, *, max_parts: int) -> list[Part]:
    """The parts of a ``multipart/related`` body, in order.

    Raises:
        CorruptImageError: no boundary, missing delimiters, a truncated body, too many parts.
    """
    boundary = media_type.params.get("boundary")
    if not boundary or len(boundary) > 200:
        raise CorruptImageError("multipart answer without a usable boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    default_type = media_type.params.get("type", "application/octet-stream")
    pos = body.find(delimiter)
    if pos < 0:
        raise CorruptImageError("multipart answer without a delimiter")
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body.startswith(b"--", pos):
            return parts
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            raise CorruptImageError("multipart answer truncated")
        start = line_end + 2
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise CorruptImageError("multipart answer truncated (no closing delimiter)")
        chunk = body[start:end]
        if chunk.startswith(b"\r\n"):
            raw_headers, content = b"", chunk[2:]
        else:
            raw_headers, sep, content = chunk.partition(b"\r\n\r\n")
            if not sep:
                raise CorruptImageError("multipart part without a header/body separator")
        headers = _headers(raw_headers)
        parts.append(Part(MediaType.parse(headers.get("content-type", default_type)), content))
        if len(parts) > max_parts:
            raise CorruptImageError(f"multipart answer holds more than {max_parts} parts")
        pos = end + 2
