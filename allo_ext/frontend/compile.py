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

# Per-call batch the CPU module is compiled for; bigger batches are cut into chunks of this size and
# the rest runs on modules compiled on first use for powers of two below it (see batch_plan).
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


def batch_plan(n: int, chunk: int) -> list[int]:
    """The module sizes one call of ``n`` jets runs: full chunks, then the remainder as a sum of
    powers of two (257 with chunk 256 -> [256, 1]; 5 -> [4, 1]). They add up to ``n`` exactly, so no
    call computes a padding jet, and at most log2(chunk) + 1 sizes are ever compiled."""
    plan = [chunk] * (n // chunk)
    rest = n % chunk
    bit = 1 << max(rest.bit_length() - 1, 0)
    while rest:
        if rest >= bit:
            plan.append(bit)
            rest -= bit
        bit >>= 1
    return plan


class CompiledModel:
    """A compiled model that takes any batch size: (B, ...) numpy or torch inputs in, numpy out
    (one array, or a tuple for a model with several outputs).

    A call runs the module compiled for ``chunk`` jets on whole chunks and smaller modules
    (powers of two, compiled on first use and kept) on the rest (see ``batch_plan``), so one jet
    costs one jet's work. ``last_plan`` is the list of module sizes the last call ran and
    ``jets_computed`` the total number of jets the modules have computed."""

    def __init__(self, schedule: Schedule, module, chunk: int, in_shapes, target: str, timings: dict,
                 in_dtypes=None, out_dtypes=None, builder=None):
        self.schedule = schedule
        self.module = module
        self.chunk = chunk
        self.in_shapes = [tuple(s) for s in in_shapes]  # per-item shapes
        self.in_shape = self.in_shapes[0]
        self.target = target
        self.timings = timings
        self.in_dtypes = in_dtypes or [torch.float32] * len(self.in_shapes)
        self.out_dtypes = out_dtypes
        self.modules = {chunk: module}  # batch size -> compiled module
        self._builder = builder  # batch size -> module, for the sizes compiled on first use
        self.last_plan: list[int] = []
        self.jets_computed = 0

    def module_for(self, size: int):
        """The module compiled for ``size`` jets per call (compiled now if it is new)."""
        if size not in self.modules:
            if self._builder is None:
                raise CallError(f"no module for {size} jets per call and no way to compile one")
            t0 = time.perf_counter()
            self.modules[size] = self._builder(size)
            self.timings.setdefault("lazy_build_s", {})[size] = time.perf_counter() - t0
        return self.modules[size]

    def prepare(self, n: int) -> list[int]:
        """Compile now every module a call of ``n`` jets will run (so that timing that call times
        no compile); returns the batch plan."""
        plan = batch_plan(n, self.chunk)
        for size in set(plan):
            self.module_for(size)
        return plan

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
        plan = batch_plan(n, self.chunk)
        outs = [[] for _ in res_types]
        start = 0
        for size in plan:
            module = self.module_for(size)
            res = module(*[np.ascontiguousarray(x[start:start + size]) for x in xs])
            res = res if isinstance(res, (tuple, list)) else (res,)
            for o, r in zip(outs, res):
                o.append(r)
            start += size
        self.last_plan = plan
        self.jets_computed += sum(plan)
        arrays = [(o[0] if len(o) == 1 else np.concatenate(o)) if o
                  else np.zeros((0,) + tuple(t.shape[1:]), dtype=np.float32) for o, t in zip(outs, res_types)]
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
    inputs (e.g. features, four-vectors and a mask); only their per-item shapes and dtypes matter.
    ``batch_size`` is the batch the module is compiled for (default 256 on the CPU, 1 elsewhere:
    hardware takes one jet per call and the C simulation loops over the batch). On the CPU a call
    runs bigger batches in chunks of it and the rest on modules for powers of two below it, compiled
    on first use (about a second each) and kept: a call never computes padding jets.
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
    t0 = time.perf_counter()
    if target == "rtl" and schedule == "latency":
        # The latency profile on RTL is the static route: the kernels traced into a da4ml pipeline
        # (allo_ext.backends.latency); the handshake route stays the one for every other schedule.
        from ..backends.latency import build_latency

        if chunk != 1:
            raise CallError(f"from_pytorch: target='rtl', schedule='latency' takes one jet per clock (II=1); "
                            f"batch_size must be 1 or None, got {batch_size}")
        return build_latency(export(model, tuple(_batch_of(e, chunk) for e in examples), _stacklevel=2),
                             precision, **build_options)
    s, importer, module, (t_import, t_build) = _compile(model, examples, chunk, target, schedule, precision,
                                                        build_options, check_batch=True, stacklevel=3)
    timings = {"export_and_import_s": t_import, "schedule_and_build_s": t_build,
               "total_s": time.perf_counter() - t0}
    if target != "llvm":
        return module
    # Smaller batches get their own modules, compiled on first use from a private copy of the model
    # (the user may go on training theirs); the checks above already ran on this model.
    frozen = prepare_for_export(model).eval()

    def builder(size: int):
        return _compile(frozen, examples, size, target, schedule, precision, build_options,
                        check_batch=False, stacklevel=3)[2]

    return CompiledModel(s, module, chunk, [tuple(e.shape[1:]) for e in examples], target, timings,
                         importer.in_dtypes, importer.out_dtypes, builder=builder)


def estimate(model: torch.nn.Module, example_inputs, schedule: str = "latency", precision=None, target: str = "rtl",
             **options):
    """The compiler's static estimate of ``model`` for one jet, without building or simulating anything.

    ``target="rtl", schedule="latency"``: the statically scheduled fixed-point pipeline
    (``backends.latency.estimate``; options ``delay``, ``dsp_delay``, ``clock_ns``): a ``StaticEstimate``
    with cycles, stages, LUT, FF and DSP, modelled from the kernels' own operations (no da4ml, no RTL).
    Any other target or schedule: the HLS C++ build's estimate (``passes.estimate``, an ``Estimate``).
    """
    examples = [torch.as_tensor(e) for e in _as_tuple(example_inputs)]
    if target == "rtl" and schedule == "latency":
        from ..backends.latency.estimate import estimate_graph

        return estimate_graph(export(model, tuple(_batch_of(e, 1) for e in examples), _stacklevel=2), precision,
                              **options)
    from ..passes.estimate import estimate as estimate_schedule

    s, _importer, _module, _times = _compile(model, examples, 1, "vhls", schedule, precision, {}, check_batch=True,
                                             stacklevel=3)
    return estimate_schedule(s, **options)


def _compile(model, examples, size: int, target: str, schedule: str, precision, build_options,
             check_batch: bool, stacklevel: int):
    """Export ``model`` at ``size`` jets, import, schedule and build it:
    (Schedule, importer, module, (export+import seconds, schedule+build seconds))."""
    xs = tuple(_batch_of(e, size) for e in examples)
    t0 = time.perf_counter()
    ep = export(model, xs, _stacklevel=stacklevel, check_batch=check_batch)
    importer = GraphImporter(ep, "forward", target, precision=precision)
    mb, top = importer.run()
    s = Schedule(mb, top)
    t1 = time.perf_counter()
    apply_schedules(s, schedule)
    module = s.build(target=target, **build_options)
    return s, importer, module, (t1 - t0, time.perf_counter() - t1)


def _batch_of(example: torch.Tensor, chunk: int) -> torch.Tensor:
    """``example`` repeated (or cut) to ``chunk`` items: the batch the module is compiled for."""
    item_shape = tuple(example.shape[1:])
    if not example.shape[0]:
        return torch.zeros((chunk,) + item_shape, dtype=example.dtype)
    reps = (chunk + example.shape[0] - 1) // example.shape[0]
    return example.repeat((reps,) + (1,) * len(item_shape))[:chunk].contiguous()
