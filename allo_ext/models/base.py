"""What every reference model shares: config handling, presets and the input check."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

# Input shapes of the datasets the presets target: (particles, features per particle).
DATASET_SHAPES: dict[str, tuple[int, int]] = {
    "tiny": (8, 3),  # JetFormer paper HPO winner: (pT_rel, eta_rel, phi_rel) of 8 particles
    "hls4ml150": (150, 16),  # public hls4ml LHC jet dataset, all particles and features
    "jetclass": (128, 17),  # JetClass (17 per-particle features), 128 particles kept
}


def check_positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive int, got {value!r}")


def check_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{type(config).__name__}.{name} must be one of {choices}, got {value!r}")


class JetModel(nn.Module):
    """Base of the reference models: maps (B, N, F) float jets to (B, n_classes) log-probabilities.

    Build from a config, from keyword overrides of the default config, or from a preset:
    ``Model(cfg)``, ``Model(n_blocks=3)``, ``Model.tiny()``, ``Model.hls4ml150(dim=32)``.
    """

    config_class: ClassVar[type]
    # Architecture presets of this class; the input shape comes from DATASET_SHAPES.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # True when the weights fix the number of particles (flattening MLP, Linformer projections).
    fixed_particles: ClassVar[bool] = False

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = self.config_class()
        elif not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        if overrides:
            fields = {f.name for f in dataclasses.fields(config)}
            unknown = sorted(set(overrides) - fields)
            if unknown:
                raise TypeError(
                    f"unknown {self.config_class.__name__} field(s) {unknown}; "
                    f"valid fields: {sorted(fields)}"
                )
            config = dataclasses.replace(config, **overrides)
        self.config = config

    @classmethod
    def _preset(cls, name: str, n_particles: int, n_features: int, overrides: dict[str, Any]):
        fields = {**cls.presets.get(name, {}), "n_particles": n_particles, "n_features": n_features}
        return cls(cls.config_class(), **{**fields, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any):
        """8 particles x 3 features (pT_rel, eta_rel, phi_rel): the JetFormer paper's HPO winner size."""
        return cls._preset("tiny", *DATASET_SHAPES["tiny"], overrides)

    @classmethod
    def hls4ml150(cls, n_particles: int = 150, n_features: int = 16, **overrides: Any):
        """The hls4ml LHC jet dataset shape (150 particles x 16 features by default)."""
        return cls._preset("hls4ml150", n_particles, n_features, overrides)

    @classmethod
    def jetclass(cls, n_particles: int = 128, n_features: int = 17, **overrides: Any):
        """JetClass-sized input: 17 features per particle, 128 particles by default."""
        return cls._preset("jetclass", n_particles, n_features, overrides)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the expected and given shape/dtype.

        Shapes are static under torch.export, so these checks add no ops to the exported graph.
        """
        cfg = self.config
        n = cfg.n_particles if self.fixed_particles else "N"
        expected = f"(B, {n}, {cfg.n_features})"
        if x.dim() != 3 or x.shape[-1] != cfg.n_features or (
            self.fixed_particles and x.shape[1] != cfg.n_particles
        ):
            hint = "" if not self.fixed_particles else (
                f"; {type(self).__name__} fixes the particle count in its weights, "
                "build it with n_particles matching the data"
            )
            raise ValueError(
                f"{type(self).__name__} expects input of shape {expected}, got {tuple(x.shape)}{hint}"
            )
        dtype = next(self.parameters()).dtype
        if x.dtype != dtype:
            raise ValueError(
                f"{type(self).__name__} has {dtype} weights but got a {x.dtype} input; "
                f"convert with x.to({dtype})"
            )
