"""The predictor: a verified bundle loaded once, on an explicit device, in eval mode.

Pre-process → predict → post-process (STYLE.md "The model half"):

1. :func:`~inference.imaging.transforms.to_tensor` and
   :func:`~inference.imaging.transforms.preprocess` (the same transforms training used);
2. the network, batched, under ``torch.inference_mode()``;
3. calibration: ``sigmoid(logit / temperature)`` with the bundle's temperature, the bundle's
   threshold, and the OOD guard's reasons (:mod:`inference.imaging.ood`).

The weights are read once, hashed, and compared with the bundle's manifest before
``torch.load(weights_only=True)`` sees them, so the bytes that are loaded are the bytes that
were verified. Load a predictor per worker process at start-up, never on a request path.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from inference.errors import ModelBundleError
from inference.imaging.bundle import WEIGHTS, BundleInfo, verify_bundle
from inference.imaging.network import build_network
from inference.imaging.ood import ood_reasons
from inference.imaging.transforms import apply, preprocess, to_tensor

if TYPE_CHECKING:
    import torch
    from torch import nn

Precision = Literal["float32", "bfloat16"]
PRECISIONS: Final = ("float32", "bfloat16")


@dataclass(frozen=True, slots=True)
class PatchPredictions:
    """Per patch: raw logit, calibrated probability, above the threshold, OOD reason or None."""

    logits: NDArray[np.float32]
    probabilities: NDArray[np.float32]
    positive: NDArray[np.bool_]
    indeterminate: tuple[str | None, ...]
    threshold: float

    def __len__(self) -> int:
        return len(self.logits)


def calibrated_probability(logits: NDArray[np.float32], temperature: float) -> NDArray[np.float32]:
    """``sigmoid(logit / temperature)`` (Guo et al., ICML 2017, arXiv:1706.04599)."""
    scaled = logits.astype(np.float64) / temperature
    return (1.0 / (1.0 + np.exp(-scaled))).astype(np.float32)


def load_state_dict(network: nn.Module, data: bytes, *, device: torch.device) -> None:
    """Load ``torch.save``'d state-dict bytes into ``network`` (tensors only, strict).

    The loaded tensors are assigned, not copied, so ``network`` may be built on the ``meta``
    device (no random initialisation: ``python -m bench bundle_load``); a parameter or buffer
    the weights do not provide would stay on ``meta`` and is refused.
    """
    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
        network.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        message = str(exc).splitlines()[0][:200]
        raise ModelBundleError(f"{WEIGHTS}: does not fit network_def ({message})") from exc
    tensors = [*network.named_parameters(), *network.named_buffers()]
    unset = [name for name, tensor in tensors if tensor.is_meta]
    if unset:
        raise ModelBundleError(f"{WEIGHTS}: gives no value for {unset[0]}")


class Predictor:
    """A bundle's network ready to classify ``(N, H, W, 3)`` uint8 patches."""

    def __init__(
        self,
        info: BundleInfo,
        network: nn.Module,
        *,
        device: torch.device,
        batch_size: int = 256,
        precision: Precision = "float32",
        channels_last: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        self.info = info
        self.network = network
        self.device = device
        self.batch_size = batch_size
        self.precision: Precision = precision
        self.channels_last = channels_last
        self._preprocess = preprocess()
        self.temperature = info.metadata.calibration.temperature
        self.threshold = info.metadata.calibration.threshold
        self.patch_size = info.metadata.preprocessing.patch_size

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 256,
        precision: Precision = "float32",
        channels_last: bool = False,
    ) -> Predictor:
        """Verify the bundle at ``path`` and load its network on ``device`` in eval mode.

        Args:
            path: the bundle directory.
            device: a torch device string (``cpu``, ``cuda:0``); never chosen implicitly.
            threads: torch intra-op threads for this process (None leaves torch's default).
            batch_size: patches per forward pass.
            precision: ``float32`` (the default: the exported network's own numbers) or
                ``bfloat16`` (autocast; oneDNN's AMX/AVX-512 BF16 kernels where the CPU has
                them): faster, logits within bfloat16's ~3 significant digits, so a
                probability within a few hundredths of float32's (``python -m bench imaging``).
            channels_last: NHWC memory format for weights and batches (oneDNN's preferred
                layout for convolutions; pays off with bfloat16).

        Raises:
            ModelBundleError: the bundle fails verification or its weights do not load.
        """
        import torch

        info = verify_bundle(path)
        data = (info.path / WEIGHTS).read_bytes()
        if hashlib.sha256(data).hexdigest() != info.weights_sha256:
            raise ModelBundleError(f"{WEIGHTS}: changed after verification")
        if threads is not None:
            torch.set_num_threads(threads)
        target = torch.device(device)
        with torch.device("meta"):  # built without random initialisation; weights assigned
            network = build_network(dict(info.inference["network_def"]))
        load_state_dict(network, data, device=target)
        network.to(target).eval()
        if channels_last:
            # Module.to accepts memory_format at run time; its typing stubs omit it.
            network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return cls(
            info,
            network,
            device=target,
            batch_size=batch_size,
            precision=precision,
            channels_last=channels_last,
        )

    def logits(
        self, patches: NDArray[np.uint8], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        """Raw logits of ``(N, H, W, 3)`` uint8 patches at the bundle's patch size."""
        import torch

        if patches.ndim != 4 or patches.shape[1:3] != (self.patch_size, self.patch_size):
            raise ValueError(
                f"expected patches shaped (N, {self.patch_size}, {self.patch_size}, 3)"
            )
        size = batch_size or self.batch_size
        out: list[Any] = []
        with torch.inference_mode():
            for start in range(0, len(patches), size):
                batch = apply(self._preprocess, to_tensor(patches[start : start + size]))
                out.append(self.forward(batch).reshape(-1).float().cpu())
        if not out:
            return np.zeros(0, dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The network on a preprocessed ``(N, 3, H, W)`` float batch, in this predictor's
        precision and memory format (call under ``torch.inference_mode()``)."""
        import torch

        batch = batch.to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if self.precision == "bfloat16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                result: torch.Tensor = self.network(batch)
            return result
        output: torch.Tensor = self.network(batch)
        return output

    def predict(self, patches: NDArray[np.uint8]) -> PatchPredictions:
        """Calibrated probabilities, threshold decisions and OOD reasons per patch."""
        logits = self.logits(patches)
        probabilities = calibrated_probability(logits, self.temperature)
        return PatchPredictions(
            logits=logits,
            probabilities=probabilities,
            positive=probabilities >= self.threshold,
            indeterminate=tuple(ood_reasons(patches, self.info.metadata.ood)),
            threshold=self.threshold,
        )
