"""Checking and converting user arrays, and checking that a model returns log-probabilities."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

# Label order of the hls4ml LHC jet dataset (one-hot columns g, q, W, Z, t).
JET_CLASSES = ("g", "q", "W", "Z", "t")


def as_tensors(X: Any, y: Any, what: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` (B, ...) as float32 and ``y`` (B,) as int64 class indices, both on CPU."""
    X = X.detach().cpu() if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    y = y.detach().cpu() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    if X.ndim < 2:
        raise ValueError(f"{what}: X must have shape (B, ...) e.g. (B, N, F), got {tuple(X.shape)}")
    if y.ndim != 1:
        raise ValueError(
            f"{what}: y must be (B,) integer class labels, got shape {tuple(y.shape)}; "
            f"for one-hot labels pass y.argmax(1)"
        )
    if len(X) != len(y):
        raise ValueError(f"{what}: X has {len(X)} rows but y has {len(y)}")
    if len(y) == 0:
        raise ValueError(f"{what}: no samples")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        if not torch.equal(y, y.round()):
            raise ValueError(f"{what}: y must hold integer class labels, got dtype {y.dtype}")
    y = y.to(torch.int64)
    if int(y.min()) < 0:
        raise ValueError(f"{what}: y has a negative label {int(y.min())}")
    if not X.is_floating_point():
        raise ValueError(f"{what}: X must be floating point, got dtype {X.dtype}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{what}: X contains NaN or inf; clean or normalise it first")
    return X.to(torch.float32).contiguous(), y.contiguous()


def fingerprint(X: torch.Tensor, y: torch.Tensor) -> str:
    """Content hash, so a resumed run refuses to continue on different data."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(tuple(X.shape)).encode())
    # Hash through the buffer protocol: .tobytes() would copy data sets of several GB.
    h.update(X.numpy())
    h.update(y.numpy())
    return h.hexdigest()


def check_log_probs(out: Any, y: torch.Tensor, where: str) -> None:
    """NLL on logits trains badly without any error, so check the first batch's output."""
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != len(y):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{where}: the model must return log-probabilities of shape (B, classes) = "
            f"({len(y)}, K), got {shape}"
        )
    k = out.shape[1]
    if int(y.max()) >= k:
        raise ValueError(
            f"{where}: label {int(y.max())} is out of range for a model with {k} outputs"
        )
    lse = torch.logsumexp(out.detach().float(), dim=1)
    worst = float((lse.abs()).max())
    if not worst < 1e-3:
        raise ValueError(
            f"{where}: the model output is not log-probabilities (logsumexp over classes should "
            f"be 0, worst row has {worst:.3g}); end the model with torch.log_softmax(x, dim=-1)"
        )


def default_class_names(k: int) -> tuple[str, ...]:
    return JET_CLASSES if k == len(JET_CLASSES) else tuple(f"class {i}" for i in range(k))
