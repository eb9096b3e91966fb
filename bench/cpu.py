"""Benchmark: kernel-level CPU time of our llvm builds against torch eager, at JetFormer sizes.

For each kernel (B=1024 jets, L=9 tokens, C=8 and C=64 channels, H=2 heads) it builds the library
kernel with its registered schedule, checks the output against torch on the same inputs (max abs
error), and times both: ours through the CPUModule call (argument checks and the unwritten-output
scan included, as a user pays them) and the compiled function alone ("JIT only"), torch eager
under ``inference_mode`` with 1 and 2 threads. Each time is the median of ``--repeat`` timeit
runs after a warm-up (the JSON keeps the min too). Ratios are torch/ours, so
> 1 means our build is faster. Kernels not in ``allo_ext.kernels.nn`` yet are listed as missing.

    python -m bench.cpu [--quick] [--batch 1024] [--channels 8,64] [--kernels relu3d,softmax] [--repeat 7]

Writes bench/results/cpu.json and cpu.md (``--quick``: cpu-quick.*, so a smoke run never
overwrites the real table).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time
import timeit
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import track
from torch_mlir.runtime import get_ranked_memref_descriptor

from .common import machine_info, machine_line, markdown_table, write_results

L_TOKENS, HEADS, N_CLASSES = 9, 2, 5
THREADS = (1, 2)
# Agreement flag only (the error itself is reported): float32 reductions over up to 128 terms.
RTOL, ATOL = 1e-4, 1e-5


@dataclass
class Case:
    kernel: str  # factory name in allo_ext.kernels.nn
    label: str
    shape: str
    C: int | None
    make: Callable  # factory -> kernel function
    inputs: list  # numpy arrays, in the kernel's argument order
    torch_call: Callable[[], torch.Tensor]  # torch eager on the same data


def _t(*arrays):
    return [torch.from_numpy(a) for a in arrays]


def cases(B: int, C: int, rng: np.random.Generator) -> list[Case]:
    from allo_ext import float32 as f32

    def randn(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    L, H, C2 = L_TOKENS, HEADS, 2 * C
    out = []

    x, w, b = randn(B, L, C), randn(C, C, scale=C ** -0.5), randn(C)
    tx, tw, tb = _t(x, w, b)
    out.append(Case("linear3d", "linear3d C->C (bias)", f"({B},{L},{C})x({C},{C})", C,
                    lambda k: k(f32, B, L, C, C, bias=True), [x, w, b], lambda: F.linear(tx, tw, tb)))

    w2 = randn(C2, C, scale=C ** -0.5)
    tw2 = torch.from_numpy(w2)
    out.append(Case("linear3d", "linear3d C->2C (no bias)", f"({B},{L},{C})x({C2},{C})", C,
                    lambda k: k(f32, B, L, C, C2, bias=False), [x, w2], lambda: F.linear(tx, tw2)))

    # The same products in the CPU loop order the frontend uses on llvm: rows flattened to (B*L, C)
    # (a free view there), weights transposed once at compile time, 4-row register blocks.
    x2 = np.ascontiguousarray(x.reshape(B * L, C))
    tx2 = torch.from_numpy(x2)
    wt, w2t = np.ascontiguousarray(w.T), np.ascontiguousarray(w2.T)
    out.append(Case("linear2d", "linear C->C (bias), CPU order", f"({B * L},{C})x({C},{C})", C,
                    lambda k: k(f32, B * L, C, C, bias=True, loop_order="ikj"), [x2, wt, b],
                    lambda: F.linear(tx2, tw, tb)))
    out.append(Case("linear2d", "linear C->2C (no bias), CPU order", f"({B * L},{C})x({C},{C2})", C,
                    lambda k: k(f32, B * L, C, C2, bias=False, loop_order="ikj"), [x2, w2t],
                    lambda: F.linear(tx2, tw2)))

    # BatchNorm1d over the channels of the token tensor, laid out (B, C, L) as torch expects.
    xb = randn(B, C, L)
    gamma, beta, mean = randn(C), randn(C), randn(C)
    var = rng.uniform(0.5, 2.0, C).astype(np.float32)
    txb, tg, tbe, tm, tv = _t(xb, gamma, beta, mean, var)
    out.append(Case("batchnorm1d_3d", "batchnorm1d_3d", f"({B},{C},{L})", C,
                    lambda k: k(f32, B, C, L, eps=1e-5), [xb, gamma, beta, mean, var],
                    lambda: F.batch_norm(txb, tm, tv, tg, tbe, training=False, eps=1e-5)))

    out.append(Case("relu3d", "relu3d", f"({B},{L},{C})", C, lambda k: k(f32, B, L, C), [x],
                    lambda: torch.relu(tx)))

    wq, wk, wv, wo = (randn(C, C, scale=C ** -0.5) for _ in range(4))
    bo = randn(C)
    mha = torch.nn.MultiheadAttention(C, H, bias=True, batch_first=True)
    with torch.no_grad():  # q/k/v have no bias in JetFormer: zero it; out keeps its bias
        mha.in_proj_weight.copy_(torch.from_numpy(np.concatenate([wq, wk, wv])))
        mha.in_proj_bias.zero_()
        mha.out_proj.weight.copy_(torch.from_numpy(wo))
        mha.out_proj.bias.copy_(torch.from_numpy(bo))
    mha.eval()
    out.append(Case("attention", f"attention H={H}", f"({B},{L},{C})", C, lambda k: k(f32, B, L, C, H),
                    [x, wq, wk, wv, wo, bo], lambda: mha(tx, tx, tx, need_weights=False)[0]))
    return out


def shared_cases(B: int, rng: np.random.Generator) -> list[Case]:
    """Kernels whose sizes do not depend on C."""
    from allo_ext import float32 as f32

    L, H = L_TOKENS, HEADS
    sc = rng.standard_normal((B, H, L, L)).astype(np.float32)  # attention scores: a row per (jet, head, query)
    z = rng.standard_normal((B, N_CLASSES)).astype(np.float32)
    tsc, tz = torch.from_numpy(sc), torch.from_numpy(z)
    return [Case("softmax", "softmax (scores)", f"({B},{H},{L},{L})", None, lambda k: k(f32, (B, H, L, L)), [sc],
                 lambda: torch.softmax(tsc, dim=-1)),
            Case("log_softmax", "log_softmax (head)", f"({B},{N_CLASSES})", None,
                 lambda k: k(f32, (B, N_CLASSES), -1), [z], lambda: F.log_softmax(tz, dim=-1))]


def seconds(fn: Callable, repeat: int, min_time: float) -> tuple[float, float]:
    """(median, min) time of one call: warm up, size ``number`` so a run lasts ``min_time``, then
    ``repeat`` runs. The min is kept too: on a shared machine it shows what a quiet run gives."""
    fn()
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_time / one))
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number, min(runs) / number


def jit_only(f, inputs: list) -> Callable[[], None]:
    """The compiled function alone, on descriptors packed once: what the call costs without the
    Python-side packing, output allocation and unwritten-output scan of ``CPUModule.__call__``.
    Mirrors that method's calling convention (inputs, then one out-parameter per result)."""
    arrays = [np.ascontiguousarray(a) for a in inputs] + [np.empty(t.shape, t.dtype.numpy) for t in f.res_types]
    packed = [ctypes.pointer(ctypes.pointer(get_ranked_memref_descriptor(a))) for a in arrays]

    def call(keep=arrays):  # the descriptors hold raw data pointers: the arrays must outlive them
        f.engine.invoke(f.name, *packed)

    return call


def run_case(case: Case, nn, repeat: int, min_time: float) -> dict:
    row = {"kernel": case.kernel, "label": case.label, "shape": case.shape, "C": case.C}
    factory = getattr(nn, case.kernel, None) if nn is not None else None
    if factory is None:
        return {**row, "status": "missing"}
    import allo_ext
    from allo_ext.kernels.registry import apply_schedules

    try:
        t0 = time.perf_counter()
        s = allo_ext.customize(case.make(factory))
        apply_schedules(s)
        frontend = time.perf_counter() - t0
        f = s.build(target="llvm")
        ours = f(*case.inputs)
    except Exception as e:  # noqa: BLE001 - a kernel under construction must not stop the other rows
        return {**row, "status": "error", "error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
    with torch.inference_mode():
        ref = case.torch_call().numpy()
    err = float(np.max(np.abs(ours.astype(np.float64) - ref))) if ours.shape == ref.shape else float("nan")
    ours_s, ours_min = seconds(lambda: f(*case.inputs), repeat, min_time)
    jit_s, jit_min = seconds(jit_only(f, case.inputs), repeat, min_time)
    torch_s, torch_min = {}, {}
    for n in THREADS:
        torch.set_num_threads(n)
        with torch.inference_mode():
            torch_s[str(n)], torch_min[str(n)] = seconds(case.torch_call, repeat, min_time)
    return {**row, "status": "ok", "ours_ms": ours_s * 1e3, "ours_min_ms": ours_min * 1e3,
            "ours_jit_only_ms": jit_s * 1e3, "ours_jit_only_min_ms": jit_min * 1e3,
            "torch_ms": {n: t * 1e3 for n, t in torch_s.items()},
            "torch_min_ms": {n: t * 1e3 for n, t in torch_min.items()},
            "torch_over_ours": {n: t / ours_s for n, t in torch_s.items()},
            "compile_s": f.compile_seconds, "frontend_s": frontend, "max_abs_err": err,
            "agrees": bool(ours.shape == ref.shape and np.allclose(ours, ref, rtol=RTOL, atol=ATOL))}


def _ms(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def to_markdown(result: dict) -> str:
    headers = ["kernel", "shape", "ours (ms)", "ours, JIT only (ms)"] + [f"torch {n}T (ms)" for n in THREADS] + \
              [f"torch {n}T / ours" for n in THREADS] + ["JIT compile (s)", "max abs err"]
    rows = []
    for r in result["results"]:
        if r["status"] != "ok":
            rows.append([r["label"], r["shape"], r["status"]] + ["-"] * (len(headers) - 3))
            continue
        flag = "" if r["agrees"] else " (!)"
        rows.append([r["label"], r["shape"], _ms(r["ours_ms"]), _ms(r["ours_jit_only_ms"])]
                    + [_ms(r["torch_ms"][str(n)]) for n in THREADS]
                    + [f"{r['torch_over_ours'][str(n)]:.2f}" for n in THREADS]
                    + [f"{r['compile_s']:.2f}", f"{r['max_abs_err']:.1e}{flag}"])
    cfg = result["config"]
    notes = [f"B={cfg['batch']}, L={L_TOKENS}, H={HEADS}, float32. Median of {cfg['repeat']} timeit runs after "
             "warm-up (the JSON also has the min). Ours: the llvm build with the kernel's default schedule, "
             "single-threaded, called from Python (argument checks, output allocation and the unwritten-output "
             "scan included); 'JIT only' invokes the compiled function on descriptors packed once. Torch: eager, "
             "inference_mode. Machines are shared: 2-thread torch suffers most when the other core is busy "
             f"(1-min load {result['machine']['load_avg_1min']} before, {result['load_avg_after']} after).",
             "torch/ours > 1 means our build is faster. JIT compile = CPUModule.compile_seconds (lowering and "
             "LLVM JIT at O2; customize and schedules are `frontend_s` in the JSON). '(!)' marks outputs that "
             f"differ from torch beyond rtol={RTOL}, atol={ATOL}."]
    errors = [f"- {r['label']}: {r['error']}" for r in result["results"] if r["status"] == "error"]
    text = (f"# CPU kernels: llvm build vs torch eager{' (quick)' if cfg['quick'] else ''}\n\n"
            f"{machine_line(result['machine'])}\n\n" + markdown_table(headers, rows, "ll" + "r" * (len(headers) - 2))
            + "\n" + "\n\n".join(notes) + "\n")
    if errors:
        text += "\nBuild errors:\n" + "\n".join(errors) + "\n"
    return text


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: B=64, C=8, 3 short repeats")
    ap.add_argument("--batch", type=int, default=None, help="jets per batch (default 1024; 64 with --quick)")
    ap.add_argument("--channels", default=None, help="comma-separated C values (default 8,64; 8 with --quick)")
    ap.add_argument("--kernels", default=None, help="comma-separated kernel names to run (default: all)")
    ap.add_argument("--repeat", type=int, default=None, help="timeit runs per measurement (default 7; 3 quick)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    batch = args.batch or (64 if args.quick else 1024)
    channels = [int(c) for c in (args.channels or ("8" if args.quick else "8,64")).split(",")]
    repeat = args.repeat or (3 if args.quick else 7)
    min_time = 0.005 if args.quick else 0.05

    rng = np.random.default_rng(args.seed)
    todo = [c for C in channels for c in cases(batch, C, rng)] + shared_cases(batch, rng)
    if args.kernels:
        wanted = set(args.kernels.split(","))
        todo = [c for c in todo if c.kernel in wanted]
    try:  # the kernel library is being written in parallel: report what is missing instead of crashing
        from allo_ext.kernels import nn
    except Exception as e:  # noqa: BLE001
        Console(stderr=True).print(f"[yellow]allo_ext.kernels.nn does not import ({e}); every kernel is missing")
        nn = None
    info = machine_info()  # before the run: its load average is the one the timings met
    threads_before = torch.get_num_threads()
    try:
        rows = [run_case(c, nn, repeat, min_time)
                for c in track(todo, description="timing kernels", transient=True)]
    finally:
        torch.set_num_threads(threads_before)
    result = {"machine": info,
              "config": {"batch": batch, "tokens": L_TOKENS, "heads": HEADS, "channels": channels, "repeat": repeat,
                         "min_time_s": min_time, "threads": list(THREADS), "quick": args.quick, "seed": args.seed},
              "results": rows, "load_avg_after": round(os.getloadavg()[0], 2)}
    md = to_markdown(result)
    js_path, md_path = write_results("cpu-quick" if args.quick else "cpu", result, md)
    print(md)
    print(f"wrote {js_path} and {md_path}")
    return result


if __name__ == "__main__":
    main()
