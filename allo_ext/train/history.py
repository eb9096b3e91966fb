"""Per-epoch metrics history and early-stopping bookkeeping; both go into every checkpoint."""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass
class History:
    """What :func:`fit` returns.

    ``epochs`` has one record per completed epoch (1-based ``epoch``, ``train_loss``,
    ``train_acc``, ``val_loss``, ``val_acc``, ``val_auc`` per class, ``val_auc_macro``, ``lr`` at
    the end of the epoch, wall-clock ``seconds``). ``batch_lr`` is the learning rate each
    optimizer step used, in order.
    """

    epochs: list[dict[str, Any]] = field(default_factory=list)
    batch_lr: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False
    finished: bool = False

    def column(self, key: str) -> list[Any]:
        if self.epochs and key not in self.epochs[0]:
            raise KeyError(f"history has no {key!r}; it has {sorted(self.epochs[0])}")
        return [e[key] for e in self.epochs]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**d)


class EarlyStopping:
    """Tracks the best validation loss and its weights; signals a stop after ``patience``
    epochs without an improvement larger than ``min_delta`` (``patience=None``: never stops)."""

    def __init__(self, patience: int | None, min_delta: float = 0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, val_loss: float, epoch: int, model: torch.nn.Module) -> bool:
        """Record an epoch; return True if training should stop."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
            self.best_epoch = epoch
            self.bad_epochs = 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "patience": self.patience,
            "min_delta": self.min_delta,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.patience = d["patience"]
        self.min_delta = d["min_delta"]
        self.best_loss = d["best_loss"]
        self.best_epoch = d["best_epoch"]
        self.bad_epochs = d["bad_epochs"]
        self.best_state = copy.copy(d["best_state"])
