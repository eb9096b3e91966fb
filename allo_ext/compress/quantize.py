"""1-bit quantisation-aware training: BitJetFormer from scratch, sized and compiled.

Recipe (the JetFormer paper's): AdamW, ReduceLROnPlateau on the validation loss (factor 0.8,
patience 5, minimum lr 1e-4), batch 256, NLL; BitLinear's straight-through estimator. The run
directory is an ordinary ``allo-ext train`` run, so ``allo-ext compile/verify`` take it; the
compiled model uses the ``bitlinear`` kernel and is checked here against torch's BitLinear forward.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from ..train import TrainConfig
from .size import size_report

BACKENDS = ("llvm", "csim")


def qat_config(epochs: int, batch_size: int = 256, lr: float = 1e-3, patience: int | None = None,
               seed: int = 0, progress: bool = True) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, scheduler="plateau",
                       plateau_factor=0.8, plateau_patience=5, plateau_min_lr=1e-4, patience=patience,
                       seed=seed, progress=progress)


def train_bitjetformer(data: str | os.PathLike, out_dir: str | os.PathLike, *, n_blocks: int = 3, dim: int = 64,
                       n_heads: int = 2, n_particles: int = 8, config: TrainConfig | None = None,
                       test_data: str | os.PathLike | None = None, model: str = "bitjetformer",
                       resume: bool = True):
    """Train ``model`` ("bitjetformer", or "jetformer" for the full-precision baseline with the
    same recipe) from scratch into ``out_dir``; returns the workflow's TrainResult."""
    from ..workflow import train_on_file

    return train_on_file(data, out_dir, model_name=model, preset="tiny", n_particles=n_particles,
                         overrides={"n_blocks": n_blocks, "dim": dim, "n_heads": n_heads},
                         config=config or qat_config(50), test_data=test_data, resume=resume)


def uses_bitlinear_kernel(model: torch.nn.Module, example: torch.Tensor) -> int:
    """How many calls of the ``bitlinear`` kernel the compiled model makes (0: not used)."""
    from ..frontend.compile import trace

    s = trace(model.eval(), example[:1], target="vhls")
    # bitlinear, bitlinear_1, ... (one per shape); not its inner bitlinear_int helpers.
    return len(re.findall(r"call @bitlinear(?:_\d+)?\(", str(s.module)))


def check_compiled(model: torch.nn.Module, x: np.ndarray, backends=BACKENDS) -> dict:
    """Compile ``model`` (from_pytorch) for each backend and compare with its torch forward on
    ``x``: max |log-prob error|, argmax agreement, build seconds."""
    from ..frontend.compile import from_pytorch

    model = model.eval()
    x = np.ascontiguousarray(x, dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = {}
    for b in backends:
        t0 = time.perf_counter()
        if b == "llvm":
            fn = from_pytorch(model, torch.from_numpy(x[:1]), target="llvm")
        elif b == "csim":
            fn = from_pytorch(model, torch.from_numpy(x[:1]), target="vitis_hls", mode="csim")
        else:
            raise ValueError(f"unknown backend {b!r}; choose from {', '.join(BACKENDS)}")
        built = time.perf_counter() - t0
        y = np.asarray(fn(x))
        out[b] = {"max_abs_err": float(np.abs(y - ref).max()),
                  "argmax_agree": float((y.argmax(1) == ref.argmax(1)).mean()),
                  "build_s": built, "n_jets": int(len(x))}
    return out


def quantize_report(model: torch.nn.Module, x_check: np.ndarray, backends=BACKENDS) -> dict:
    """Sizes (Table 6 convention), bitlinear kernel count and compiled-vs-torch check."""
    example = torch.from_numpy(np.ascontiguousarray(x_check[:1], dtype=np.float32))
    return {"size": size_report(model), "bitlinear_calls": uses_bitlinear_kernel(model, example),
            "compiled": check_compiled(model, x_check, backends)}


def write_json(obj, path: str | os.PathLike) -> Path:
    from ..train.checkpoint import atomic_json_save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_json_save(obj, path)
    return path
