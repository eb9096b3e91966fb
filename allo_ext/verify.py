"""Cross-backend verification: one model, one batch of jets, every backend against torch eager.

    rows = verify(model, X, y)                   # X: (B, N, F) float32, already normalised
    console.print(render_table(rows))
    if any(r.failed for r in rows): ...

Each row holds the backend's maximum absolute error of the log-probabilities against torch, the
fraction of jets whose argmax (predicted class) agrees with torch's, and the accuracy against
``y``. Row ``status``:

- ``reference``: torch itself (its accuracy is the one the backends are compared with);
- ``ok``: built, ran, and within ``atol`` of torch;
- ``mismatch``: built and ran, but the error exceeds ``atol`` (or the output is not finite);
- ``skipped``: cannot be built on this machine because a tool is missing (``ToolNotFoundError``)
  or the target is not part of this allo_ext yet; ``message`` says why and how to fix it;
- ``error``: anything else went wrong; ``message`` holds the error.

``failed`` is true for ``mismatch`` and ``error``. No backend is ever left out silently.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .lang.errors import ToolNotFoundError

DEFAULT_BACKENDS = ("llvm", "csim", "rtl")
DEFAULT_ATOL = 1e-4


class BackendUnavailable(RuntimeError):
    """The backend is not part of this build (shown as a skipped row, like a missing tool)."""


@dataclass
class VerifyRow:
    backend: str
    status: str
    n: int
    max_abs_err: float | None = None
    argmax_agreement: float | None = None
    accuracy: float | None = None
    build_s: float | None = None
    run_s: float | None = None
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("mismatch", "error")

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "reference")

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok, "failed": self.failed}


# A builder takes (model in eval mode, example input (1, N, F), schedule profile) and returns a
# callable mapping (B, N, F) float32 numpy to (B, K) log-probabilities.
Builder = Callable[[torch.nn.Module, torch.Tensor, str], Callable[[np.ndarray], np.ndarray]]


def _build_llvm(model, example, schedule):
    from .frontend import from_pytorch

    return from_pytorch(model, example, target="llvm", schedule=schedule)


def _per_item(kernel, item_shape: tuple[int, ...]):
    """Adapt an HLS-style kernel compiled for one jet per call (input (1, N, F)) to (B, N, F)."""
    ports = [p for p in getattr(kernel, "inputs", [])]
    shape = tuple(ports[0].shape) if ports else None

    def run(x: np.ndarray) -> np.ndarray:
        if shape == item_shape:
            return np.asarray(kernel(x))
        if shape == (1,) + item_shape:
            out = np.asarray(kernel(np.ascontiguousarray(x[:, None])))
            return out.reshape(out.shape[0], -1)
        raise RuntimeError(f"the compiled kernel takes input shape {shape}, which fits neither one jet "
                           f"{(1,) + item_shape} nor {item_shape}")

    return run


def _build_csim(model, example, schedule):
    from .frontend import from_pytorch

    kernel = from_pytorch(model, example, target="vitis_hls", mode="csim", schedule=schedule)
    return kernel if hasattr(kernel, "in_shape") else _per_item(kernel, tuple(example.shape[1:]))


RTL_PRECISION = "ap_fixed<16,6>"
# Jets the rtl row simulates. Models the latency route can trace (every JetFormer/MLP op here) become
# one da4ml pipeline with II = 1: all jets stream through one simulation, a few hundred cost a few
# hundred clocks plus the latency. Anything else takes the handshake route (one dynamically scheduled
# design per jet, minutes of Icarus CPU per JetFormer jet): it checks RTL_JETS_HANDSHAKE jets.
RTL_JETS = 300
RTL_JETS_HANDSHAKE = 1
# Wall-clock budget of the rtl row's simulation run (None: wait for it). ``make demo`` sets one, so
# that a machine too slow for it gets a "skipped" row naming the budget, not a long wait.
RTL_SECONDS: float | None = None


class _FixedPoint:
    """The rtl row's runner: the model at ``RTL_PRECISION`` through RTL simulation on the first jets,
    and the C simulation at the same precision on the same jets: the row passes when the two are
    bit-identical (the float tolerance does not apply to fixed point). The static (latency) route is
    used where the model traces into it; the handshake route otherwise."""

    def __init__(self, model, example, schedule):
        from .backends.latency import StaticLoweringError
        from .frontend import from_pytorch

        try:
            self.rtl = from_pytorch(model, example, target="rtl", schedule="latency", precision=RTL_PRECISION)
            self.route, self.jets = "latency", RTL_JETS
            self.rtl.simulator()  # the simulator build (minutes in Verilator) is build time, not jets/s
        except StaticLoweringError as e:
            self.rtl = from_pytorch(model, example, target="rtl", schedule=schedule, precision=RTL_PRECISION)
            self.route, self.jets = "handshake", RTL_JETS_HANDSHAKE
            self.static_refusal = str(e).splitlines()[0]
        csim = from_pytorch(model, example, target="vitis_hls", mode="csim", schedule=schedule,
                            precision=RTL_PRECISION)
        self.csim = csim if hasattr(csim, "in_shape") else _per_item(csim, tuple(example.shape[1:]))

    def run(self, Xs: np.ndarray) -> np.ndarray:
        n = len(Xs)
        if self.route == "latency":  # one simulation, every jet streamed one per clock
            return np.asarray(self.rtl(Xs), dtype=np.float64).reshape(n, -1)
        return np.stack([np.asarray(self.rtl(Xs[i:i + 1])).reshape(-1) for i in range(n)])

    def describe(self) -> str:
        cycles = getattr(self.rtl, "cycles", None)
        if self.route == "latency":
            sim = getattr(self.rtl, "_sim", None)
            tool = sim.simulator.capitalize() if sim is not None else "RTL"
            return (f"latency route (da4ml pipeline, {tool}): {cycles} cycles from input to output at "
                    f"{self.rtl.clock_ns:g} ns, II={self.rtl.ii}, jets streamed one per clock")
        return f"handshake route (Icarus): {cycles} cycles per jet"


def _build_rtl(model, example, schedule):
    from .backends import TARGETS

    if "rtl" not in TARGETS:
        raise BackendUnavailable(f"the rtl target is not part of this allo_ext yet "
                                 f"(allo_ext.backends.TARGETS = {', '.join(TARGETS)})")
    return _FixedPoint(model, example, schedule)


def _run_fixed_point(name, runner: _FixedPoint, X, y, ref, build_s) -> VerifyRow:
    n = min(runner.jets, len(X))
    Xs = np.ascontiguousarray(X[:n])
    from .backends.rtl.simulate import RTLSimulationError

    t1 = time.perf_counter()
    runner.rtl.sim_timeout = RTL_SECONDS
    try:
        out = runner.run(Xs)
    except ToolNotFoundError as e:
        return VerifyRow(name, "skipped", n, build_s=build_s, message=f"skipped: {e}")
    except RTLSimulationError as e:
        if RTL_SECONDS is None or "ran longer than" not in str(e):
            return VerifyRow(name, "error", n, build_s=build_s, message=f"run failed: {_short(e)}")
        return VerifyRow(name, "skipped", n, build_s=build_s, run_s=time.perf_counter() - t1,
                         message=f"skipped: the {runner.route} route's RTL simulation of {n} jet(s) needs more "
                                 f"than the {RTL_SECONDS:g} s budget (allo_ext.verify.RTL_SECONDS) on this "
                                 f"machine; nothing was compared. Run verify with RTL_SECONDS = None to wait for it")
    except Exception as e:
        return VerifyRow(name, "error", n, build_s=build_s, message=f"run failed: {_short(e)}")
    run_s = time.perf_counter() - t1
    try:
        want = np.asarray(runner.csim(Xs)).reshape(n, -1)
    except Exception as e:
        return VerifyRow(name, "error", n, build_s=build_s, run_s=run_s, message=f"csim at {RTL_PRECISION} failed: "
                         f"{_short(e)}")
    err = float(np.abs(out - ref[:n].astype(np.float64)).max())
    agree = float((out.argmax(axis=1) == ref[:n].argmax(axis=1)).mean())
    acc = _accuracy(out, None if y is None else y[:n])
    what = (f"fixed point {RTL_PRECISION} on the first {n} of {len(X)} jets, {runner.describe()}; max|Δlogp| and "
            f"agree are against float torch; the pass criterion is bit-identity with csim at {RTL_PRECISION}")
    same = out.shape == want.shape and np.array_equal(out, want)
    if not same:
        bad = int((out != want).any(axis=1).sum()) if out.shape == want.shape else n
        return VerifyRow(name, "mismatch", n, err, agree, acc, build_s, run_s,
                         f"{what}: {bad} of {n} jets differ from csim")
    return VerifyRow(name, "ok", n, err, agree, acc, build_s, run_s, f"{what}: bit-identical on all {n}")


BUILDERS: dict[str, Builder] = {"llvm": _build_llvm, "csim": _build_csim, "rtl": _build_rtl}


def _torch_log_probs(model: torch.nn.Module, X: np.ndarray, batch: int = 1024) -> np.ndarray:
    with torch.no_grad():
        outs = [model(torch.from_numpy(X[i:i + batch])).float().numpy() for i in range(0, len(X), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def _accuracy(log_probs: np.ndarray, y: np.ndarray | None) -> float | None:
    return None if y is None else float((log_probs.argmax(axis=1) == y).mean())


def _short(e: BaseException, limit: int = 600) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def verify(model: torch.nn.Module, X, y=None, backends: Iterable[str | tuple[str, Builder]] | None = None, *,
           schedule: str = "default", atol: float = DEFAULT_ATOL,
           on_row: Callable[[VerifyRow], None] | None = None,
           on_start: Callable[[str], None] | None = None) -> list[VerifyRow]:
    """Run ``model`` on ``X`` (B, N, F) in torch eager and on each backend; one row per backend,
    torch's own row first. ``backends`` holds names from BUILDERS ("llvm", "csim", "rtl"; default:
    all) or (name, builder) pairs. ``y`` (B,) class labels adds accuracies. ``on_start(name)`` and
    ``on_row(row)`` report progress."""
    X = np.ascontiguousarray(np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float32))
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"verify needs a non-empty batch X of shape (B, N, F), got {X.shape}")
    if y is not None:
        y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).astype(np.int64)
        if y.shape != (len(X),):
            raise ValueError(f"y must be ({len(X)},) class labels for X of shape {X.shape}, got {y.shape}")
    model = model.eval()
    entries = []
    for b in (DEFAULT_BACKENDS if backends is None else backends):
        if isinstance(b, str):
            if b not in BUILDERS:
                raise ValueError(f"unknown backend {b!r}; choose from {', '.join(BUILDERS)}")
            entries.append((b, BUILDERS[b]))
        else:
            entries.append(tuple(b))

    def emit(row: VerifyRow) -> VerifyRow:
        if on_row is not None:
            on_row(row)
        return row

    if on_start is not None:
        on_start("torch")
    t0 = time.perf_counter()
    ref = _torch_log_probs(model, X)
    rows = [emit(VerifyRow("torch", "reference", len(X), 0.0, 1.0, _accuracy(ref, y),
                           run_s=time.perf_counter() - t0, message="PyTorch eager (eval mode): the reference"))]
    example = torch.from_numpy(X[:1].copy())
    for name, builder in entries:
        if on_start is not None:
            on_start(name)
        rows.append(emit(_run_backend(name, builder, model, example, X, y, ref, schedule, atol)))
    return rows


def _run_backend(name, builder, model, example, X, y, ref, schedule, atol) -> VerifyRow:
    t0 = time.perf_counter()
    try:
        fn = builder(model, example, schedule)
    except (ToolNotFoundError, BackendUnavailable) as e:
        return VerifyRow(name, "skipped", len(X), build_s=time.perf_counter() - t0, message=f"skipped: {e}")
    except Exception as e:  # every other failure becomes a visible error row, never a crash of the table
        return VerifyRow(name, "error", len(X), build_s=time.perf_counter() - t0, message=f"build failed: {_short(e)}")
    # A CompiledModel compiles the modules for small batches on first use: compile them here, so
    # that their compile counts as build time and the jets/s column times a warm module.
    prepare = getattr(fn, "prepare", None)
    if callable(prepare):
        try:
            prepare(len(X))
        except Exception as e:
            return VerifyRow(name, "error", len(X), build_s=time.perf_counter() - t0,
                             message=f"build failed: {_short(e)}")
    build_s = time.perf_counter() - t0
    if isinstance(fn, _FixedPoint):
        return _run_fixed_point(name, fn, X, y, ref, build_s)
    t1 = time.perf_counter()
    try:
        out = np.asarray(fn(X), dtype=np.float32)
    except ToolNotFoundError as e:
        return VerifyRow(name, "skipped", len(X), build_s=build_s, message=f"skipped: {e}")
    except Exception as e:
        return VerifyRow(name, "error", len(X), build_s=build_s, message=f"run failed: {_short(e)}")
    run_s = time.perf_counter() - t1
    if out.shape != ref.shape:
        return VerifyRow(name, "error", len(X), build_s=build_s, run_s=run_s,
                         message=f"output shape {out.shape}, torch gives {ref.shape}")
    agree = float((out.argmax(axis=1) == ref.argmax(axis=1)).mean())
    finite = np.isfinite(out)
    if not finite.all():
        bad = int((~finite.all(axis=1)).sum())
        return VerifyRow(name, "mismatch", len(X), float("nan"), agree, _accuracy(out, y), build_s, run_s,
                         f"{bad} of {len(X)} jets have NaN/inf log-probabilities")
    err = float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max())
    status = "ok" if err <= atol else "mismatch"
    msg = "" if status == "ok" else f"max |error| {err:.3g} exceeds the tolerance {atol:g}"
    return VerifyRow(name, status, len(X), err, agree, _accuracy(out, y), build_s, run_s, msg)


def failures(rows: Sequence[VerifyRow]) -> list[VerifyRow]:
    return [r for r in rows if r.failed]


_STYLE = {"reference": "cyan", "ok": "green", "mismatch": "bold red", "error": "bold red", "skipped": "yellow"}


def render_table(rows: Sequence[VerifyRow], title: str | None = None):
    """A rich renderable: the table (status; max|Δlogp|, the largest absolute log-probability
    difference to torch; agree, the argmax agreement with torch; accuracy against the labels;
    build seconds; jets per second of the run) and,
    under it, one note per row that has a message (why it was skipped, the error)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    n = rows[0].n if rows else 0
    t = Table(title=title or f"Cross-backend verification on {n} jets (against PyTorch)")
    # Short headers keep the table within 80 columns; the module docstring defines each.
    for col in ("backend", "status", "max|Δlogp|", "agree", "accuracy", "build s", "jets/s"):
        t.add_column(col, justify="left" if col in ("backend", "status") else "right", no_wrap=True)
    notes = []
    for r in rows:
        rate = f"{r.n / r.run_s:,.0f}" if r.run_s else "-"
        t.add_row(r.backend, f"[{_STYLE.get(r.status, '')}]{r.status}",
                  "-" if r.max_abs_err is None else f"{r.max_abs_err:.2e}",
                  "-" if r.argmax_agreement is None else f"{r.argmax_agreement:.4f}",
                  "-" if r.accuracy is None else f"{r.accuracy:.4f}",
                  "-" if r.build_s is None else f"{r.build_s:.1f}", rate)
        if r.message and r.status != "reference":
            notes.append(Text.assemble((f"{r.backend}: ", "bold"), (r.message, _STYLE.get(r.status, ""))))
    return Group(t, *notes)
