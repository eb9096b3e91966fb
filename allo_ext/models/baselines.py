"""Non-attention baselines: a flattening particle MLP and Deep Sets."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import JetModel, check_choice, check_positive

POOLS = ("mean", "sum")


def _mlp(sizes: tuple[int, ...], final_act: bool) -> nn.Sequential:
    """Linear layers between consecutive ``sizes`` with ReLU between them (and after the last one
    if ``final_act``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if final_act or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _check_hidden(config: Any, name: str) -> None:
    sizes = getattr(config, name)
    if not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(f"{type(config).__name__}.{name} must be positive ints, got {sizes!r}")


@dataclass
class ParticleMLPConfig:
    n_particles: int = 8
    n_features: int = 3
    hidden: tuple[int, ...] = (64, 32, 32)
    n_classes: int = 5

    def __post_init__(self) -> None:
        check_positive(self, "n_particles", "n_features", "n_classes")
        self.hidden = tuple(self.hidden)
        _check_hidden(self, "hidden")


class ParticleMLP(JetModel):
    """Flatten (B, N, F) -> N*F -> 64 -> 32 -> 32 -> n_classes with ReLU, then log_softmax."""

    config_class: ClassVar[type] = ParticleMLPConfig
    fixed_particles: ClassVar[bool] = True

    def __init__(self, config: ParticleMLPConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        c = self.config
        self.mlp = _mlp((c.n_particles * c.n_features, *c.hidden, c.n_classes), final_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return F.log_softmax(self.mlp(x.flatten(1)), dim=-1)


@dataclass
class DeepSetsConfig:
    """phi: per-particle MLP n_features -> *phi; pool over particles; rho: *rho -> n_classes."""

    n_particles: int = 8
    n_features: int = 3
    phi: tuple[int, ...] = (32, 32)
    rho: tuple[int, ...] = (32,)
    pool: str = "mean"
    n_classes: int = 5

    def __post_init__(self) -> None:
        check_positive(self, "n_particles", "n_features", "n_classes")
        self.phi, self.rho = tuple(self.phi), tuple(self.rho)
        _check_hidden(self, "phi")
        _check_hidden(self, "rho")
        if not self.phi:
            raise ValueError("DeepSetsConfig.phi needs at least one layer")
        check_choice(self, "pool", POOLS)


class DeepSets(JetModel):
    """Permutation-invariant baseline: ``rho(pool_n(phi(x_n)))`` then log_softmax.

    ``pool="mean"`` or ``"sum"`` over the particle axis; the particle count is not fixed.
    """

    config_class: ClassVar[type] = DeepSetsConfig

    def __init__(self, config: DeepSetsConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        c = self.config
        self.phi = _mlp((c.n_features, *c.phi), final_act=True)
        self.rho = _mlp((c.phi[-1], *c.rho, c.n_classes), final_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        h = self.phi(x)
        pooled = h.mean(dim=1) if self.config.pool == "mean" else h.sum(dim=1)
        return F.log_softmax(self.rho(pooled), dim=-1)
