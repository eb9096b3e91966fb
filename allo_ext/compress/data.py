"""Jets for the compression tools: (train, val, test) arrays with a particle ordering applied
before the normaliser is fitted on the training rows."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data import JetFiles, Normaliser, load_split
from .ordering import ORDERINGS, order_particles

# The JetFormer paper's three features; ordering.py needs them by these names.
FEATURES = ("pT_rel", "eta_rel", "phi_rel")


@dataclass
class JetData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    n_particles: int
    features: tuple[str, ...]
    ordering: str
    normaliser: Normaliser

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_train, self.y_train

    @property
    def val(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_val, self.y_val

    def eval_split(self) -> tuple[np.ndarray, np.ndarray]:
        """Held-out test jets when given, else the validation split."""
        if self.x_test is not None:
            return self.x_test, self.y_test
        return self.val


def check_file(path: str | os.PathLike | None, what: str) -> None:
    """Fail before any long work when a data file is missing or unreadable."""
    if path is None:
        return
    JetFiles.open(path)  # raises FileNotFoundError/JetFormatError naming the file


def load_jets(train_file: str | os.PathLike, test_file: str | os.PathLike | None = None, *,
              n_particles: int = 8, features: Sequence[str] = FEATURES, ordering: str = "pt",
              max_train: int | None = None, val_fraction: float = 0.1, seed: int = 0) -> JetData:
    """Split ``train_file`` into train/val (``val_fraction``), keep at most ``max_train`` training
    rows, reorder the particles of every jet by ``ordering`` (see ordering.ORDERINGS), then fit
    the normaliser on the training rows and apply it to all splits."""
    if ordering not in ORDERINGS:
        raise ValueError(f"unknown particle ordering {ordering!r}; choose one of {', '.join(ORDERINGS)}")
    if n_particles < 1:
        raise ValueError(f"n_particles must be >= 1, got {n_particles}")
    features = tuple(features)
    split = load_split(train_file, features=features, n_particles=n_particles,
                       val_fraction=val_fraction, seed=seed, normalise=False)
    xtr, ytr = split.x_train, split.y_train
    if max_train is not None:
        if max_train < 1:
            raise ValueError(f"max_train must be >= 1, got {max_train}")
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    if len(split.y_val) == 0:
        raise ValueError(f"{train_file}: too few jets for a validation split of {val_fraction:.0%}")
    xte = yte = None
    if test_file is not None:
        xte, yte = JetFiles.open(test_file).load(features=features, n_particles=n_particles)
    parts = [order_particles(x, features, ordering, seed=seed + i) if x is not None else None
             for i, x in enumerate((xtr, split.x_val, xte))]
    norm = Normaliser.fit([parts[0]], features=features)
    xtr, xva, xte = (norm.transform(x) if x is not None else None for x in parts)
    return JetData(xtr, ytr, xva, split.y_val, xte, yte, n_particles, features, ordering, norm)


def load_for_bundle(bundle, train_file: str | os.PathLike, test_file: str | os.PathLike | None = None, *,
                    max_train: int | None = None, val_fraction: float = 0.1, seed: int = 0) -> JetData:
    """The split ``allo-ext train`` made of ``train_file`` (same fraction and seed), normalised with
    the trained model's own statistics (``bundle.normaliser``), for fine-tuning that model."""
    from ..data import split_indices

    files = JetFiles.open(train_file)
    tr, va = split_indices(len(files), val_fraction, seed)
    if max_train is not None:
        tr = tr[:max_train]
    kw = dict(features=bundle.features, n_particles=bundle.n_particles)
    xtr, ytr = files.load(indices=tr, **kw)
    xva, yva = files.load(indices=va, **kw)
    if len(yva) == 0:
        raise ValueError(f"{train_file}: too few jets for a validation split of {val_fraction:.0%}")
    xte = yte = None
    if test_file is not None:
        xte, yte = JetFiles.open(test_file).load(**kw)
        xte = bundle.normalise(xte)
    return JetData(bundle.normalise(xtr), ytr, bundle.normalise(xva), yva, xte, yte, bundle.n_particles,
                   tuple(bundle.features), "pt", bundle.normaliser)
