"""Benchmark: whole-model compile time and CPU throughput of ``from_pytorch(target="llvm")``.

Models: ``JetFormer.tiny()`` (8 particles x 3 features) and a ``JetFormer.hls4ml150()``-style
model on 32 particles x 3 features. For each:

- compile time, split into export+import and schedule+JIT. "cold" is the first model compiled in a
  fresh Python process (torch.export's one-off start-up included); "warm" is a second compile in
  the same process, which is what a user compiling several models pays per model;
- inference at B=1024 jets, median of ``--repeat`` runs after a warm-up, against torch eager with
  1 and 2 threads (``inference_mode``) and torch-mlir's generic linalg-on-tensors path through the
  same MLIR JIT (``allo_ext.testing.TorchMlirReference``), all on the same inputs, with the max abs
  difference to torch reported. Ratios are peer/ours: > 1 means we are faster.

    python -m bench.frontend [--quick] [--repeat 5]

Writes bench/results/frontend.json and frontend.md (``--quick``: frontend-quick.*).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results

MODELS = {
    "JetFormer.tiny (8x3)": ("tiny", 8),
    "JetFormer.hls4ml150-style (32x3)": ("hls4ml150", 32),
}


def _model(kind: str, n: int):
    from allo_ext.models import JetFormer

    torch.manual_seed(0)
    m = JetFormer.tiny() if kind == "tiny" else JetFormer.hls4ml150(n_particles=n, n_features=3)
    return m.eval()


def _median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cold_compile(kind: str, n: int) -> dict:
    """Compile in a fresh interpreter, so torch.export's start-up cost is counted once, as a user sees it."""
    code = ("import json,time,torch;t=time.perf_counter();"
            "from bench.frontend import _model;from allo_ext.frontend import from_pytorch;"
            f"m=_model({kind!r},{n});t0=time.perf_counter();f=from_pytorch(m,torch.randn(2,{n},3));"
            "print(json.dumps({'compile_s':time.perf_counter()-t0,'import_s':t0-t,**f.timings}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool, repeat: int) -> dict:
    from allo_ext.frontend import from_pytorch
    from allo_ext.testing import TorchMlirReference

    batch = 256 if quick else 1024
    rows = []
    for label, (kind, n) in MODELS.items():
        m = _model(kind, n)
        cold = cold_compile(kind, n)
        from_pytorch(m, torch.randn(2, n, 3))  # warms torch.export in this process
        t0 = time.perf_counter()
        f = from_pytorch(m, torch.randn(2, n, 3))
        warm = time.perf_counter() - t0
        x = torch.randn(batch, n, 3, generator=torch.Generator().manual_seed(1))
        xn = x.numpy()
        with torch.inference_mode():
            ref = m(x).numpy()
        ours_out = f(xn)
        t_ours = _median_time(lambda: f(xn), repeat)
        t_torch = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                t_torch[threads] = _median_time(lambda: m(x), repeat)
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        tm = TorchMlirReference(m, x)
        tm_compile = time.perf_counter() - t0
        tm_out = tm(xn)
        t_tm = _median_time(lambda: tm(xn), repeat)
        rows.append({
            "model": label, "batch": batch,
            "compile_cold_s": cold["compile_s"], "cold_export_import_s": cold["export_and_import_s"],
            "cold_schedule_build_s": cold["schedule_and_build_s"], "compile_warm_s": warm,
            "ours_ms": t_ours * 1e3, "torch1_ms": t_torch[1] * 1e3, "torch2_ms": t_torch[2] * 1e3,
            "torch_mlir_ms": t_tm * 1e3, "torch_mlir_compile_s": tm_compile,
            "ratio_torch1": t_torch[1] / t_ours, "ratio_torch2": t_torch[2] / t_ours, "ratio_torch_mlir": t_tm / t_ours,
            "jets_per_s": batch / t_ours,
            "max_abs_err_ours": float(np.abs(ours_out - ref).max()),
            "max_abs_err_torch_mlir": float(np.abs(tm_out - ref).max()),
        })
    return {"machine": machine_info(), "quick": quick, "repeat": repeat, "rows": rows}


def to_markdown(data: dict) -> str:
    hdr = ["model", "compile cold (s)", "compile warm (s)", "ours (ms)", "torch 1T (ms)", "torch 2T (ms)",
           "torch-mlir (ms)", "1T/ours", "2T/ours", "torch-mlir/ours", "jets/s", "max abs err"]
    rows = [[r["model"], f"{r['compile_cold_s']:.2f}", f"{r['compile_warm_s']:.2f}", f"{r['ours_ms']:.1f}",
             f"{r['torch1_ms']:.1f}", f"{r['torch2_ms']:.1f}", f"{r['torch_mlir_ms']:.1f}",
             f"{r['ratio_torch1']:.2f}", f"{r['ratio_torch2']:.2f}", f"{r['ratio_torch_mlir']:.2f}",
             f"{r['jets_per_s']:,.0f}", f"{r['max_abs_err_ours']:.1e}"] for r in data["rows"]]
    b = data["rows"][0]["batch"] if data["rows"] else "?"
    return (f"# from_pytorch(target=\"llvm\"): compile time and throughput at B={b}\n\n"
            f"{machine_line(data['machine'])}\n\n" + markdown_table(hdr, rows, "l" + "r" * (len(hdr) - 1))
            + "\nRatios are peer time / our time (> 1: we are faster). Cold compile is a fresh process "
              "(torch.export start-up included); warm is a second compile in the same process.\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B=256 and 2 repeats: a smoke run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = run(args.quick, 2 if args.quick else args.repeat)
    md = to_markdown(data)
    name = "frontend-quick" if args.quick else "frontend"
    js, mdp = write_results(name, data, md)
    rows = data["rows"]
    png = bar_chart(name, f"Inference at B={rows[0]['batch']}, single thread unless noted",
                    [r["model"] for r in rows],
                    {"allo-ext llvm": [r["jets_per_s"] for r in rows],
                     "torch eager 1T": [r["batch"] / r["torch1_ms"] * 1e3 for r in rows],
                     "torch eager 2T": [r["batch"] / r["torch2_ms"] * 1e3 for r in rows],
                     "torch-mlir linalg": [r["batch"] / r["torch_mlir_ms"] * 1e3 for r in rows]},
                    "jets / s", log=True)
    print(md)
    print(f"wrote {js}, {mdp} and {png}")


if __name__ == "__main__":
    main()
