"""The imaging model bundle on disk: layout, metadata contract, checksums (no torch).

``training`` writes a bundle and the service reads it; this module is the contract between the
two (STYLE.md "The model half"). The layout follows the MONAI Bundle specification
(https://docs.monai.io/en/stable/mb_specification.html, "Directory Structure" and
"metadata.json File"), with a sha256 manifest added at the root::

    BUNDLE/
      configs/metadata.json    MONAI metadata + this project's calibration, OOD and data summary
      configs/inference.json   network_def (MONAI ``_target_`` form) and preprocessing
      models/model.pt          the network's state_dict (torch.save)
      docs/README.md           the model card
      docs/data_manifest.csv   every training file: sha256, patient, label, split
      checksums.sha256         ``sha256sum`` format over every other file (``sha256sum -c`` works)

:func:`verify_bundle` checks that every file is listed and matches its hash, that nothing
unlisted sits in the bundle, and that ``metadata.json`` meets :class:`BundleMetadata`. It reads
bytes and JSON only, so ``oncocds model verify`` runs without torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inference.errors import ModelBundleError

SCHEMA: Final = "oncocds-imaging-bundle/1"
METADATA: Final = "configs/metadata.json"
INFERENCE: Final = "configs/inference.json"
WEIGHTS: Final = "models/model.pt"
MODEL_CARD: Final = "docs/README.md"
DATA_MANIFEST: Final = "docs/data_manifest.csv"
CHECKSUMS: Final = "checksums.sha256"
REQUIRED: Final = (METADATA, INFERENCE, WEIGHTS, MODEL_CARD)
#: Largest metadata/inference JSON we parse, and largest bundle file we hash (bytes).
MAX_JSON_BYTES: Final = 4 * 1024 * 1024
MAX_FILES: Final = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorFormat(_Strict):
    """One entry of MONAI's ``network_data_format`` inputs/outputs."""

    type: str
    format: str
    num_channels: int = Field(ge=1)
    spatial_shape: list[int]
    dtype: str
    value_range: list[float]
    is_patch_data: bool = True
    channel_def: dict[str, str] = Field(default_factory=dict)


class NetworkDataFormat(_Strict):
    inputs: dict[str, TensorFormat]
    outputs: dict[str, TensorFormat]


class Calibration(_Strict):
    """Temperature scaling and the operating threshold, both fitted on validation patients."""

    temperature: float = Field(gt=0)
    threshold: float = Field(ge=0, le=1)
    target_sensitivity: float = Field(gt=0, le=1)
    validation_sensitivity: float | None = None
    validation_specificity: float | None = None


class OodStatistics(_Strict):
    """Out-of-distribution guard (see :mod:`inference.imaging.ood`)."""

    feature: Literal["rgb_mean_tissue_chromaticity"] = "rgb_mean_tissue_chromaticity"
    mean: list[float]
    inverse_covariance: list[list[float]]
    max_distance: float = Field(gt=0)
    min_tissue_fraction: float = Field(ge=0, le=1)
    min_laplacian_variance: float = Field(ge=0)


class Preprocessing(_Strict):
    patch_size: int = Field(ge=8, le=1024)
    pixel_spacing_mm: float | None = None
    input_range: list[float]
    output_range: list[float]


class TrainingDataSummary(_Strict):
    source: str
    licence: str
    patients: dict[str, int]
    patches: dict[str, int]
    positives: dict[str, int]
    duplicates_removed: int = Field(ge=0)
    split: str


class BundleMetadata(BaseModel):
    """``configs/metadata.json``: MONAI's required keys plus this project's contract.

    Extra keys are allowed (the MONAI spec lets bundles add their own); the ones below are
    required and typed.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_: Literal["oncocds-imaging-bundle/1"] = Field(alias="schema")
    name: str
    version: str
    monai_version: str
    pytorch_version: str
    numpy_version: str
    optional_packages_version: dict[str, str] = Field(default_factory=dict)
    task: str
    description: str
    authors: str
    copyright: str
    intended_use: str
    network_data_format: NetworkDataFormat
    class_names: list[str] = Field(min_length=2, max_length=2)
    preprocessing: Preprocessing
    calibration: Calibration
    ood: OodStatistics
    training_data: TrainingDataSummary
    eval_metrics: dict[str, float | None] = Field(default_factory=dict)
    seed: int


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """A verified bundle: where it is, its metadata, its inference config, its weights' hash."""

    path: Path
    metadata: BundleMetadata
    inference: dict[str, Any]
    weights_sha256: str
    files: dict[str, str]  # relative path -> sha256

    @property
    def bundle_sha256(self) -> str:
        """sha256 of the checksum manifest: one hash that names this exact bundle."""
        return sha256_file(self.path / CHECKSUMS)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(root: Path) -> dict[str, str]:
    """Hash every file under ``root`` (except the manifest) into ``checksums.sha256``."""
    files = {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).as_posix() != CHECKSUMS
    }
    lines = "".join(f"{digest}  {name}\n" for name, digest in files.items())
    (root / CHECKSUMS).write_text(lines, encoding="utf-8")
    return files


def _read_checksums(root: Path) -> dict[str, str]:
    path = root / CHECKSUMS
    if not path.is_file():
        raise ModelBundleError(f"{root}: no {CHECKSUMS} (not a bundle, or an unfinished export)")
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or name.startswith("/") or ".." in name:
            raise ModelBundleError(f"{CHECKSUMS} line {number}: expected '<sha256>  <path>'")
        listed[name] = digest
    return listed


def _read_json(root: Path, name: str) -> dict[str, Any]:
    path = root / name
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ModelBundleError(f"{name}: larger than {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelBundleError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelBundleError(f"{name}: expected a JSON object")
    return data


def _metadata_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        field = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{field}: {err.get('msg')}")
    return f"{METADATA}: " + "; ".join(parts)


def verify_bundle(path: Path | str) -> BundleInfo:
    """Check a bundle's files against its sha256 manifest and its metadata against the contract.

    Raises:
        ModelBundleError: a file missing, altered or unlisted; metadata or config invalid.
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelBundleError(f"{root}: not a directory")
    listed = _read_checksums(root)
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() != CHECKSUMS
    }
    if len(present) > MAX_FILES:
        raise ModelBundleError(f"{root}: more than {MAX_FILES} files")
    for name in REQUIRED:
        if name not in listed:
            raise ModelBundleError(f"{name}: required, not in {CHECKSUMS}")
    missing = sorted(set(listed) - present)
    if missing:
        raise ModelBundleError(f"{missing[0]}: listed in {CHECKSUMS} but missing")
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise ModelBundleError(f"{unlisted[0]}: present but not listed in {CHECKSUMS}")
    for name, digest in sorted(listed.items()):
        if sha256_file(root / name) != digest:
            raise ModelBundleError(f"{name}: sha256 does not match {CHECKSUMS} (altered)")
    try:
        metadata = BundleMetadata.model_validate(_read_json(root, METADATA))
    except ValidationError as exc:
        raise ModelBundleError(_metadata_error(exc)) from exc
    inference = _read_json(root, INFERENCE)
    network = inference.get("network_def")
    if not isinstance(network, dict) or not isinstance(network.get("_target_"), str):
        raise ModelBundleError(f"{INFERENCE}: network_def with a _target_ is required")
    return BundleInfo(root, metadata, inference, listed[WEIGHTS], listed)
