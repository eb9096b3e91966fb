"""Training for the jet-tagging models: the JetFormer paper's recipe (AdamW + OneCycle, NLL),
metrics, plots, atomic per-epoch checkpoints and bit-exact resumption.

    from allo_ext.train import TrainConfig, fit, evaluate
    history = fit(model, (X_train, y_train), (X_val, y_val), TrainConfig(epochs=50), "runs/tiny")
    metrics = evaluate(model, X_test, y_test)
"""
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .history import EarlyStopping, History
from .inputs import JET_CLASSES
from .loop import fit
from .metrics import Metrics, compute_metrics, evaluate, predict_log_probs
from .plots import plot_history, plot_roc
from .seeding import seed_everything

__all__ = [
    "JET_CLASSES",
    "EarlyStopping",
    "History",
    "Metrics",
    "TrainConfig",
    "compute_metrics",
    "evaluate",
    "fit",
    "load_checkpoint",
    "plot_history",
    "plot_roc",
    "predict_log_probs",
    "seed_everything",
]
