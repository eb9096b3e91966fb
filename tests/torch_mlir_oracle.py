"""An independent second oracle: torch-mlir's own fx importer (linalg-on-tensors) through the JIT.

It shares nothing with allo-ext's frontend or kernels (only MLIR's upstream passes and the
ExecutionEngine), so agreement with it is evidence beyond agreement with torch eager.
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


def run_torch_mlir(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    model = model.eval()
    with torch.no_grad():
        out_shape = tuple(model(x).shape)
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
        engine = ExecutionEngine(mod, opt_level=2)
    xin = np.ascontiguousarray(x.numpy())
    out = np.full(out_shape, np.nan, dtype=np.float32)
    args = [ctypes.pointer(ctypes.pointer(get_ranked_memref_descriptor(a))) for a in (xin, out)]
    engine.invoke("main", *args)
    assert not np.isnan(out).any(), "torch-mlir oracle left output elements unwritten"
    return out
