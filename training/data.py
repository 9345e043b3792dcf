"""Patches on disk → records with patient, label and hash → a patient-level split.

Two layouts are read:

- the IDC layout, ``ROOT/PATIENT/0|1/*.png`` (Kaggle "Breast Histopathology Images": the class
  is the folder name, the patient the folder above it);
- any folder of patches with a CSV of ``path,patient,label`` (paths relative to ROOT).

Files with the same sha256 are one patch: the public archive holds many files twice, and a
patch kept twice could land in both training and test. The first path in sorted order is kept.
Patches whose size is not the configured patch size (the IDC set's edge crops) are skipped and
counted.

**The split is by patient.** Patches of one patient are correlated (same slide, stain, scanner,
tumour), so a random patch-level split puts a patient on both sides and overstates accuracy.
:func:`split_patients` assigns whole patients, seeded; :func:`read_split_lists` takes a given
assignment instead (e.g. the canonical 49-patient held-out set).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from training.config import DataConfig, SplitConfig
from training.errors import DataError

SPLITS: Final = ("train", "validation", "test")
_SUFFIXES: Final = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class PatchRecord:
    path: str  # relative to the data root, POSIX
    patient: str
    label: int
    sha256: str
    split: str = ""


@dataclass(frozen=True, slots=True)
class Discovery:
    records: tuple[PatchRecord, ...]
    duplicates_removed: int
    wrong_size: int


@dataclass(frozen=True, slots=True)
class PatchArrays:
    """Decoded patches of one split, in record order."""

    records: tuple[PatchRecord, ...]
    images: NDArray[np.uint8]  # (N, H, W, 3)
    labels: NDArray[np.int64]
    patients: NDArray[np.str_]


def _idc_entries(root: Path) -> list[tuple[Path, str, int]]:
    entries = []
    for path in sorted(root.glob("*/*/*")):
        if path.suffix.lower() not in _SUFFIXES or path.parent.name not in ("0", "1"):
            continue
        entries.append((path, path.parent.parent.name, int(path.parent.name)))
    return entries


def _csv_entries(root: Path, labels_csv: Path) -> list[tuple[Path, str, int]]:
    entries = []
    try:
        with labels_csv.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"path", "patient", "label"} <= set(reader.fieldnames or ()):
                raise DataError(f"{labels_csv}: needs the columns path, patient, label")
            for line, row in enumerate(reader, start=2):
                if row["label"] not in ("0", "1") or not row["patient"] or not row["path"]:
                    raise DataError(f"{labels_csv} line {line}: label 0|1, patient and path")
                path = (root / row["path"]).resolve()
                if not path.is_relative_to(root.resolve()):
                    raise DataError(f"{labels_csv} line {line}: path outside the data root")
                entries.append((path, row["patient"], int(row["label"])))
    except OSError as exc:
        raise DataError(f"{labels_csv}: cannot read ({exc.strerror})") from exc
    return entries


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: not a readable image") from exc


def discover(config: DataConfig) -> Discovery:
    """Find the labelled patches, drop duplicates by content and wrong-sized patches."""
    root = config.root
    if not root.is_dir():
        raise DataError(f"{root}: data root is not a directory")
    if config.labels_csv is not None:
        entries = _csv_entries(root, config.labels_csv)
    else:
        entries = _idc_entries(root)
    if len(entries) > config.max_patches:
        raise DataError(f"{root}: more than data.max_patches={config.max_patches} patches")
    seen: set[str] = set()
    records: list[PatchRecord] = []
    duplicates = wrong_size = 0
    for path, patient, label in sorted(entries, key=lambda e: e[0].as_posix()):
        if not path.is_file():
            raise DataError(f"{path}: listed but missing")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        if _size(path) != (config.patch_size, config.patch_size):
            wrong_size += 1
            continue
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        records.append(PatchRecord(rel, patient, label, digest))
    if not records:
        raise DataError(f"{root}: no {config.patch_size}x{config.patch_size} labelled patches")
    return Discovery(tuple(records), duplicates, wrong_size)


def split_patients(
    patients: list[str], *, seed: int, validation_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Assign whole patients to train/validation/test, seeded (order-independent)."""
    unique = sorted(set(patients))
    rng = np.random.default_rng(seed)
    order = [unique[i] for i in rng.permutation(len(unique))]
    n_test = round(len(unique) * test_fraction)
    n_val = max(1, round(len(unique) * validation_fraction))
    if len(unique) - n_test - n_val < 1:
        raise DataError(
            f"{len(unique)} patients cannot make a patient-level split with "
            f"{n_val} validation and {n_test} test patients and at least one for training"
        )
    assignment = dict.fromkeys(order[:n_test], "test")
    assignment.update(dict.fromkeys(order[n_test : n_test + n_val], "validation"))
    assignment.update(dict.fromkeys(order[n_test + n_val :], "train"))
    return assignment


def read_split_lists(path: Path) -> dict[str, str]:
    """A CSV ``patient,split`` (split: train, validation or test)."""
    assignment: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"patient", "split"} <= set(reader.fieldnames or ()):
                raise DataError(f"{path}: needs the columns patient, split")
            for line, row in enumerate(reader, start=2):
                if row["split"] not in SPLITS:
                    raise DataError(f"{path} line {line}: split must be one of {SPLITS}")
                if assignment.setdefault(row["patient"], row["split"]) != row["split"]:
                    raise DataError(f"{path} line {line}: patient listed in two splits")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    return assignment


def assign_splits(discovery: Discovery, config: SplitConfig) -> tuple[PatchRecord, ...]:
    """Every record with its split; patients missing from given lists are refused."""
    patients = [r.patient for r in discovery.records]
    if config.lists is not None:
        assignment = read_split_lists(config.lists)
        missing = sorted(set(patients) - set(assignment))
        if missing:
            raise DataError(f"{config.lists}: {len(missing)} patients not listed")
    else:
        assignment = split_patients(
            patients,
            seed=config.seed,
            validation_fraction=config.validation_fraction,
            test_fraction=config.test_fraction,
        )
    records = tuple(replace(r, split=assignment[r.patient]) for r in discovery.records)
    for split in ("train", "validation"):
        labels = {r.label for r in records if r.split == split}
        if labels != {0, 1}:
            raise DataError(f"the {split} split needs patches of both classes, has {labels}")
    return records


def load_split(root: Path, records: tuple[PatchRecord, ...], split: str) -> PatchArrays:
    """Decode the patches of one split as RGB uint8."""
    from PIL import Image

    chosen = tuple(r for r in records if r.split == split)
    images = []
    for record in chosen:
        with Image.open(root / record.path) as image:
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    stacked = np.stack(images) if images else np.zeros((0, 1, 1, 3), dtype=np.uint8)
    return PatchArrays(
        chosen,
        stacked,
        np.array([r.label for r in chosen], dtype=np.int64),
        np.array([r.patient for r in chosen], dtype=np.str_),
    )


def summarise(records: tuple[PatchRecord, ...]) -> dict[str, dict[str, int]]:
    """Patients, patches and positives per split."""
    patients = {s: len({r.patient for r in records if r.split == s}) for s in SPLITS}
    patches = Counter(r.split for r in records)
    positives = Counter(r.split for r in records if r.label == 1)
    return {
        "patients": patients,
        "patches": {s: patches.get(s, 0) for s in SPLITS},
        "positives": {s: positives.get(s, 0) for s in SPLITS},
    }


def write_manifest(path: Path, records: tuple[PatchRecord, ...]) -> None:
    """Every file used: path, patient, label, split, sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "patient", "label", "split", "sha256"])
        for r in records:
            writer.writerow([r.path, r.patient, r.label, r.split, r.sha256])
