"""Deterministic train/validation split and a loader that normalises with train statistics."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .hls4ml_format import DEFAULT_FEATURES, N_PARTICLES, JetFiles, PathLike
from .normalise import Normaliser


def split_indices(n: int, val_fraction: float = 0.1, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, val), each sorted; n * val_fraction rounded half up go to validation.
    The same (n, val_fraction, seed) always gives the same split."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = math.floor(n * val_fraction + 0.5)  # half rounds up, unlike round()
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@dataclass
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    normaliser: Normaliser | None


def load_split(source: PathLike | Sequence[PathLike], *,
               features: Sequence[str] = DEFAULT_FEATURES,
               n_particles: int = N_PARTICLES,
               val_fraction: float = 0.1,
               seed: int = 0,
               normalise: bool = True,
               chunk_size: int = 4096) -> Split:
    """Read the files, split train/val by seed, fit the normaliser on the train rows only
    (streamed over chunks) and apply it to both parts."""
    files = JetFiles.open(source)
    train_idx, val_idx = split_indices(len(files), val_fraction, seed)
    kw = dict(features=tuple(features), n_particles=n_particles, chunk_size=chunk_size)
    norm = None
    if normalise:
        norm = Normaliser.fit(files.iter_chunks(indices=train_idx, **kw), features=features)
    x_tr, y_tr = files.load(indices=train_idx, **kw)
    x_va, y_va = files.load(indices=val_idx, **kw)
    if norm is not None:
        x_tr, x_va = norm.transform(x_tr), norm.transform(x_va)
    return Split(x_tr, y_tr, x_va, y_va, norm)

