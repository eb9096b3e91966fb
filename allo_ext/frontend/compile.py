"""``from_pytorch``: a torch model in, a compiled callable (or HLS project) out."""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from ..kernels import apply_schedules
from ..lang.errors import CallError
from ..schedule import Schedule
from . import lowerings  # noqa: F401  (registers the lowerings)
from .custom_ops import prepare_for_export
from .importer import GraphImporter

# Per-call batch the CPU module is compiled for; bigger batches are cut into chunks of this size
# and the last chunk is padded, so any batch size works with one compiled module.
DEFAULT_CHUNK = {"llvm": 256}


def _warn_if_training(model: torch.nn.Module, stacklevel: int):
    if model.training:
        warnings.warn(f"{type(model).__name__} is in training mode; compiling it in eval mode "
                      "(dropout off, BatchNorm with running statistics). Call model.eval() to silence this.",
                      stacklevel=stacklevel + 1)


def export(model: torch.nn.Module, example: torch.Tensor, _stacklevel: int = 1) -> torch.export.ExportedProgram:
    """``torch.export`` in eval mode (a model in training mode is copied and switched, with a warning);
    the user's model object is never modified."""
    _warn_if_training(model, _stacklevel + 1)
    m = prepare_for_export(model).eval()
    with torch.no_grad():
        return torch.export.export(m, (example,))


def trace(model: torch.nn.Module, example: torch.Tensor, top_name: str = "forward", target: str = "llvm",
          _stacklevel: int = 1) -> Schedule:
    """The model as an unscheduled Schedule: a top function calling library kernels."""
    ep = export(model, example, _stacklevel=_stacklevel + 1)
    mb, top = GraphImporter(ep, top_name, target).run()
    return Schedule(mb, top)


class CompiledModel:
    """A compiled model that takes any batch size: (B, ...) numpy or torch in, numpy out."""

    def __init__(self, schedule: Schedule, module, chunk: int, in_shape: tuple, target: str, timings: dict):
        self.schedule = schedule
        self.module = module
        self.chunk = chunk
        self.in_shape = in_shape  # per-item shape
        self.target = target
        self.timings = timings

    def __call__(self, x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.dtype != np.float32:
            raise CallError(f"expected float32 input of shape (B, {', '.join(map(str, self.in_shape))}), "
                            f"got dtype {x.dtype}; convert with x.astype(np.float32)")
        if x.shape[1:] != self.in_shape:
            raise CallError(f"expected input of shape (B, {', '.join(map(str, self.in_shape))}), got {x.shape}")
        n = x.shape[0]
        outs = []
        for start in range(0, n, self.chunk):
            part = x[start:start + self.chunk]
            if part.shape[0] < self.chunk:
                pad = np.zeros((self.chunk - part.shape[0],) + self.in_shape, dtype=np.float32)
                part = np.concatenate([part, pad])
            outs.append(self.module(np.ascontiguousarray(part))[: min(self.chunk, n - start)])
        if not outs:
            return np.zeros((0,) + tuple(self.module.res_types[0].shape[1:]), dtype=np.float32)
        return np.concatenate(outs)

    def __getattr__(self, name):
        return getattr(self.module, name)


def from_pytorch(model: torch.nn.Module, example_inputs, target: str = "llvm", schedule: str = "default",
                 batch_size: int | None = None, **build_options):
    """Compile ``model`` for ``target``.

    ``example_inputs`` is a tensor (or a 1-tuple) of shape (B, ...); only its per-item shape and
    dtype matter. ``batch_size`` is the batch the module is compiled for (default 256 on the CPU,
    1 elsewhere: hardware takes one jet per call and the C simulation loops over the batch).
    ``schedule`` is the profile each library kernel's schedule is applied with ("default" or
    "latency").
    """
    if isinstance(example_inputs, (tuple, list)):
        if len(example_inputs) != 1:
            raise NotImplementedError("models with more than one input are not supported yet")
        example_inputs = example_inputs[0]
    example = torch.as_tensor(example_inputs)
    chunk = batch_size or DEFAULT_CHUNK.get(target, 1)
    item_shape = tuple(example.shape[1:])
    reps = (chunk + example.shape[0] - 1) // max(example.shape[0], 1)
    x = example.repeat((reps,) + (1,) * len(item_shape))[:chunk].contiguous() if example.shape[0] else \
        torch.zeros((chunk,) + item_shape, dtype=example.dtype)
    t0 = time.perf_counter()
    s = trace(model, x, target=target, _stacklevel=2)
    t1 = time.perf_counter()
    apply_schedules(s, schedule)
    module = s.build(target=target, **build_options)
    t2 = time.perf_counter()
    timings = {"export_and_import_s": t1 - t0, "schedule_and_build_s": t2 - t1}
    if target == "llvm":
        return CompiledModel(s, module, chunk, item_shape, target, timings)
    return module
