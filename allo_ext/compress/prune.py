"""Structured pruning of JetFormer with torch-pruning: Taylor importance, global ratio in
iterative steps, fine-tuning after each step.

What is pruned, and what is not:

- prunable channel groups are the FFN hidden width (linear_0 out, its BatchNorm, linear_1 in)
  and the attention width (q, k, v out and ``out`` in, coupled by torch-pruning's graph);
- heads stay whole: q/k/v are declared with their head count and ``prune_head_dims`` removes
  the same number of dimensions from every head, never a head itself;
- the residual width C is not pruned: ``embed`` and ``head`` are ignored layers, which keeps
  the class token (a (1, 1, C) parameter on that width) and the 5-way head intact.

After a step shrinks the head dimension from d to d', the attention scale 1/sqrt(d) would
change; the q weights are multiplied by sqrt(d'/d) so the pruned network computes exactly what
torch-pruning's channel removal gave, then it is fine-tuned.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models import count
from ..models.layers import SelfAttention


@dataclass
class PruneConfig:
    ratio: float = 0.5
    steps: int = 5
    finetune_epochs: int = 5
    global_pruning: bool = False  # uniform per layer: reproduces the paper's -47% FLOPs / -35% params
    taylor_batches: int = 8  # batches of the training set whose gradients rank the channels
    batch_size: int = 256
    max_lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise ValueError(f"pruning ratio must be in (0, 1), got {self.ratio}")
        for name in ("steps", "taylor_batches", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"PruneConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise ValueError(f"PruneConfig.finetune_epochs must be an integer >= 0, got {self.finetune_epochs!r}")


def _attentions(model: torch.nn.Module) -> list[SelfAttention]:
    return [m for m in model.modules() if isinstance(m, SelfAttention)]


def make_pruner(model: torch.nn.Module, example: torch.Tensor, cfg: PruneConfig):
    import torch_pruning as tp

    for name in ("embed", "head", "cls_token"):
        if not hasattr(model, name):
            raise TypeError(f"prune() handles JetFormer-style models (embed, cls_token, blocks, head); "
                            f"{type(model).__name__} has no {name!r}")
    heads, scopes = {}, {}
    for attn in _attentions(model):
        for lin in (attn.q, attn.k, attn.v):
            heads[lin] = attn.n_heads
        scopes[(attn.q, attn.k, attn.v)] = cfg.ratio
    for block in getattr(model, "blocks", []):
        scopes[(block.ffn.linear_0,)] = cfg.ratio
    with warnings.catch_warnings():
        # The class token is reached through `embed`'s ignored width; no need to tell its dim.
        warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
        return tp.pruner.MetaPruner(
            model, example, importance=tp.importance.TaylorImportance(),
            global_pruning=cfg.global_pruning, pruning_ratio=cfg.ratio, iterative_steps=cfg.steps,
            # Uniform: one ranking scope per layer group, each cut by the ratio (torch-pruning's own
            # local scopes are keyed by a module name that attention groups can share).
            pruning_ratio_dict=None if cfg.global_pruning else scopes,
            ignored_layers=[model.embed, model.head], num_heads=heads,
            prune_num_heads=False, prune_head_dims=True)


def _fix_heads(model: torch.nn.Module) -> None:
    """Keep each attention's head_dim in step with its pruned q/k/v, and its scale unchanged."""
    for attn in _attentions(model):
        widths = {attn.q.out_features, attn.k.out_features, attn.v.out_features, attn.out.in_features}
        if len(widths) != 1:
            raise RuntimeError(f"pruning left q/k/v/out widths {sorted(widths)} unequal in {attn}")
        width = widths.pop()
        if width % attn.n_heads:
            raise RuntimeError(f"pruning split a head: width {width} for {attn.n_heads} heads")
        new = width // attn.n_heads
        if new != attn.head_dim:
            with torch.no_grad():
                attn.q.weight.mul_(math.sqrt(new / attn.head_dim))
            attn.head_dim = new


def _accumulate_taylor(model, x, y, cfg: PruneConfig) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    g = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randperm(len(x), generator=g)[: cfg.taylor_batches * cfg.batch_size]
    for part in idx.split(cfg.batch_size):
        if len(part) < 2:  # BatchNorm cannot train on one sample
            continue
        loss = F.nll_loss(model(x[part]), y[part]) * len(part) / len(idx)
        loss.backward()


def inference_seconds(model: torch.nn.Module, x: torch.Tensor, repeat: int = 5) -> float:
    """Median eval-mode torch time for one batch ``x`` (one thread)."""
    model.eval()
    times = []
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            model(x)
            for _ in range(repeat):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev)
    return float(np.median(times))


def measure(model: torch.nn.Module, data, n_time: int = 1024) -> dict:
    from ..train import evaluate

    n, f = data.x_train.shape[1], data.x_train.shape[2]
    c = count(model, n, f)
    xe, ye = data.eval_split()
    xt = torch.from_numpy(np.ascontiguousarray(xe[:n_time]))
    return {"flops": int(c["flops"]), "params": int(c["params"]),
            "accuracy": float(evaluate(model, xe, ye).accuracy),
            "val_accuracy": float(evaluate(model, *data.val).accuracy),
            "seconds_per_1k_jets": inference_seconds(model, xt) * 1000 / len(xt)}


def prune(model: torch.nn.Module, data, cfg: PruneConfig | None = None, progress: bool = True,
          log=print) -> tuple[torch.nn.Module, dict]:
    """Prune ``model`` in place on ``data`` (compress.data.JetData); returns (model, report) with
    FLOPs, parameters, accuracy and inference time before and after, and one row per step."""
    from ..train import TrainConfig, fit
    from ..train.inputs import as_tensors

    cfg = cfg or PruneConfig()
    torch.manual_seed(cfg.seed)
    x, y = as_tensors(*data.train, what="prune train")
    before = measure(model, data)
    pruner = make_pruner(model, x[:2], cfg)
    steps = []
    for step in range(1, cfg.steps + 1):
        _accumulate_taylor(model, x, y, cfg)
        pruner.step()
        model.zero_grad(set_to_none=True)
        _fix_heads(model)
        ft = None
        if cfg.finetune_epochs:
            tc = TrainConfig(epochs=cfg.finetune_epochs, batch_size=cfg.batch_size, max_lr=cfg.max_lr,
                             seed=cfg.seed + step, progress=progress, save_plots=False)
            hist = fit(model, data.train, data.val, tc)
            ft = hist.epochs[hist.best_epoch - 1]["val_acc"] if hist.best_epoch else None
        c = count(model, x.shape[1], x.shape[2])
        steps.append({"step": step, "flops": int(c["flops"]), "params": int(c["params"]),
                      "val_accuracy_after_finetune": ft, "widths": widths(model)})
        log(f"prune step {step}/{cfg.steps}: flops {c['flops']:,} params {c['params']:,}"
            + (f" val acc {ft:.4f}" if ft is not None else ""))
    after = measure(model.eval(), data)
    report = {"config": asdict(cfg), "before": before, "after": after, "steps": steps,
              "flops_change": after["flops"] / before["flops"] - 1,
              "params_change": after["params"] / before["params"] - 1,
              "speedup": before["seconds_per_1k_jets"] / after["seconds_per_1k_jets"]}
    return model, report


def widths(model: torch.nn.Module) -> list[dict]:
    """Per block: attention width per head and FFN hidden width."""
    out = []
    for b in getattr(model, "blocks", []):
        out.append({"head_dim": b.attn.head_dim, "heads": b.attn.n_heads, "ffn": b.ffn.linear_0.out_features})
    return out


PRUNED_FORMAT = 1


def resize_to(model: torch.nn.Module, block_widths: list[dict]) -> torch.nn.Module:
    """Give a freshly built model the layer widths of a pruned one (weights to be loaded after)."""
    from ..models.layers import TokenBatchNorm

    if len(block_widths) != len(model.blocks):
        raise ValueError(f"{len(block_widths)} pruned block widths for a model of {len(model.blocks)} blocks")
    for b, w in zip(model.blocks, block_widths):
        a, f = b.attn, b.ffn
        if w["heads"] != a.n_heads:
            raise ValueError(f"pruned widths have {w['heads']} heads, the model {a.n_heads}")
        c, width = a.q.in_features, w["heads"] * w["head_dim"]
        for name in ("q", "k", "v"):
            setattr(a, name, type(getattr(a, name))(c, width, bias=False))
        a.out = type(a.out)(width, c, bias=True)
        a.head_dim = w["head_dim"]
        f.linear_0 = type(f.linear_0)(c, w["ffn"], bias=False)
        f.norm_1 = TokenBatchNorm(w["ffn"])
        f.linear_1 = type(f.linear_1)(w["ffn"], c, bias=False)
    return model


def save_pruned(model: torch.nn.Module, bundle, path) -> None:
    """A weights-only file: the model bundle, the pruned widths and the state dict."""
    from ..train.checkpoint import atomic_torch_save

    atomic_torch_save({"pruned_format": PRUNED_FORMAT, "model_config": bundle.to_dict(),
                       "widths": widths(model), "model": model.state_dict()}, path)


def load_pruned(path):
    """(model in eval mode, ModelBundle) from :func:`save_pruned`'s file."""
    from ..bundle import BundleError, ModelBundle

    ck = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or ck.get("pruned_format") != PRUNED_FORMAT:
        raise BundleError(f"{path} is not a pruned model written by `allo-ext prune`")
    bundle = ModelBundle.from_dict(ck["model_config"], where=str(path))
    model = resize_to(bundle.build_model(), ck["widths"])
    model.load_state_dict(ck["model"])
    return model.eval(), bundle


def load_model(path):
    """A training run/checkpoint (``allo-ext train``) or a pruned model file (``allo-ext prune``)."""
    from pathlib import Path

    from ..bundle import load_bundle

    p = Path(path)
    if p.is_file():
        ck = torch.load(p, map_location="cpu", weights_only=True)
        if isinstance(ck, dict) and "pruned_format" in ck:
            return load_pruned(p)
    model, bundle, _ = load_bundle(p)
    return model, bundle
