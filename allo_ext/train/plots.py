"""ROC curves and training curves as PNG files.

Uses matplotlib's object API with the Agg canvas directly instead of pyplot, so it never
changes the process-wide backend or leaks open figures.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import auc as area_under, roc_curve

from .history import History
from .inputs import default_class_names


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG; give a path ending in .png, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_roc(
    y_true: Any,
    probs: Any,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    *,
    rejection: bool = False,
) -> Path:
    """One-vs-rest ROC curve per class, AUC in the legend.

    ``probs`` is (B, K) probabilities or log-probabilities (ROC only depends on the ranking).
    ``rejection=True`` draws the jet-tagging form instead: background rejection 1/FPR (log
    scale) against signal efficiency (TPR).
    """
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"plot_roc: probs must be (B, K) with B={len(y)}, got {p.shape}")
    names = tuple(class_names) if class_names is not None else default_class_names(p.shape[1])
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot()
    drawn = 0
    for c, name in enumerate(names):
        pos = y == c
        if pos.all() or not pos.any():
            continue  # undefined ROC; compute_metrics already warns about it
        fpr, tpr, _ = roc_curve(pos, p[:, c])
        label = f"{name} (AUC {area_under(fpr, tpr):.3f})"
        if rejection:
            keep = fpr > 0
            ax.plot(tpr[keep], 1.0 / fpr[keep], label=label)
        else:
            ax.plot(fpr, tpr, label=label)
        drawn += 1
    if drawn == 0:
        raise ValueError("plot_roc: no class has both positive and negative samples; nothing to draw")
    if rejection:
        ax.set_yscale("log")
        ax.set_xlabel("signal efficiency (TPR)")
        ax.set_ylabel("background rejection (1/FPR)")
    else:
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
    ax.set_title("ROC, one vs rest")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_history(history: History, path: str | os.PathLike) -> Path:
    """Loss, accuracy and learning rate against epoch."""
    if not history.epochs:
        raise ValueError("plot_history: the history has no completed epoch")
    ep = history.column("epoch")
    fig = Figure(figsize=(13, 3.8))
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    for ax, key, title in ((ax_loss, "loss", "NLL loss"), (ax_acc, "acc", "accuracy")):
        ax.plot(ep, history.column(f"train_{key}"), marker=".", label="train")
        val = [np.nan if v is None else v for v in history.column(f"val_{key}")]
        if not np.isnan(val).all():
            ax.plot(ep, val, marker=".", label="validation")
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch, color="grey", linestyle=":", linewidth=1, label="best")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if history.batch_lr:
        # Per-batch values on a fractional-epoch axis show the within-epoch schedule.
        n = len(history.batch_lr)
        x = np.arange(1, n + 1) * (len(ep) / n)
        ax_lr.plot(x, history.batch_lr)
    ax_lr.set_title("learning rate")
    ax_lr.set_xlabel("epoch")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
