"""``from_pytorch``: a torch model in, a compiled callable (or HLS project) out."""
from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import time
import warnings

import numpy as np
import torch

from ..kernels import apply_schedules
from ..lang.errors import CallError
from ..schedule import Schedule
from . import lowerings, lowerings_indexing, lowerings_pointwise  # noqa: F401  (register the lowerings)
from .batch_check import check_batch_independence
from .custom_ops import prepare_for_export
from .decompose import decompose_missing
from .errors import ModelExportError
from .importer import IGNORED, GraphImporter, find_lowering

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


def _as_tuple(example) -> tuple:
    return tuple(example) if isinstance(example, (tuple, list)) else (example,)


def export(model: torch.nn.Module, example, _stacklevel: int = 1,
           check_batch: bool = True) -> torch.export.ExportedProgram:
    """``torch.export`` in eval mode (a model in training mode is copied and switched, with a warning);
    the user's model object is never modified. ``example`` is a tensor or a tuple of tensors (one per
    model input). The model is refused if an op mixes the jets of the batch (``check_batch``); ops
    without a lowering are decomposed with torch's own decomposition of that op, in-place ops are
    functionalised and autocast regions inlined."""
    _warn_if_training(model, _stacklevel + 1)
    examples = _as_tuple(example)
    check_exportable(model, torch.as_tensor(examples[0]))
    m = prepare_for_export(model).eval()
    # On failure torch prints and logs the partial graph (twice) before raising; the error below says
    # what matters. On success whatever it wrote is passed on.
    logging.disable(logging.WARNING)
    captured = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stderr(captured):
            ep = torch.export.export(m, examples)
    except (RuntimeError, torch._dynamo.exc.TorchDynamoException) as e:
        raise _export_failure(e) from e
    finally:
        logging.disable(logging.NOTSET)
    sys.stderr.write(captured.getvalue())
    if check_batch:
        check_batch_independence(m, examples)
    ep, roots = decompose_missing(ep, lambda t: find_lowering(t) is not None, IGNORED)
    ep.allo_decomposed_from = roots  # read by GraphImporter's errors
    return ep


def trace(model: torch.nn.Module, example, top_name: str = "forward", target: str = "llvm",
          _stacklevel: int = 1, precision=None) -> Schedule:
    """The model as an unscheduled Schedule: a top function calling library kernels."""
    ep = export(model, example, _stacklevel=_stacklevel + 1)
    mb, top = GraphImporter(ep, top_name, target, precision=precision).run()
    return Schedule(mb, top)


class CompiledModel:
    """A compiled model that takes any batch size: (B, ...) numpy or torch inputs in, numpy out
    (one array, or a tuple for a model with several outputs)."""

    def __init__(self, schedule: Schedule, module, chunk: int, in_shapes, target: str, timings: dict,
                 in_dtypes=None, out_dtypes=None):
        self.schedule = schedule
        self.module = module
        self.chunk = chunk
        self.in_shapes = [tuple(s) for s in in_shapes]  # per-item shapes
        self.in_shape = self.in_shapes[0]
        self.target = target
        self.timings = timings
        self.in_dtypes = in_dtypes or [torch.float32] * len(self.in_shapes)
        self.out_dtypes = out_dtypes

    def _input(self, k: int, x) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        shape = self.in_shapes[k]
        want = self.in_dtypes[k]
        what = f"input {k} " if len(self.in_shapes) > 1 else ""
        if want == torch.float32 and x.dtype != np.float32:
            raise CallError(f"expected float32 {what}of shape (B, {', '.join(map(str, shape))}), "
                            f"got dtype {x.dtype}; convert with x.astype(np.float32)")
        if x.shape[1:] != shape:
            raise CallError(f"expected {what}of shape (B, {', '.join(map(str, shape))}), got {x.shape}")
        return x.astype(np.float32)  # bools become 0/1, integers exact floats: the model computes in float32

    def __call__(self, *xs):
        if len(xs) != len(self.in_shapes):
            raise CallError(f"the model takes {len(self.in_shapes)} input(s), got {len(xs)}")
        xs = [self._input(k, x) for k, x in enumerate(xs)]
        n = xs[0].shape[0]
        if any(x.shape[0] != n for x in xs):
            raise CallError(f"all inputs must have the same batch size, got {[x.shape[0] for x in xs]}")
        res_types = self.module.res_types
        outs = [[] for _ in res_types]
        for start in range(0, n, self.chunk):
            parts = []
            for x, shape in zip(xs, self.in_shapes):
                part = x[start:start + self.chunk]
                if part.shape[0] < self.chunk:
                    pad = np.zeros((self.chunk - part.shape[0],) + shape, dtype=np.float32)
                    part = np.concatenate([part, pad])
                parts.append(np.ascontiguousarray(part))
            res = self.module(*parts)
            res = res if isinstance(res, (tuple, list)) else (res,)
            for o, r in zip(outs, res):
                o.append(r[: min(self.chunk, n - start)])
        arrays = [np.concatenate(o) if o else np.zeros((0,) + tuple(t.shape[1:]), dtype=np.float32)
                  for o, t in zip(outs, res_types)]
        if self.out_dtypes:
            arrays = [a if dt == torch.float32 else a.astype(torch.empty(0, dtype=dt).numpy().dtype)
                      for a, dt in zip(arrays, self.out_dtypes)]
        return arrays[0] if len(arrays) == 1 else tuple(arrays)

    def __getattr__(self, name):
        return getattr(self.module, name)


def from_pytorch(model: torch.nn.Module, example_inputs, target: str = "llvm", schedule: str = "default",
                 batch_size: int | None = None, precision=None, **build_options):
    """Compile ``model`` for ``target``.

    ``example_inputs`` is a tensor of shape (B, ...), or a tuple of them for a model with several
    inputs (e.g. features, four-vectors and a mask); only their per-item shapes and dtypes matter. ``batch_size`` is the batch the module is compiled for (default 256 on the CPU,
    1 elsewhere: hardware takes one jet per call and the C simulation loops over the batch).
    ``schedule`` is the profile each library kernel's schedule is applied with ("default" or
    "latency"). ``precision`` (default float32): a fixed-point type for the whole model
    (``"ap_fixed<16,6>"`` or ``Fixed(16, 10)``) or a dict by node name / op kind with ``"default"``
    and ``"accum"`` (see ``allo_ext.frontend.precision``; ``allo_ext.quant.calibrate`` makes one).
    A fixed-point model takes float32 inputs (quantised on the way in) and returns float64 values.
    """
    examples = [torch.as_tensor(e) for e in _as_tuple(example_inputs)]
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise CallError(f"from_pytorch: batch_size must be a positive integer (jets per compiled call) or None for "
                        f"the target's default, got {batch_size!r}")
    chunk = batch_size or DEFAULT_CHUNK.get(target, 1)
    xs = tuple(_batch_of(e, chunk) for e in examples)
    t0 = time.perf_counter()
    ep = export(model, xs, _stacklevel=2)
    if target == "rtl" and schedule == "latency":
        # The latency profile on RTL is the static route: the kernels traced into a da4ml pipeline
        # (allo_ext.backends.latency); the handshake route stays the one for every other schedule.
        from ..backends.latency import build_latency

        if chunk != 1:
            raise CallError(f"from_pytorch: target='rtl', schedule='latency' takes one jet per clock (II=1); "
                            f"batch_size must be 1 or None, got {batch_size}")
        return build_latency(ep, precision, **build_options)
    importer = GraphImporter(ep, "forward", target, precision=precision)
    mb, top = importer.run()
    s = Schedule(mb, top)
    t1 = time.perf_counter()
    apply_schedules(s, schedule)
    module = s.build(target=target, **build_options)
    t2 = time.perf_counter()
    timings = {"export_and_import_s": t1 - t0, "schedule_and_build_s": t2 - t1}
    if target == "llvm":
        return CompiledModel(s, module, chunk, [tuple(e.shape[1:]) for e in examples], target, timings,
                             importer.in_dtypes, importer.out_dtypes)
    return module


def _batch_of(example: torch.Tensor, chunk: int) -> torch.Tensor:
    """``example`` repeated (or cut) to ``chunk`` items: the batch the module is compiled for."""
    item_shape = tuple(example.shape[1:])
    if not example.shape[0]:
        return torch.zeros((chunk,) + item_shape, dtype=example.dtype)
    reps = (chunk + example.shape[0] - 1) // example.shape[0]
    return example.repeat((reps,) + (1,) * len(item_shape))[:chunk].contiguous()
