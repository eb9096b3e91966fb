"""Classification metrics: accuracy, NLL, one-vs-rest AUC per class, confusion matrix."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, roc_auc_score

from .inputs import as_tensors, check_log_probs, default_class_names


@dataclass
class Metrics:
    """Results of :func:`evaluate` / :func:`compute_metrics`.

    ``confusion[i, j]`` counts samples of true class ``i`` predicted as ``j``. ``auc[k]`` is the
    ROC AUC of class ``k`` against all others (NaN if ``y_true`` lacks class ``k`` or holds only
    it). ``probs`` and ``y_true`` are kept for :func:`plot_roc`.
    """

    accuracy: float
    loss: float
    auc: np.ndarray
    confusion: np.ndarray
    class_names: tuple[str, ...]
    y_true: np.ndarray
    probs: np.ndarray

    @property
    def macro_auc(self) -> float:
        """Mean of the per-class AUCs that are defined."""
        ok = self.auc[~np.isnan(self.auc)]
        return float(ok.mean()) if ok.size else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the per-sample arrays)."""
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "auc": {c: float(a) for c, a in zip(self.class_names, self.auc)},
            "macro_auc": self.macro_auc,
            "confusion": self.confusion.tolist(),
            "class_names": list(self.class_names),
        }


def compute_metrics(
    y_true: Any, log_probs: Any, class_names: Sequence[str] | None = None
) -> Metrics:
    """Metrics from labels (B,) and the model's log-probabilities (B, K)."""
    lp = log_probs if isinstance(log_probs, torch.Tensor) else torch.as_tensor(np.asarray(log_probs))
    if not lp.is_floating_point():
        raise ValueError(f"compute_metrics: log_probs must be floating point, got {lp.dtype}")
    # A probability of exactly 0 is a valid log-probability of -inf; NaN and +inf are not.
    if bool(torch.isnan(lp).any() | torch.isposinf(lp).any()):
        raise ValueError("compute_metrics: log_probs contain NaN or +inf")
    _, y = as_tensors(torch.zeros(len(y_true), 1), y_true, what="compute_metrics")
    check_log_probs(lp, y, "compute_metrics")
    k = lp.shape[1]
    names = tuple(class_names) if class_names is not None else default_class_names(k)
    if len(names) != k:
        raise ValueError(f"compute_metrics: {len(names)} class names for {k} model outputs")
    y_np = y.numpy()
    lp_np = lp.double().numpy()
    pred = lp_np.argmax(axis=1)
    loss = float(-lp_np[np.arange(len(y_np)), y_np].mean())
    auc = np.full(k, np.nan)
    for c in range(k):
        positives = y_np == c
        if positives.all() or not positives.any():
            warnings.warn(
                f"AUC of class {names[c]!r} is undefined: the labels hold "
                f"{'only' if positives.all() else 'no'} samples of it; reported as NaN",
                stacklevel=2,
            )
            continue
        # Log-probabilities rank samples exactly like probabilities, and keep their resolution
        # where exp() would round tiny probabilities to the same float.
        score = np.where(np.isneginf(lp_np[:, c]), np.finfo(np.float64).min, lp_np[:, c])
        auc[c] = roc_auc_score(positives, score)
    return Metrics(
        accuracy=float((pred == y_np).mean()),
        loss=loss,
        auc=auc,
        confusion=confusion_matrix(y_np, pred, labels=np.arange(k)),
        class_names=names,
        y_true=y_np,
        probs=np.exp(lp_np).astype(np.float32),
    )


@torch.no_grad()
def predict_log_probs(
    model: torch.nn.Module, X: torch.Tensor, batch_size: int = 1024
) -> torch.Tensor:
    """Model outputs in eval mode, batched; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        outs = [
            model(X[i : i + batch_size].to(device)).float().cpu()
            for i in range(0, len(X), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(outs)


def evaluate(
    model: torch.nn.Module,
    X: Any,
    y: Any,
    *,
    batch_size: int = 1024,
    class_names: Sequence[str] | None = None,
) -> Metrics:
    """Accuracy, NLL, per-class one-vs-rest AUC and confusion matrix of ``model`` on (X, y)."""
    X, y = as_tensors(X, y, what="evaluate")
    return compute_metrics(y, predict_log_probs(model, X, batch_size), class_names)
