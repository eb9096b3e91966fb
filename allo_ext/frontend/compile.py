"""``from_pytorch``: a torch model in, a compiled callable (or HLS project) out."""
from __future__ import annotations

import contextlib
import io
import logging
import sys
import re
import time
import warnings

import numpy as np
import torch

from ..kernels import apply_schedules
from ..lang.errors import CallError
from ..schedule import Schedule
from . import lowerings  # noqa: F401  (registers the lowerings)
from .custom_ops import prepare_for_export
from .errors import ModelExportError
from .importer import GraphImporter

# Per-call batch the CPU module is compiled for; bigger batches are cut into chunks of this size
# and the last chunk is padded, so any batch size works with one compiled module.
DEFAULT_CHUNK = {"llvm": 256}


def _warn_if_training(model: torch.nn.Module, stacklevel: int):
    if model.training:
        warnings.warn(f"{type(model).__name__} is in training mode; compiling it in eval mode "
                      "(dropout off, BatchNorm with running statistics). Call model.eval() to silence this.",
                      stacklevel=stacklevel + 1)


def check_exportable(model: torch.nn.Module, example: torch.Tensor) -> None:
    """Refuse, with the module named, what can never compile to a fixed per-jet graph."""
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not m.track_running_stats:
            raise ModelExportError(
                f"{name or type(model).__name__} ({type(m).__name__}) has track_running_stats=False: even in eval "
                f"mode it normalises with the statistics of the batch, so one jet's output depends on the others; "
                f"train it with track_running_stats=True (the default) to compile it")
    expected = getattr(getattr(model, "config", None), "n_particles", None)
    if isinstance(expected, int) and example.dim() == 3 and example.shape[1] != expected:
        raise ModelExportError(f"{type(model).__name__} was built and trained for {expected} particles per jet, the "
                               f"example input has {example.shape[1]}: compile it with inputs of shape "
                               f"(B, {expected}, {example.shape[2]})")
    wide = sorted({n for n, t in list(model.named_parameters()) + list(model.named_buffers())
                   if t.dtype == torch.float64})
    if wide or example.dtype == torch.float64:
        what = f"parameters {', '.join(wide[:3])}{', ...' if len(wide) > 3 else ''}" if wide else "the example input"
        raise ModelExportError(f"{what} are float64; allo_ext compiles float32 models: call model.float() and "
                               f"pass float32 inputs")


def _export_failure(e: Exception) -> ModelExportError:
    """torch.export's long reports (graphs, links) -> one line with the model's own source line."""
    text = str(e)
    m = re.search(r'The following call raised this error:\s*File "([^"]+)", line (\d+), in \w+\s*\n\s*(.+)', text)
    where = f" at {m.group(1)}:{m.group(2)} (`{m.group(3).strip()}`)" if m else ""
    if "data-dependent" in text or type(e).__name__ == "GuardOnDataDependentSymNode":
        return ModelExportError(f"the model has control flow that depends on the input values{where}: a compiled "
                                f"model runs the same operations for every jet; replace the `if` by torch.where "
                                f"or move it out of forward")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    return ModelExportError(f"torch.export cannot trace the model{where}: {first[:300]}")


def export(model: torch.nn.Module, example: torch.Tensor, _stacklevel: int = 1) -> torch.export.ExportedProgram:
    """``torch.export`` in eval mode (a model in training mode is copied and switched, with a warning);
    the user's model object is never modified."""
    _warn_if_training(model, _stacklevel + 1)
    check_exportable(model, example)
    m = prepare_for_export(model).eval()
    # On failure torch prints and logs the partial graph (twice) before raising; the error below says
    # what matters. On success whatever it wrote is passed on.
    logging.disable(logging.WARNING)
    captured = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stderr(captured):
            ep = torch.export.export(m, (example,))
    except (RuntimeError, torch._dynamo.exc.TorchDynamoException) as e:
        raise _export_failure(e) from e
    finally:
        logging.disable(logging.NOTSET)
    sys.stderr.write(captured.getvalue())
    return ep


def trace(model: torch.nn.Module, example: torch.Tensor, top_name: str = "forward", target: str = "llvm",
          _stacklevel: int = 1, precision=None) -> Schedule:
    """The model as an unscheduled Schedule: a top function calling library kernels."""
    ep = export(model, example, _stacklevel=_stacklevel + 1)
    mb, top = GraphImporter(ep, top_name, target, precision=precision).run()
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
                 batch_size: int | None = None, precision=None, **build_options):
    """Compile ``model`` for ``target``.

    ``example_inputs`` is a tensor (or a 1-tuple) of shape (B, ...); only its per-item shape and
    dtype matter. ``batch_size`` is the batch the module is compiled for (default 256 on the CPU,
    1 elsewhere: hardware takes one jet per call and the C simulation loops over the batch).
    ``schedule`` is the profile each library kernel's schedule is applied with ("default" or
    "latency"). ``precision`` (default float32): a fixed-point type for the whole model
    (``"ap_fixed<16,6>"`` or ``Fixed(16, 10)``) or a dict by node name / op kind with ``"default"``
    and ``"accum"`` (see ``allo_ext.frontend.precision``; ``allo_ext.quant.calibrate`` makes one).
    A fixed-point model takes float32 inputs (quantised on the way in) and returns float64 values.
    """
    if isinstance(example_inputs, (tuple, list)):
        if len(example_inputs) != 1:
            raise NotImplementedError("models with more than one input are not supported yet")
        example_inputs = example_inputs[0]
    example = torch.as_tensor(example_inputs)
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise CallError(f"from_pytorch: batch_size must be a positive integer (jets per compiled call) or None for "
                        f"the target's default, got {batch_size!r}")
    chunk = batch_size or DEFAULT_CHUNK.get(target, 1)
    item_shape = tuple(example.shape[1:])
    reps = (chunk + example.shape[0] - 1) // max(example.shape[0], 1)
    x = example.repeat((reps,) + (1,) * len(item_shape))[:chunk].contiguous() if example.shape[0] else \
        torch.zeros((chunk,) + item_shape, dtype=example.dtype)
    t0 = time.perf_counter()
    s = trace(model, x, target=target, _stacklevel=2, precision=precision)
    t1 = time.perf_counter()
    apply_schedules(s, schedule)
    module = s.build(target=target, **build_options)
    t2 = time.perf_counter()
    timings = {"export_and_import_s": t1 - t0, "schedule_and_build_s": t2 - t1}
    if target == "llvm":
        return CompiledModel(s, module, chunk, item_shape, target, timings)
    return module
