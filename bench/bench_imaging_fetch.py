"""Whole-slide fetch → decode → tissue tiles, against a bare loop that only decodes the same frames.

A 3584x3072 slide (the scikit-image IHC sample tiled 7x5 over 3584x2560, glass below) is
DICOMized by Debian's OrthancWSIDicomizer (256 px JPEG tiles, 168 frames at the base level)
into a real Orthanc started for the run (tests/support/orthanc.py). Then, in rounds:

- **oncocds**: ``DicomWebClient.read_slide`` (WADO-RS metadata + frames over HTTP, guards,
  decode, assembly) and ``tile_image`` (tissue detection, 50x50 patches): about 2,000 tissue
  tiles; figure = tissue tiles per second;
- **bare decode**: the same 168 encoded frames, fetched once beforehand, decoded by Pillow in a
  plain loop (no HTTP, no guards, no tiling): the same tiles-per-second unit, over the same
  tile count, so the ratio is the whole pipeline's cost over decoding alone.

Also printed: the parts (HTTP fetch of the frames, our frame decoding, tiling).
Run: ``python -m bench imaging_fetch`` (needs ``make system-deps``).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inference.imaging.tiles import tile_image
from integrations.imaging import DicomWebClient, EndpointAllowlist, FetchLimits, GuardedHttp
from integrations.imaging import dicom_pixels as px
from integrations.imaging.wsi import SlidePyramid

ROUNDS = 5
PATCH = 50


def _slide() -> np.ndarray:
    from skimage import data

    ihc = np.asarray(data.immunohistochemistry(), dtype=np.uint8)
    slide = np.full((3072, 3584, 3), 238, dtype=np.uint8)
    slide[:2560, :] = np.tile(ihc, (5, 7, 1))
    return slide


def _timed(fn: object) -> float:
    assert callable(fn)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    from tests.support.orthanc import OrthancServer

    with tempfile.TemporaryDirectory() as tmp, OrthancServer.start(Path(tmp) / "orthanc") as pacs:
        study, series = pacs.upload_slide(_slide(), spacing_mm=0.00025, jpeg_quality=90)
        limits = FetchLimits(max_pixels=20_000_000, frames_per_request=32)
        with GuardedHttp(EndpointAllowlist([pacs.dicomweb_url]), limits) as http:
            client = DicomWebClient(pacs.dicomweb_url, http)
            metadata = client.metadata(study, series)
            level = SlidePyramid.from_metadata(metadata).levels[0]
            by_instance: dict[str, list[int]] = {}
            for ref in level.frames:
                by_instance.setdefault(ref.instance_uid, []).append(ref.frame_number)
            encoded = [
                data
                for uid, numbers in by_instance.items()
                for _, data in client.frames(study, series, uid, numbers, budget=http.budget())
            ]
            tiles = len(tile_image(client.read_slide(study, series).pixels, patch_size=PATCH))

            def pipeline() -> None:
                image = client.read_slide(study, series, metadata=metadata)
                tile_image(image.pixels, patch_size=PATCH)

            def bare_decode() -> None:
                for data in encoded:
                    with Image.open(io.BytesIO(data)) as frame:
                        np.asarray(frame.convert("RGB"))

            def fetch_only() -> None:
                for uid, numbers in by_instance.items():
                    client.frames(study, series, uid, numbers, budget=http.budget())

            def our_decode() -> None:
                for data in encoded:
                    px.decode_frame(data, px.JPEG_BASELINE, level.pixel_format)

            pixels = client.read_slide(study, series, metadata=metadata).pixels

            def tiling() -> None:
                tile_image(pixels, patch_size=PATCH)

            parts = {"pipeline": pipeline, "bare": bare_decode, "fetch": fetch_only,
                     "decode": our_decode, "tile": tiling}  # fmt: skip
            times: dict[str, list[float]] = {name: [] for name in parts}
            for _ in range(ROUNDS):  # interleaved: the shared machine drifts
                for name, fn in parts.items():
                    times[name].append(_timed(fn))
        best = {name: statistics.median(values) for name, values in times.items()}
        print(f"slide {level.width}x{level.height}, {len(level.frames)} JPEG frames of 256 px, "
              f"{tiles} tissue tiles of {PATCH}x{PATCH} (of {(3584 // PATCH) * (3072 // PATCH)}); "
              f"median of {ROUNDS} rounds")  # fmt: skip
        print(f"  oncocds fetch+decode+tiles : {tiles / best['pipeline']:8.0f} tiles/s "
              f"({best['pipeline'] * 1000:.0f} ms per slide)")  # fmt: skip
        print(f"  bare Pillow decode only    : {tiles / best['bare']:8.0f} tiles/s "
              f"({best['bare'] * 1000:.0f} ms)")  # fmt: skip
        print(f"  ratio (oncocds / bare)     : {best['bare'] / best['pipeline']:.2f}")
        print(f"  parts: HTTP frames {best['fetch'] * 1000:.0f} ms, our decode "
              f"{best['decode'] * 1000:.0f} ms, tiling {best['tile'] * 1000:.0f} ms")  # fmt: skip
