"""What a trained jet tagger needs besides its weights: the model bundle.

A bundle names the model class and its config, the input features and particle count, and the
normaliser fitted on the training split. It travels inside the training checkpoints as their
``model_config`` (see :func:`allo_ext.train.fit`), so one ``checkpoint.pt`` or ``best_model.pt``
is enough to rebuild the model and feed it raw hls4ml-format jets::

    model, bundle, path = load_bundle("runs/tiny")         # a run directory or a .pt file
    X, y = bundle.load_data("jets_test.h5", n=1000)       # selected, cut and normalised
    log_probs = model(torch.from_numpy(X))

Format (version 1), a JSON-serialisable dict::

    {"bundle_version": 1, "model": "jetformer", "config": {...model config fields...},
     "features": ["pT_rel", "eta_rel", "phi_rel"], "n_particles": 8,
     "normaliser": {...Normaliser.to_dict()...} or null, "class_names": ["g", "q", "W", "Z", "t"]}
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import CLASS_NAMES, DEFAULT_FEATURES, FEATURE_NAMES, Normaliser
from .data.hls4ml_format import JetFiles

BUNDLE_VERSION = 1
PRESETS = ("tiny", "hls4ml150", "jetclass", "none")


class BundleError(ValueError):
    """A checkpoint lacks what is needed to rebuild its model, or a request does not fit it."""


def model_names() -> list[str]:
    from .models import MODELS

    return sorted(MODELS)


def model_class(name: str):
    from .models import MODELS

    if name not in MODELS:
        raise BundleError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def name_of(model) -> str:
    """The MODELS key of a model instance (exact class, so BitJetFormer is not 'jetformer')."""
    from .models import MODELS

    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise BundleError(f"{type(model).__name__} is not one of the registered models "
                      f"({', '.join(sorted(MODELS))}); register it in allo_ext.models.MODELS")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def make_model(name: str, preset: str = "tiny", *, n_particles: int | None = None,
               n_features: int = len(DEFAULT_FEATURES), overrides: dict[str, Any] | None = None):
    """Build a registered model from a preset ("tiny", "hls4ml150", "jetclass" or "none" for the
    config class defaults), with the input shape and any config field overridden."""
    cls = model_class(name)
    overrides = dict(overrides or {})
    overrides["n_features"] = n_features
    if n_particles is not None:
        overrides["n_particles"] = n_particles
    if preset == "tiny":
        return cls.tiny(**overrides)
    if preset == "hls4ml150":
        return cls.hls4ml150(**overrides)
    if preset == "jetclass":
        return cls.jetclass(**overrides)
    if preset == "none":
        return cls(**overrides)
    raise BundleError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")


@dataclass
class ModelBundle:
    model: str
    config: dict[str, Any]
    features: tuple[str, ...] = DEFAULT_FEATURES
    n_particles: int = 8
    normaliser: Normaliser | None = None
    class_names: tuple[str, ...] = CLASS_NAMES

    def __post_init__(self) -> None:
        self.features = tuple(self.features)
        self.class_names = tuple(self.class_names)
        unknown = [f for f in self.features if f not in FEATURE_NAMES]
        if unknown:
            raise BundleError(f"unknown feature(s) {unknown}; valid: {', '.join(FEATURE_NAMES)}")
        if self.normaliser is not None and tuple(self.normaliser.features) != self.features:
            raise BundleError(f"the normaliser was fitted on features {list(self.normaliser.features)} "
                              f"but the model takes {list(self.features)}")

    @classmethod
    def for_model(cls, model, features: Sequence[str], n_particles: int,
                  normaliser: Normaliser | None, class_names: Sequence[str] = CLASS_NAMES
                  ) -> "ModelBundle":
        cfg = {k: _jsonable(v) for k, v in dataclasses.asdict(model.config).items()}
        if cfg.get("n_features") not in (None, len(features)):
            raise BundleError(f"the model takes {cfg['n_features']} features per particle, "
                              f"but {len(features)} were given ({', '.join(features)})")
        return cls(name_of(model), cfg, tuple(features), int(n_particles), normaliser, tuple(class_names))

    def to_dict(self) -> dict[str, Any]:
        return {"bundle_version": BUNDLE_VERSION, "model": self.model, "config": self.config,
                "features": list(self.features), "n_particles": self.n_particles,
                "normaliser": None if self.normaliser is None else self.normaliser.to_dict(),
                "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "bundle") -> "ModelBundle":
        if not isinstance(d, dict) or "bundle_version" not in d:
            raise BundleError(
                f"{where} has no model bundle (keys: {sorted(d) if isinstance(d, dict) else type(d).__name__}); "
                f"it was not written by `allo-ext train` / allo_ext.workflow.train_on_file. Train with those, or "
                f"pass model_config=ModelBundle.for_model(...).to_dict() to allo_ext.train.fit")
        if d["bundle_version"] != BUNDLE_VERSION:
            raise BundleError(f"{where} has bundle version {d['bundle_version']!r}; this allo_ext reads "
                              f"{BUNDLE_VERSION}")
        missing = {"model", "config", "features", "n_particles"} - set(d)
        if missing:
            raise BundleError(f"{where}: the model bundle lacks {sorted(missing)}")
        norm = d.get("normaliser")
        return cls(d["model"], dict(d["config"]), tuple(d["features"]), int(d["n_particles"]),
                   None if norm is None else Normaliser.from_dict(norm),
                   tuple(d.get("class_names", CLASS_NAMES)))

    def build_model(self):
        """A fresh (untrained) model of this bundle's class and config."""
        cls = model_class(self.model)
        try:
            return cls(**self.config)
        except (TypeError, ValueError) as e:
            raise BundleError(f"cannot rebuild {self.model} from config {self.config}: {e}") from e

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Raw features (B, n_particles, F) -> the model's input (float32)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.n_particles, len(self.features)):
            raise BundleError(f"expected raw jets of shape (B, {self.n_particles}, {len(self.features)}) "
                              f"with features {', '.join(self.features)}, got {x.shape}")
        return x if self.normaliser is None else self.normaliser.transform(x)

    def load_data(self, source, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` jets (all without ``n``) of hls4ml-format file(s): this bundle's features
        and particle count, normalised; returns (X, y)."""
        files = JetFiles.open(source)
        indices = None
        if n is not None:
            if n < 1:
                raise BundleError(f"n must be >= 1, got {n}")
            indices = np.arange(min(n, len(files)))
        x, y = files.load(features=self.features, n_particles=self.n_particles, indices=indices)
        return self.normalise(x), y

    def describe(self) -> str:
        cfg = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"{self.model}({cfg}) on {self.n_particles} particles x ({', '.join(self.features)})"


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A .pt file as given; a run directory gives its best_model.pt, else its checkpoint.pt."""
    from .train.checkpoint import BEST_MODEL_NAME, CHECKPOINT_NAME

    p = Path(path)
    if p.is_dir():
        for name in (BEST_MODEL_NAME, CHECKPOINT_NAME):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"{p} holds neither {BEST_MODEL_NAME} nor {CHECKPOINT_NAME}; "
                                f"train into it with `allo-ext train --out {p}`")
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {p}; give a .pt file or a training output directory")
    return p


def load_bundle(path: str | os.PathLike):
    """(model in eval mode with the trained weights, ModelBundle, checkpoint path)."""
    from .train import load_checkpoint

    ck_path = resolve_checkpoint(path)
    ck = load_checkpoint(ck_path)
    bundle = ModelBundle.from_dict(ck.get("model_config") or {}, where=str(ck_path))
    model = bundle.build_model()
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise BundleError(f"{ck_path}: the weights do not fit {bundle.describe()}: {e}") from e
    return model.eval(), bundle, ck_path


def write_bundle_json(bundle: ModelBundle, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle.to_dict(), indent=2) + "\n")
    return path
