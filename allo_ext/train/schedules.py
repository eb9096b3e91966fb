"""Optimizer and learning-rate schedule from a TrainConfig."""
from __future__ import annotations

from typing import Any

import torch
from torch.optim import lr_scheduler

from .config import TrainConfig


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> Any:
    """Returns the scheduler, or None for ``constant``.

    ``onecycle`` and ``cosine`` are stepped after every batch, ``plateau`` after every epoch
    with the validation loss (see :func:`steps_per_batch`).
    """
    total = config.epochs * steps_per_epoch
    if config.scheduler == "onecycle":
        warm = float(config.pct_start * total)
        if warm - 1 == 0:
            # torch's OneCycleLR divides by (warm-up steps - 1) and raises ZeroDivisionError mid-epoch.
            raise ValueError(
                f"OneCycle over {total} steps ({config.epochs} epoch(s) x {steps_per_epoch} batches) with "
                f"pct_start {config.pct_start} has a warm-up of exactly one step, which torch's OneCycleLR "
                f"cannot schedule; train more epochs, change batch_size or pct_start, or use scheduler=constant")
        return lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.max_lr,
            total_steps=total,
            pct_start=config.pct_start,
            anneal_strategy=config.anneal_strategy,
            div_factor=config.div_factor,
            final_div_factor=config.final_div_factor,
        )
    if config.scheduler == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=config.cosine_eta_min)
    if config.scheduler == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience,
            min_lr=config.plateau_min_lr,
        )
    return None


def steps_per_batch(config: TrainConfig) -> bool:
    return config.scheduler in ("onecycle", "cosine")
