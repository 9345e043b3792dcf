"""Temperature scaling and the operating threshold, both fitted on validation patients only.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017,
arXiv:1706.04599) divides the logit by one scalar ``T > 0`` chosen to minimise the negative
log-likelihood of the validation labels; it changes confidence, never the ranking (the AUC).
``T`` is optimised as ``log T`` (so it stays positive) with L-BFGS.

The threshold is the highest calibrated probability at which the validation sensitivity is at
least the target (default 0.90): the most specific operating point that still meets the target.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def fit_temperature(logits: NDArray[np.floating], labels: NDArray[np.integer]) -> float:
    """The temperature minimising validation NLL of ``sigmoid(logit / T)``."""
    import torch

    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp(), y)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimiser.step(closure)  # type: ignore[no-untyped-call]
    temperature = float(log_t.exp().item())
    return float(np.clip(temperature, 0.05, 100.0))


def choose_threshold(
    probabilities: NDArray[np.floating], labels: NDArray[np.integer], target_sensitivity: float
) -> float:
    """Highest threshold with validation sensitivity ≥ ``target_sensitivity``."""
    p = np.asarray(probabilities, dtype=np.float64)
    positives = np.sort(p[np.asarray(labels) == 1])[::-1]
    if len(positives) == 0:
        raise ValueError("the validation set has no positive patches")
    # Predicting p >= t as positive: the k highest positives are caught when t <= positives[k-1].
    needed = int(np.ceil(target_sensitivity * len(positives) - 1e-9))
    return float(positives[max(needed, 1) - 1])
