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
from torch_mlir import fx, ir, passmanager
from torch_mlir.dialects import linalg
from torch_mlir.execution_engine import ExecutionEngine
from torch_mlir.runtime import get_ranked_memref_descriptor

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
            copies = []

            def cb(op):
                if op.name == "memref.copy":
                    copies.append(op)
                return ir.WalkResult.ADVANCE

            mod.operation.walk(cb)
            for op in copies:  # the JIT has no memrefCopy symbol
                with op.location, ir.InsertionPoint(op):
                    linalg.copy(op.operands[0], outs=[op.operands[1]])
                op.erase()
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
