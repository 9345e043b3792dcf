"""Evaluation plots as PNG (matplotlib, Agg backend; no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from training.metrics import ECE_BINS

PLOTS = (
    "roc.png",
    "pr.png",
    "reliability.png",
    "confidence_histogram.png",
    "confusion_matrix.png",
)


def write_plots(
    out: Path, labels: NDArray[np.int64], probabilities: NDArray[np.floating], threshold: float
) -> list[Path]:
    """ROC, PR, reliability diagram, confidence histogram and confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    out.mkdir(parents=True, exist_ok=True)
    y = np.asarray(labels)
    p = np.asarray(probabilities, dtype=np.float64)
    written = []

    def save(fig: Figure, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(out / name)

    fig, ax = plt.subplots(figsize=(4, 4))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    save(fig, "roc.png")

    fig, ax = plt.subplots(figsize=(4, 4))
    precision, recall, _ = precision_recall_curve(y, p)
    ax.plot(recall, precision)
    ax.set(xlabel="recall (sensitivity)", ylabel="precision", title="Precision-recall")
    save(fig, "pr.png")

    fig, ax = plt.subplots(figsize=(4, 4))
    index = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    centres, observed = [], []
    for b in range(ECE_BINS):
        if (index == b).any():
            centres.append(p[index == b].mean())
            observed.append(y[index == b].mean())
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.plot(centres, observed, marker="o")
    ax.set(xlabel="mean predicted probability", ylabel="observed fraction IDC")
    ax.set_title(f"Reliability ({ECE_BINS} bins)")
    save(fig, "reliability.png")

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.hist([p[y == 0], p[y == 1]], bins=20, range=(0, 1), label=["non-IDC", "IDC"])
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set(xlabel="calibrated probability", ylabel="patches", title="Confidence")
    ax.legend()
    save(fig, "confidence_histogram.png")

    fig, ax = plt.subplots(figsize=(3.5, 3.5))
    matrix = confusion_matrix(y, p >= threshold, labels=[0, 1])
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="true")
    ax.set_title("Confusion matrix")
    save(fig, "confusion_matrix.png")
    return written
