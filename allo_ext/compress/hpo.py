"""Multi-objective hyper-parameter search for JetFormer on Optuna.

Objectives: maximise validation accuracy and minimise FLOPs (``count()``), or, with
``objective="hardware"``, minimise the compiler's estimated cycles and DSPs of the latency
schedule (``hardware.hardware_cost``) instead of FLOPs. Trials below ``min_accuracy`` are
infeasible through ``Trial.set_constraint`` (Optuna 5's replacement for the deprecated
``constraints_func``; NSGA-II, TPE and ``study.best_trials`` all read it), so they never enter the
Pareto front.

Search space (the JetFormer paper's): blocks 1..6, (C, heads) from ``DIM_HEADS``, dropout
{0, 0.05}. Each trial trains with the paper's recipe for ``epochs`` epochs with early stopping and
keeps its best validation epoch. Training is seeded, so a configuration always gives the same
accuracy; ``cache_dir`` reuses finished configurations across studies and samplers.

Storage is any Optuna storage URL: SQLite for one machine, PostgreSQL for many machines with
several ``allo-ext hpo`` workers on one study. The trial budget counts completed trials of the
whole study, so a killed study resumes where it stopped when run again with the same name, and
workers share the budget. Trials of a killed worker stay RUNNING until their heartbeat expires;
then they are marked failed and re-queued (``RetryHeartbeatStaleTrialCallback``).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

N_BLOCKS = (1, 2, 3, 4, 5, 6)
DIM_HEADS = ((8, 2), (16, 2), (32, 2), (64, 2), (64, 4), (128, 2), (128, 4), (128, 8))
DROPOUTS = (0.0, 0.05)
SAMPLERS = ("nsga2", "tpe", "random")
OBJECTIVES = ("flops", "hardware")
HEARTBEAT_S = 30


@dataclass
class HPOConfig:
    study_name: str = "jetformer"
    storage: str = "sqlite:///hpo.db"
    sampler: str = "nsga2"
    objective: str = "flops"
    precision: str | None = None  # for objective="hardware"; None = float32
    n_trials: int = 40  # completed trials of the whole study
    epochs: int = 5
    patience: int | None = 2
    batch_size: int = 256
    max_lr: float = 1e-3
    min_accuracy: float = 0.65
    population_size: int = 20  # NSGA-II
    n_startup_trials: int = 20  # TPE
    seed: int = 0
    cache_dir: str | None = None
    search_space: dict = field(default_factory=lambda: {
        "n_blocks": list(N_BLOCKS), "dim_heads": [list(p) for p in DIM_HEADS], "dropout": list(DROPOUTS)})

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        for name in ("n_trials", "epochs", "batch_size", "population_size", "n_startup_trials"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"HPOConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.population_size < 2:
            raise ValueError("HPOConfig.population_size must be >= 2 (NSGA-II)")
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must be in [0, 1], got {self.min_accuracy}")
        if "://" not in self.storage:
            raise ValueError(f"storage must be an Optuna storage URL such as sqlite:///hpo.db or "
                             f"postgresql://user@host/db, got {self.storage!r}")

    @property
    def directions(self) -> list[str]:
        if self.objective == "flops":
            return ["maximize", "minimize"]
        return ["maximize", "minimize", "minimize"]

    @property
    def metric_names(self) -> list[str]:
        return ["accuracy", "flops"] if self.objective == "flops" else ["accuracy", "cycles", "dsp"]


def make_sampler(cfg: HPOConfig):
    import optuna

    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=cfg.population_size, seed=cfg.seed)
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=cfg.n_startup_trials, seed=cfg.seed,
                                          multivariate=True)
    return optuna.samplers.RandomSampler(seed=cfg.seed)


def make_storage(url: str):
    """RDB storages (SQLite, PostgreSQL, MySQL) get a heartbeat so that a killed worker's trial
    is failed and retried instead of hanging in RUNNING."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if url.split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql", "mysql"):
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=4 * HEARTBEAT_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
    return url


def open_study(cfg: HPOConfig):
    """Create the study, or load it (same name and storage) to resume or to add a worker."""
    import optuna
    import sqlalchemy.exc

    # Workers started together race to create the schema and the study in a fresh database
    # (PostgreSQL raises a unique violation for the loser); the loser retries and loads them.
    for attempt in range(5):
        try:
            study = optuna.create_study(study_name=cfg.study_name, storage=make_storage(cfg.storage),
                                        sampler=make_sampler(cfg), directions=cfg.directions,
                                        load_if_exists=True)
            break
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    have = [d.name.lower() for d in study.directions]
    if have != cfg.directions:
        raise ValueError(f"study {cfg.study_name!r} in {cfg.storage} optimises {have}, not {cfg.directions} "
                         f"(objective {cfg.objective!r}); use another --study name")
    saved = study.user_attrs.get("hpo_config")
    mine = _comparable(cfg)
    if saved is None:
        study.set_user_attr("hpo_config", mine)
    elif saved != mine:
        diff = {k: (saved.get(k), v) for k, v in mine.items() if saved.get(k) != v}
        raise ValueError(f"study {cfg.study_name!r} was run with other settings {diff} (saved vs now); "
                         f"resume with the same settings or use another --study name")
    return study


def _comparable(cfg: HPOConfig) -> dict:
    # Settings that change what a trial measures; the budget, sampler and cache may change.
    d = asdict(cfg)
    return {k: d[k] for k in ("objective", "precision", "epochs", "patience", "batch_size", "max_lr",
                              "min_accuracy", "seed", "search_space")}


def suggest(trial, cfg: HPOConfig) -> dict:
    space = cfg.search_space
    n_blocks = trial.suggest_int("n_blocks", min(space["n_blocks"]), max(space["n_blocks"]))
    pairs = [f"{c}x{h}" for c, h in space["dim_heads"]]
    dim, heads = (int(v) for v in trial.suggest_categorical("dim_heads", pairs).split("x"))
    dropout = trial.suggest_categorical("dropout", list(space["dropout"]))
    return {"n_blocks": n_blocks, "dim": dim, "n_heads": heads, "dropout": float(dropout)}


def count_completed(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


class Objective:
    """Train one configuration and return (accuracy, FLOPs) or (accuracy, cycles, DSPs)."""

    def __init__(self, cfg: HPOConfig, data, on_trial: Callable[[dict], None] | None = None):
        self.cfg, self.data, self.on_trial = cfg, data, on_trial
        self.n_particles, self.n_features = data.x_train.shape[1], data.x_train.shape[2]
        self.data_key = _data_key(data)

    def __call__(self, trial):
        arch = suggest(trial, self.cfg)
        rec = self._costs(arch)
        trained = self._cached(arch)
        if trained is None:
            trained = self._train(arch)
            self._store(arch, trained)
        rec.update(trained)
        for k, v in rec.items():
            trial.set_user_attr(k, v)
        # Which process ran it: several workers may share a study.
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_constraint("min_accuracy", self.cfg.min_accuracy - rec["accuracy"])
        if self.on_trial is not None:
            self.on_trial(rec)
        return tuple(rec[m] for m in self.cfg.metric_names)

    def _model(self, arch: dict):
        import torch

        from ..models import JetFormer

        torch.manual_seed(self.cfg.seed)
        return JetFormer.tiny(n_particles=self.n_particles, n_features=self.n_features, **arch)

    def _costs(self, arch: dict) -> dict:
        """What the architecture costs: FLOPs and parameters, and the compiler's estimate."""
        from ..models import count

        model = self._model(arch)
        c = count(model, self.n_particles, self.n_features)
        rec = {"config": arch, "flops": int(c["flops"]), "params": int(c["params"])}
        if self.cfg.objective == "hardware":
            from .hardware import hardware_cost

            rec.update(hardware_cost(model, self.n_particles, self.n_features, self.cfg.precision))
        return rec

    def _train(self, arch: dict) -> dict:
        from ..train import TrainConfig, evaluate, fit

        cfg, t0 = self.cfg, time.perf_counter()
        model = self._model(arch)
        tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, max_lr=cfg.max_lr,
                         patience=cfg.patience, seed=cfg.seed, progress=False, save_plots=False)
        with warnings.catch_warnings():
            # Short trials with early stopping are the point here; fit warns about OneCycle.
            warnings.simplefilter("ignore", UserWarning)
            hist = fit(model, self.data.train, self.data.val, tc)
        return {"accuracy": float(evaluate(model, *self.data.val).accuracy), "epochs_run": len(hist.epochs),
                "train_seconds": time.perf_counter() - t0}

    def _key(self, arch: dict) -> str | None:
        if self.cfg.cache_dir is None:
            return None
        # Only what changes the trained accuracy: the sampler, objective and threshold do not.
        c = self.cfg
        payload = json.dumps({"arch": arch, "data": self.data_key, "epochs": c.epochs, "patience": c.patience,
                              "batch_size": c.batch_size, "max_lr": c.max_lr, "seed": c.seed}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def _cached(self, arch: dict) -> dict | None:
        key = self._key(arch)
        path = None if key is None else Path(self.cfg.cache_dir) / f"{key}.json"
        if path is not None and path.exists():
            rec = json.loads(path.read_text())
            rec["cached"] = True
            return rec
        return None

    def _store(self, arch: dict, rec: dict) -> None:
        key = self._key(arch)
        if key is None:
            return
        from ..train.checkpoint import atomic_json_save

        Path(self.cfg.cache_dir).mkdir(parents=True, exist_ok=True)
        atomic_json_save(rec, Path(self.cfg.cache_dir) / f"{key}.json")


def _data_key(data) -> str:
    from ..train.inputs import as_tensors, fingerprint

    return fingerprint(*as_tensors(*data.train)) + fingerprint(*as_tensors(*data.val))


def run_hpo(cfg: HPOConfig, data, progress: bool = True, log: Callable[[str], None] | None = None):
    """Run trials until the study has ``cfg.n_trials`` completed ones; returns the study.

    Several processes may call this on one study (same name and storage): they share the budget.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(cfg)
    done = count_completed(study)
    if log and done:
        log(f"study {cfg.study_name!r}: {done} completed trial(s) found, continuing to {cfg.n_trials}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not progress)
    best = [max((t.user_attrs.get("accuracy", 0.0) for t in study.trials), default=0.0)]
    with bar:
        task = bar.add_task(f"HPO {cfg.sampler}", total=cfg.n_trials, completed=min(done, cfg.n_trials),
                            info="")

        def on_trial(rec):
            best[0] = max(best[0], rec["accuracy"])
            bar.update(task, info=f"last acc {rec['accuracy']:.3f} flops {rec['flops']:,} | best acc {best[0]:.3f}")

        objective = Objective(cfg, data, on_trial)
        while done < cfg.n_trials:
            study.optimize(objective, n_trials=1, catch=(FloatingPointError,))
            done = count_completed(study)
            bar.update(task, completed=min(done, cfg.n_trials))
    return study


def trial_rows(study) -> list[dict]:
    """Completed trials as flat dicts (number, params, metrics, feasible, on the Pareto front)."""
    from optuna.trial import TrialState

    front = {t.number for t in study.best_trials}
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        rows.append({"number": t.number, **a.get("config", {}), "accuracy": a.get("accuracy"),
                     "flops": a.get("flops"), "params": a.get("params"), "cycles": a.get("cycles"),
                     "dsp": a.get("dsp"), "epochs_run": a.get("epochs_run"),
                     "feasible": all(v <= 0 for v in t.constraints.values()) if t.constraints else None,
                     "pareto": t.number in front})
    return rows


def accuracy_flops(rows: list[dict]) -> np.ndarray:
    return np.array([[r["accuracy"], r["flops"]] for r in rows], dtype=float).reshape(-1, 2)
