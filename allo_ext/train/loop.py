"""`fit`: the training loop, with a checkpoint every epoch and exact resumption."""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from .checkpoint import (
    BEST_MODEL_NAME,
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    atomic_json_save,
    atomic_torch_save,
    clear_run,
    load_checkpoint,
)
from .config import TrainConfig
from .history import EarlyStopping, History
from .inputs import as_tensors, check_log_probs, fingerprint
from .metrics import Metrics, compute_metrics, predict_log_probs
from .plots import plot_history, plot_roc
from .progress import EpochProgress
from .schedules import make_optimizer, make_scheduler, steps_per_batch
from .seeding import default_threads, rng_state, seed_everything, set_rng_state, torch_threads


def fit(
    model: torch.nn.Module,
    train: tuple[Any, Any],
    val: tuple[Any, Any] | None = None,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    resume: bool = True,
    model_config: dict[str, Any] | None = None,
) -> History:
    """Train ``model`` (which returns log-probabilities (B, K)) with NLL loss.

    ``train`` and ``val`` are ``(X, y)`` with X (B, N, F) (any (B, ...) works) as numpy or torch,
    y (B,) integer labels. ``val`` is required for early stopping, ``plateau`` and ``restore_best``
    (without it the final weights are the last epoch's).

    With ``out_dir``, every epoch ends with ``checkpoint.pt`` replaced atomically (model,
    optimizer, scheduler, epoch, early-stopping state, RNG states, history, ``config`` and
    ``model_config``), plus ``history.json`` and, when validation improves, ``best_model.pt``.
    With ``resume=True`` an existing checkpoint is continued at the next epoch: the final weights
    and history are bit-identical to an uninterrupted run (same data and config are enforced; the
    thread count is taken from the checkpoint unless ``config.num_threads`` overrides it, which
    warns, as float sums depend on how work is split across threads). A finished run is not
    retrained; its weights are loaded. ``model_config`` is any JSON-serialisable dict, stored so
    a model can be rebuilt from the checkpoint (see :func:`load_checkpoint`).

    At the end, with ``out_dir``: ``history.png``, ``roc.png`` and ``val_metrics.json``.
    """
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    Xtr, ytr = as_tensors(*_pair(train, "train"), what="train")
    Xva = yva = None
    if val is not None:
        Xva, yva = as_tensors(*_pair(val, "val"), what="val")
        if Xva.shape[1:] != Xtr.shape[1:]:
            raise ValueError(
                f"val X has sample shape {tuple(Xva.shape[1:])}, train X {tuple(Xtr.shape[1:])}"
            )
    elif config.scheduler == "plateau" or config.patience is not None:
        raise ValueError(
            "fit: scheduler='plateau' and early stopping (patience) need validation data; "
            "pass val=(X_val, y_val)"
        )
    if config.scheduler == "onecycle" and config.patience is not None:
        anneal_epochs = (1 - config.pct_start) * config.epochs
        if config.patience < anneal_epochs / 2:
            warnings.warn(
                f"early stopping with patience {config.patience} may end OneCycle during its "
                f"{anneal_epochs:.0f}-epoch annealing phase, where most of the accuracy is gained "
                f"(a reference run lost about a point this way); prefer patience=None with "
                f"restore_best=True, or patience >= {math.ceil(anneal_epochs / 2)}",
                stacklevel=2,
            )
    model_config = dict(model_config or {})
    try:
        json.dumps(model_config)
    except TypeError as e:
        raise TypeError(
            f"model_config must be JSON-serialisable (numbers, strings, lists, dicts): {e}"
        ) from e
    out = Path(out_dir) if out_dir is not None else None
    ck_path = None if out is None else out / CHECKPOINT_NAME
    ck = None
    if ck_path is not None and ck_path.exists():
        if resume:
            ck = load_checkpoint(ck_path)
        else:
            warnings.warn(f"resume=False: starting over; {ck_path} will be overwritten", stacklevel=2)
    if out is not None and not resume:
        clear_run(out)  # an old best_model.pt must not outlive the run that replaces it
    # A resumed run keeps the thread count it was started with unless told otherwise, because
    # float sums depend on how the work is split across threads.
    n_threads = config.num_threads or (ck["num_threads"] if ck is not None else default_threads())
    with torch_threads(n_threads):
        run = _Run(model, config, Xtr, ytr, Xva, yva, out, model_config, n_threads)
        return run.run(ck, ck_path)


def _pair(data: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{what} must be a pair (X, y), got {type(data).__name__}")
    return data[0], data[1]


class _Run:
    def __init__(self, model, config, Xtr, ytr, Xva, yva, out, model_config, n_threads):
        self.model, self.config, self.out = model, config, out
        self.Xtr, self.ytr, self.Xva, self.yva = Xtr, ytr, Xva, yva
        self.model_config, self.n_threads = model_config, n_threads
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))

        n, bs = len(Xtr), config.batch_size
        drop_last = config.drop_last
        if not drop_last and n > 1 and n % bs == 1:
            # BatchNorm cannot train on a batch of one sample; such a batch would crash
            # every epoch, so drop it, and say so.
            warnings.warn(
                f"{n} training samples with batch_size {bs} leave a last batch of 1 sample, "
                f"which BatchNorm cannot train on; dropping it every epoch "
                f"(set drop_last=True or change batch_size to silence this)",
                stacklevel=3,
            )
            drop_last = True
        self.steps_per_epoch = n // bs if drop_last else math.ceil(n / bs)
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {bs} > {n} training samples with drop_last=True: no batch")
        # Batches are drawn with one index list per step (BatchSampler as the sampler), so
        # TensorDataset slices whole batches instead of collating sample by sample.
        self.generator = torch.Generator()
        dataset = TensorDataset(Xtr, ytr)
        sampler = BatchSampler(RandomSampler(dataset, generator=self.generator), bs, drop_last)
        self.loader = DataLoader(dataset, sampler=sampler, batch_size=None, generator=self.generator)

        self.optimizer = make_optimizer(model, config)
        self.scheduler = make_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.stopper = EarlyStopping(config.patience, config.min_delta)
        self.history = History()
        self.fingerprints = {
            "train": fingerprint(Xtr, ytr),
            "val": None if Xva is None else fingerprint(Xva, yva),
        }
        self.checked_output = False

    # ---- resume -------------------------------------------------------------------------
    def _restore(self, ck: dict[str, Any], path: Path) -> None:
        fix = f"use another out_dir, or fit(..., resume=False) to start over in {self.out}"
        diff = self.config.resume_mismatch(ck["config"])
        if diff:
            lines = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"cannot resume {path}: the TrainConfig differs ({lines}); {fix}")
        if ck["model_config"] != self.model_config:
            raise ValueError(
                f"cannot resume {path}: model_config differs (checkpoint {ck['model_config']!r} "
                f"vs now {self.model_config!r}); {fix}"
            )
        for split, fp in self.fingerprints.items():
            if ck["data"][split] != fp:
                raise ValueError(f"cannot resume {path}: the {split} data differ from the run's; {fix}")
        if ck["num_threads"] != self.n_threads:
            warnings.warn(
                f"resuming {path} with {self.n_threads} torch threads, the run used "
                f"{ck['num_threads']}: results will not be bit-identical to an uninterrupted run; "
                f"set TrainConfig.num_threads={ck['num_threads']}",
                stacklevel=4,
            )
        try:
            self.model.load_state_dict(ck["model"])
        except RuntimeError as e:
            raise RuntimeError(
                f"cannot resume {path}: the model does not match the checkpoint's weights; "
                f"build it from the checkpoint's model_config {ck['model_config']!r}. {e}"
            ) from e
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ck["scheduler"])
        self.stopper.load_state_dict(ck["early_stopping"])
        self.history = History.from_dict(ck["history"])
        set_rng_state(ck["rng"], self.generator)
        if len(self.history.epochs) != ck["epoch"]:
            raise ValueError(
                f"{path} is inconsistent: epoch {ck['epoch']} but {len(self.history.epochs)} "
                f"history records; {fix}"
            )

    # ---- one epoch ----------------------------------------------------------------------
    def _train_epoch(self, epoch: int, bar: EpochProgress) -> tuple[float, float]:
        model, opt, cfg = self.model, self.optimizer, self.config
        per_batch = steps_per_batch(cfg) and self.scheduler is not None
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        bar.start_epoch(epoch, self.steps_per_epoch)
        for step, (xb, yb) in enumerate(self.loader, 1):
            xb, yb = xb.to(self.device), yb.to(self.device)
            lr = opt.param_groups[0]["lr"]
            opt.zero_grad(set_to_none=True)
            logp = model(xb)
            if not self.checked_output:
                check_log_probs(logp, yb, f"fit (epoch {epoch}, first batch)")
                self.checked_output = True
            loss = F.nll_loss(logp, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {epoch}, batch {step} (lr {lr:.3g}); "
                    f"lower the learning rate, set grad_clip, or check the inputs' normalisation"
                )
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if per_batch:
                self.scheduler.step()
            self.history.batch_lr.append(float(lr))
            n = len(yb)
            loss_sum += loss.item() * n
            correct += int((logp.argmax(1) == yb).sum())
            seen += n
            bar.advance(loss_sum / seen, correct / seen, lr)
        return loss_sum / seen, correct / seen

    def _validate(self) -> Metrics | None:
        if self.Xva is None:
            return None
        logp = predict_log_probs(self.model, self.Xva, self.config.eval_batch_size)
        return compute_metrics(self.yva, logp, self.config.class_names)

    # ---- persistence --------------------------------------------------------------------
    def _save_epoch(self, epoch: int, improved: bool) -> None:
        if self.out is None:
            return
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        # Side files first, checkpoint last: if killed in between, the resumed run redoes this
        # epoch and rewrites them with identical content.
        if improved:
            atomic_torch_save(
                {
                    "format_version": FORMAT_VERSION,
                    "epoch": epoch,
                    "val_loss": self.stopper.best_loss,
                    "model": state,
                    "model_config": self.model_config,
                    "config": self.config.to_dict(),
                },
                self.out / BEST_MODEL_NAME,
            )
        atomic_json_save(self.history.to_dict(), self.out / "history.json")
        atomic_torch_save(
            {
                "format_version": FORMAT_VERSION,
                "epoch": epoch,
                "model": state,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "early_stopping": self.stopper.state_dict(),
                "rng": rng_state(self.generator),
                "history": self.history.to_dict(),
                "config": self.config.to_dict(),
                "model_config": self.model_config,
                "data": self.fingerprints,
                "num_threads": self.n_threads,
                "torch_version": str(torch.__version__),
            },
            self.out / CHECKPOINT_NAME,
        )

    def _finish(self) -> History:
        if self.config.restore_best and self.stopper.best_state is not None:
            self.model.load_state_dict(self.stopper.best_state)
        if self.out is not None:
            atomic_json_save(self.history.to_dict(), self.out / "history.json")
            if self.config.save_plots:
                plot_history(self.history, self.out / "history.png")
            metrics = self._validate()
            if metrics is not None:
                atomic_json_save(metrics.to_dict(), self.out / "val_metrics.json")
                if self.config.save_plots:
                    plot_roc(metrics.y_true, metrics.probs, self.out / "roc.png", metrics.class_names)
        return self.history

    # ---- driver -------------------------------------------------------------------------
    def run(self, ck: dict[str, Any] | None, ck_path: Path | None) -> History:
        cfg = self.config
        if ck is not None:
            self._restore(ck, ck_path)
        else:
            seed_everything(cfg.seed)
            self.generator.manual_seed(cfg.seed)
        hist = self.history
        if hist.finished:
            return self._finish()
        first = len(hist.epochs) + 1
        with EpochProgress(cfg.progress, cfg.epochs, first - 1) as bar:
            if ck is not None:
                bar.note(f"resuming {ck_path} after epoch {first - 1}")
            for epoch in range(first, cfg.epochs + 1):
                t0 = time.perf_counter()
                train_loss, train_acc = self._train_epoch(epoch, bar)
                m = self._validate()
                stop = improved = False
                if m is not None:
                    if cfg.scheduler == "plateau":
                        self.scheduler.step(m.loss)
                    before = self.stopper.best_epoch
                    stop = self.stopper.update(m.loss, epoch, self.model)
                    improved = self.stopper.best_epoch != before
                    hist.best_epoch = self.stopper.best_epoch
                    hist.best_val_loss = self.stopper.best_loss
                rec = {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "train_acc": train_acc,
                    "val_loss": None if m is None else m.loss,
                    "val_acc": None if m is None else m.accuracy,
                    "val_auc": None if m is None else [None if math.isnan(a) else a for a in m.auc.tolist()],
                    "val_auc_macro": None if m is None else m.macro_auc,
                    "lr": hist.batch_lr[-1],
                    "seconds": time.perf_counter() - t0,
                }
                hist.epochs.append(rec)
                hist.stopped_early = stop and epoch < cfg.epochs
                hist.finished = stop or epoch == cfg.epochs
                self._save_epoch(epoch, improved)
                bar.end_epoch(rec, stop, cfg.patience)
                if stop:
                    break
        return self._finish()
