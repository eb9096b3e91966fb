"""Training configuration: the JetFormer paper's recipe as defaults."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

SCHEDULERS = ("onecycle", "plateau", "cosine", "constant")
MAX_LR = 1.0

# Fields that may change between a run and its resumption without changing the result.
# (A different thread count is allowed too, with a warning: see fit.)
RESUME_SAFE_FIELDS = frozenset({"progress", "save_plots", "eval_batch_size", "num_threads"})


@dataclass
class TrainConfig:
    """How to train a model that returns log-probabilities.

    Defaults follow the JetFormer paper: AdamW(lr 1e-3, weight decay 1e-2), OneCycleLR
    (max_lr 1e-3, pct_start 0.2, cosine annealing) stepped once per batch, batch 256, NLL loss.

    Early stopping (``patience``) is off by default. OneCycle does most of its useful work in the
    late, low-learning-rate part of the cycle, when the validation loss often moves slowly; a
    short patience stopped a reference OneCycle run during that phase and cost about one point of
    accuracy. So by default the full cycle runs and ``restore_best`` keeps the weights of the
    epoch with the lowest validation loss. Set ``patience`` for ``plateau``/``cosine`` runs, or
    for OneCycle only with a patience large relative to ``epochs``.

    Other schedulers: ``plateau`` is ReduceLROnPlateau on the validation loss (factor 0.8,
    patience 5, stepped per epoch, as used for 1-bit QAT); ``cosine`` is CosineAnnealingLR from
    ``lr`` to ``cosine_eta_min`` stepped per batch; ``constant`` keeps ``lr``. With ``onecycle``
    the optimizer's lr is driven by ``max_lr`` and ``lr`` is unused.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    scheduler: str = "onecycle"
    max_lr: float = 1e-3
    pct_start: float = 0.2
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    plateau_factor: float = 0.8
    plateau_patience: int = 5
    # Floor of the plateau schedule's learning rate (1e-4 for the paper's 1-bit QAT).
    plateau_min_lr: float = 0.0
    cosine_eta_min: float = 0.0
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    seed: int = 0
    # None: half the cores this process may run on (os.sched_getaffinity), at least 1; when
    # resuming, the count the run used. Not torch's default of every host core: the jet models
    # are small, and on a shared 2-core machine 2 threads trained JetFormer 2-7x slower than 1.
    num_threads: int | None = None
    drop_last: bool = False
    grad_clip: float | None = None
    eval_batch_size: int = 1024
    class_names: tuple[str, ...] | None = None
    progress: bool = True
    save_plots: bool = True

    def __post_init__(self) -> None:
        self._check_types()
        if self.class_names is not None:
            self.class_names = tuple(str(c) for c in self.class_names)
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.plateau_patience, int) or self.plateau_patience < 0:
            raise ValueError(
                f"TrainConfig.plateau_patience must be an integer >= 0, got {self.plateau_patience!r}"
            )
        if self.scheduler not in SCHEDULERS:
            raise ValueError(
                f"TrainConfig.scheduler={self.scheduler!r} is unknown; choose one of {SCHEDULERS}"
            )
        if not 0.0 < self.pct_start < 1.0:
            raise ValueError(f"TrainConfig.pct_start must be in (0, 1), got {self.pct_start}")
        if self.anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"TrainConfig.anneal_strategy must be 'cos' or 'linear', got {self.anneal_strategy!r}"
            )
        for name in ("lr", "max_lr", "div_factor", "final_div_factor", "plateau_factor"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"TrainConfig.{name} must be a finite number > 0, got {getattr(self, name)}")
        for name in ("lr", "max_lr"):
            if getattr(self, name) > MAX_LR:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name):g} is above {MAX_LR:g}: AdamW diverges "
                                 f"there (1e-3 is the default); give a learning rate <= {MAX_LR:g}")
        if not 0 < self.plateau_factor < 1:
            raise ValueError(f"TrainConfig.plateau_factor must be in (0, 1), got {self.plateau_factor}")
        if self.weight_decay < 0 or self.min_delta < 0 or self.cosine_eta_min < 0 or self.plateau_min_lr < 0:
            raise ValueError("TrainConfig.weight_decay, min_delta, cosine_eta_min and plateau_min_lr must be >= 0")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(
                f"TrainConfig.patience must be None (no early stopping) or an integer >= 1, "
                f"got {self.patience!r}"
            )
        if self.num_threads is not None and (
            not isinstance(self.num_threads, int) or self.num_threads < 1
        ):
            raise ValueError(f"TrainConfig.num_threads must be None or >= 1, got {self.num_threads!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be None or > 0, got {self.grad_clip}")

    def _check_types(self) -> None:
        """Values from the command line arrive as whatever JSON made of them ('lr=fast' is a string):
        name the field and the expected kind instead of failing later inside torch."""
        for f in dataclasses.fields(self):
            value, kinds = getattr(self, f.name), str(f.type).replace(" ", "").split("|")
            if value is None and "None" in kinds:
                continue
            base = kinds[0]
            if base == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
            elif base == "int" and isinstance(value, int) and not isinstance(value, bool):
                pass
            elif base == "bool" and isinstance(value, bool):
                pass
            elif base == "str" and isinstance(value, str):
                pass
            elif base.startswith("tuple") and isinstance(value, (tuple, list)):
                pass
            else:
                kind = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}.get(
                    base, "a list")
                raise ValueError(f"TrainConfig.{f.name} must be {kind}"
                                 + (" or null" if "None" in kinds else "") + f", got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["class_names"] is not None:
            d["class_names"] = list(d["class_names"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)

    def resume_mismatch(self, saved: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Fields whose value differs from a checkpoint's config and would change the result."""
        mine = self.to_dict()
        # A field added after the checkpoint was written counts as its default there.
        defaults = TrainConfig().to_dict()
        return {
            k: (saved.get(k, defaults[k]), mine[k])
            for k in mine
            if k not in RESUME_SAFE_FIELDS and saved.get(k, defaults[k]) != mine[k]
        }
