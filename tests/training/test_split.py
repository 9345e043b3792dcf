"""The patient-level split: a random patch split leaks patients, ours never does; dedupe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.patches import build_patch_set
from training.config import DataConfig, SplitConfig
from training.data import assign_splits, discover, split_patients
from training.errors import DataError


@pytest.fixture(scope="module")
def patch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_patch_set(tmp_path_factory.mktemp("split") / "data", patients=10, per_class=4)


def test_random_patch_split_shares_patients_ours_never(patch_root: Path) -> None:
    from sklearn.model_selection import train_test_split

    records = discover(DataConfig(root=patch_root)).records
    patients = np.array([r.patient for r in records])
    # The published tools' split: patches at random. Patients land on both sides.
    train, test = train_test_split(patients, test_size=0.2, random_state=0)
    assert set(train) & set(test)
    for seed in range(20):
        split = assign_splits(
            discover(DataConfig(root=patch_root)),
            SplitConfig(seed=seed, validation_fraction=0.2, test_fraction=0.2),
        )
        sides: dict[str, set[str]] = {}
        for r in split:
            sides.setdefault(r.patient, set()).add(r.split)
        assert all(len(s) == 1 for s in sides.values()), f"seed {seed} leaks a patient"
        assert {r.split for r in split} == {"train", "validation", "test"}


def test_split_is_seeded_and_order_independent() -> None:
    patients = [f"p{i}" for i in range(12)]
    a = split_patients(patients, seed=5, validation_fraction=0.25, test_fraction=0.25)
    b = split_patients(patients[::-1] * 3, seed=5, validation_fraction=0.25, test_fraction=0.25)
    assert a == b
    assert sorted(a.values()).count("test") == 3
    other = split_patients(patients, seed=6, validation_fraction=0.25, test_fraction=0.25)
    assert other != a


def test_too_few_patients_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="2 patients cannot make a patient-level split"):
        split_patients(["a", "b"], seed=0, validation_fraction=0.3, test_fraction=0.3)


def test_duplicates_by_content_are_dropped(patch_root: Path) -> None:
    found = discover(DataConfig(root=patch_root))
    assert found.duplicates_removed == 1
    assert len({r.sha256 for r in found.records}) == len(found.records)
    paths = {r.path for r in found.records}
    assert "p00/1/p00_idx5_x9999_y9999_class1.png" not in paths  # the later copy goes


def test_given_split_lists(patch_root: Path, tmp_path: Path) -> None:
    found = discover(DataConfig(root=patch_root))
    patients = sorted({r.patient for r in found.records})
    lists = tmp_path / "split.csv"
    rows = ["patient,split"] + [
        f"{p},{'test' if i < 2 else 'validation' if i < 4 else 'train'}"
        for i, p in enumerate(patients)
    ]
    lists.write_text("\n".join(rows) + "\n")
    records = assign_splits(found, SplitConfig(lists=lists))
    assert {r.patient for r in records if r.split == "test"} == set(patients[:2])
    lists.write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(DataError, match="1 patients not listed"):
        assign_splits(found, SplitConfig(lists=lists))


def test_wrong_sized_patches_are_skipped(tmp_path: Path) -> None:
    from PIL import Image

    root = build_patch_set(tmp_path / "data", patients=3, per_class=2, duplicate=False)
    Image.new("RGB", (30, 50), (200, 100, 150)).save(root / "p00" / "0" / "edge_class0.png")
    found = discover(DataConfig(root=root))
    assert found.wrong_size == 1
    assert all(not r.path.endswith("edge_class0.png") for r in found.records)


def test_labels_csv_layout(tmp_path: Path) -> None:
    root = build_patch_set(tmp_path / "data", patients=3, per_class=2, duplicate=False)
    files = sorted(root.rglob("*.png"))
    labels = tmp_path / "labels.csv"
    rows = ["path,patient,label"] + [
        f"{f.relative_to(root).as_posix()},site-{f.parent.parent.name},{f.parent.name}"
        for f in files
    ]
    labels.write_text("\n".join(rows) + "\n")
    found = discover(DataConfig(root=root, labels_csv=labels))
    assert len(found.records) == len(files)
    assert {r.patient for r in found.records} == {"site-8863", "site-p00", "site-p01", "site-p02"}
    labels.write_text("path,patient,label\n../outside.png,x,1\n")
    with pytest.raises(DataError, match="line 2: path outside the data root"):
        discover(DataConfig(root=root, labels_csv=labels))
    labels.write_text("path,patient,label\na.png,x,2\n")
    with pytest.raises(DataError, match=r"line 2: label 0\|1"):
        discover(DataConfig(root=root, labels_csv=labels))
