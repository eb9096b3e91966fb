"""Per-feature standardisation fitted on the training split, streamed over chunks.

Hand-written rather than sklearn's StandardScaler.partial_fit: the state has to travel with a
model as a few JSON numbers (mean, std, count, feature names), zero-padded particles must be left
out of the statistics and stay zero after scaling, and the merge itself is Chan et al.'s
parallel update, a few lines on top of numpy's per-chunk mean and variance.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .hls4ml_format import DEFAULT_FEATURES


def padding_mask(x: np.ndarray) -> np.ndarray:
    """True for real particles: the format pads with rows that are zero in every feature."""
    return np.any(x != 0, axis=-1)


@dataclass
class Normaliser:
    """Running per-feature mean and (population) std over particles of (N, P, F) chunks."""

    features: tuple[str, ...] = DEFAULT_FEATURES
    count: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)  # type: ignore[assignment]
    skip_padding: bool = True

    def __post_init__(self):
        self.features = tuple(self.features)
        f = len(self.features)
        self.mean = np.zeros(f) if self.mean is None else np.asarray(self.mean, np.float64)
        self.m2 = np.zeros(f) if self.m2 is None else np.asarray(self.m2, np.float64)

    def _check(self, x: np.ndarray) -> None:
        if x.shape[-1] != len(self.features):
            raise ValueError(
                f"chunk has {x.shape[-1]} features in its last axis, the normaliser expects "
                f"{len(self.features)} ({', '.join(self.features)})")

    def update(self, x: np.ndarray) -> "Normaliser":
        """Fold one chunk (..., F) into the statistics (Chan et al. pairwise merge)."""
        x = np.asarray(x)
        self._check(x)
        rows = x[padding_mask(x)] if self.skip_padding else x.reshape(-1, x.shape[-1])
        n_b = rows.shape[0]
        if n_b == 0:
            return self
        rows = rows.astype(np.float64)
        mean_b = rows.mean(axis=0)
        m2_b = ((rows - mean_b) ** 2).sum(axis=0)
        n_a, n = self.count, self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (n_a * n_b / n)
        self.count = n
        return self

    @classmethod
    def fit(cls, chunks: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]],
            features: Sequence[str] = DEFAULT_FEATURES, skip_padding: bool = True
            ) -> "Normaliser":
        """Fit over an iterable of X chunks or (X, y) pairs (as `iter_chunks` yields)."""
        norm = cls(features=tuple(features), skip_padding=skip_padding)
        for chunk in chunks:
            norm.update(chunk[0] if isinstance(chunk, tuple) else chunk)
        if norm.count == 0:
            raise ValueError("cannot fit a Normaliser on no particles (all chunks empty or padding)")
        return norm

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count) if self.count else np.ones_like(self.mean)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std as float32; a feature with zero spread is only centred.
        With skip_padding, padded particles stay exactly zero."""
        x = np.asarray(x)
        self._check(x)
        std = self.std
        scale = np.where(std > 0, std, 1.0)
        out = ((x - self.mean) / scale).astype(np.float32)
        if self.skip_padding:
            out[~padding_mask(x)] = 0.0
        return out

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        std = self.std
        return (np.asarray(z) * np.where(std > 0, std, 1.0) + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "count": int(self.count),
                "mean": self.mean.tolist(), "std": self.std.tolist(),
                "m2": self.m2.tolist(), "skip_padding": bool(self.skip_padding)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normaliser":
        missing = {"features", "count", "mean", "m2"} - set(d)
        if missing:
            raise ValueError(f"Normaliser dict lacks keys {sorted(missing)}; got {sorted(d)}")
        return cls(features=tuple(d["features"]), count=int(d["count"]),
                   mean=np.asarray(d["mean"], np.float64), m2=np.asarray(d["m2"], np.float64),
                   skip_padding=bool(d.get("skip_padding", True)))
