"""Test and benchmark helpers.

``torch_mlir_reference``: an independent second oracle, torch-mlir's own fx importer
(linalg-on-tensors) through the JIT. It shares nothing with allo-ext's frontend or kernels (only
MLIR's upstream passes and the ExecutionEngine), so agreement with it is evidence beyond agreement
with torch eager; it is also the "generic linalg path" peer in bench/frontend.py.
Pipelines follow shared/notes/mlir-recipes.md.
"""
import ctypes

import numpy as np
import torch
from torch_mlir import fx, passmanager
from torch_mlir.execution_engine import ExecutionEngine
from torch_mlir.runtime import get_ranked_memref_descriptor

from .backends.llvm import copies_to_linalg

BUFFERIZE = ("builtin.module(one-shot-bufferize{bufferize-function-boundaries "
             "function-boundary-type-conversion=identity-layout-map},"
             "buffer-results-to-out-params{modify-public-functions=1 hoist-static-allocs=1 hoist-dynamic-allocs=1},"
             "buffer-deallocation-pipeline)")
LOWER = ("builtin.module(func.func(llvm-request-c-wrappers),func.func(convert-linalg-to-loops),expand-strided-metadata,"
         "lower-affine,convert-scf-to-cf,finalize-memref-to-llvm,convert-math-to-llvm,convert-math-to-libm,"
         "convert-arith-to-llvm,convert-cf-to-llvm,convert-func-to-llvm,convert-index-to-llvm,"
         "reconcile-unrealized-casts)")


class TorchMlirReference:
    """``model`` compiled by torch-mlir's generic path for inputs shaped like ``x``; call it with numpy."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor):
        model = model.eval()
        with torch.no_grad():
            self.out_shape = tuple(model(x).shape)
        self.in_shape = tuple(x.shape)
        mod = fx.export_and_import(model, x, output_type="linalg-on-tensors", func_name="main")
        with mod.context:
            passmanager.PassManager.parse(BUFFERIZE).run(mod.operation)
            copies_to_linalg(mod)  # the JIT has no memrefCopy symbol
            passmanager.PassManager.parse(LOWER).run(mod.operation)
            self.engine = ExecutionEngine(mod, opt_level=2)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xin = np.ascontiguousarray(x, dtype=np.float32)
        if xin.shape != self.in_shape:
            raise ValueError(f"compiled for input shape {self.in_shape}, got {xin.shape}")
        out = np.full(self.out_shape, np.nan, dtype=np.float32)
        args = [ctypes.pointer(ctypes.pointer(get_ranked_memref_descriptor(a))) for a in (xin, out)]
        self.engine.invoke("main", *args)
        if np.isnan(out).any():
            raise AssertionError("torch-mlir reference left output elements unwritten (NaN)")
        return out


def run_torch_mlir(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """One-shot: compile with torch-mlir's generic path and run on ``x``."""
    return TorchMlirReference(model, x)(x.numpy())


def perturb_norm_stats(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random running statistics and affine parameters for every BatchNorm, so that a freshly built
    model's norms are not the identity and a test can see them."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.affine:
                with torch.no_grad():
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model
