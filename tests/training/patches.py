"""A small labelled patch set for the training tests, in the IDC layout.

There are not enough real labelled patches here to train a meaningful model (issue #14), so
the set mixes:

- the two real IDC patches (``tests/data/idc``, CC0; patient 8863, one per class);
- real tissue: 50x50 tiles of ``skimage.data.immunohistochemistry()`` (scikit-image's sample,
  public domain per its ``skimage/data/README.txt``), all labelled 0;
- synthetic H&E-like textures: pink stroma with a few small purple "nuclei" (class 0) or many
  large dark ones (class 1), with a per-patient stain shift.

They are spread over invented patient ids. Tests built on this set check the machinery
(splits, checkpoints, export, the bundle contract), **never accuracy**.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

IDC = Path(__file__).resolve().parent.parent / "data" / "idc"
SIZE = 50


def synthetic_patch(rng: np.random.Generator, label: int, shift: NDArray[np.float64]) -> NDArray:
    """An H&E-like 50x50 texture: pink background, purple discs (many and large if label 1)."""
    base = np.array([232.0, 168.0, 204.0]) + shift
    image = base + rng.normal(0, 8, (SIZE, SIZE, 3))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    count, radius = (22, (3.0, 5.0)) if label else (5, (1.5, 2.5))
    nucleus = np.array([92.0, 52.0, 140.0]) + shift
    for _ in range(count):
        cy, cx = rng.uniform(0, SIZE, 2)
        r = rng.uniform(*radius)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image[disc] = nucleus + rng.normal(0, 10, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def ihc_tiles() -> list[NDArray]:
    """Tissue tiles (50x50) of scikit-image's immunohistochemistry sample."""
    from skimage import data

    image = data.immunohistochemistry()
    tiles = []
    for y in range(0, image.shape[0] - SIZE + 1, SIZE):
        for x in range(0, image.shape[1] - SIZE + 1, SIZE):
            tiles.append(np.ascontiguousarray(image[y : y + SIZE, x : x + SIZE]))
    return tiles


def _save(path: Path, array: NDArray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def build_patch_set(
    root: Path,
    *,
    patients: int = 8,
    per_class: int = 6,
    ihc_per_patient: int = 1,
    seed: int = 0,
    duplicate: bool = True,
) -> Path:
    """Write the set under ``root`` (IDC layout); returns ``root``.

    Patient ``8863`` holds the two real IDC patches; patients ``p00``.. hold synthetic patches
    and IHC tiles. With ``duplicate``, one file is written twice under another name (as in the
    public archive) to exercise de-duplication.
    """
    rng = np.random.default_rng(seed)
    for path in IDC.glob("8863/*/*.png"):
        target = root / path.relative_to(IDC)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    ihc = ihc_tiles()
    for p in range(patients):
        patient = f"p{p:02d}"
        shift = rng.normal(0, 10, 3)
        for label in (0, 1):
            for i in range(per_class):
                name = f"{patient}_idx5_x{i * SIZE}_y{label}_class{label}.png"
                _save(root / patient / str(label) / name, synthetic_patch(rng, label, shift))
        for i in range(ihc_per_patient):
            tile = ihc[(p * ihc_per_patient + i) % len(ihc)]
            _save(root / patient / "0" / f"{patient}_idx5_x{i}_y999_class0.png", tile)
    if duplicate:
        first = sorted((root / "p00" / "1").glob("*.png"))[0]
        shutil.copyfile(first, first.with_name("p00_idx5_x9999_y9999_class1.png"))
    return root


def write_config(
    path: Path,
    data: Path,
    output: Path,
    *,
    epochs: int = 1,
    extra: str = "",
) -> Path:
    """A TOML config for a tiny CPU run (a 4-8-16-32 channel ResNet)."""
    path.write_text(
        f"""
[data]
root = "{data}"
patch_size = 50
source = "test set: 2 real IDC patches (CC0), skimage IHC tiles, synthetic textures"
licence = "CC0-1.0 (IDC patches); skimage sample; synthetic"

[split]
seed = 3
validation_fraction = 0.25
test_fraction = 0.25

[network]
name = "resnet"
params = {{ layers = [1, 1, 1, 1], block_inplanes = [4, 8, 16, 32] }}

[train]
epochs = {epochs}
batch_size = 16
learning_rate = 0.003
seed = 7
threads = 1

[evaluation]
bootstrap_resamples = 20

[output]
dir = "{output}"
name = "test-idc"
version = "0.0.1"
{extra}
""",
        encoding="utf-8",
    )
    return path
