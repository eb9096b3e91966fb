"""Benchmark: the zoo of public jet taggers (tests/zoo) through ``from_pytorch`` on llvm and csim.

Per model: parameters, ops in the exported graph, llvm compile time, the largest difference from
torch (relative to the output's scale) on ``--batch`` jets, CPU throughput against torch eager with
1 thread (both on the same jets, median of ``--repeat`` runs), and the C simulation's compile time
and throughput (one jet per kernel call, as the hardware runs). Ratios are ours/torch in jets per
second: > 1 means we are faster.

    python -m bench.zoo [--quick] [--repeat 5] [--batch 256]

Writes bench/results/zoo.json, zoo.md and zoo.png (``--quick``: zoo-quick.*).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results

ZOO_DIR = Path(__file__).resolve().parent.parent / "tests" / "zoo"


def _median(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _rel_err(out, ref) -> float:
    out = np.asarray(out).reshape(ref.shape)
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))


def bench_model(name: str, batch: int, repeat: int, csim_jets: int) -> dict:
    from allo_ext.frontend import export, from_pytorch
    from zoo import ZOO, inputs, model

    m = model(name)
    xs = inputs(name, batch)
    with torch.no_grad():
        ref = m(*xs).numpy()
    n_ops = sum(1 for n in export(m, tuple(x[:4] for x in xs), check_batch=False).graph.nodes
                if n.op == "call_function")
    t0 = time.perf_counter()
    f = from_pytorch(m, tuple(x[:2] for x in xs))
    compile_s = time.perf_counter() - t0
    np_xs = [x.numpy() for x in xs]
    err = _rel_err(f(*np_xs), ref)
    ours = _median(lambda: f(*np_xs), repeat)
    with torch.inference_mode():
        eager = _median(lambda: m(*xs), repeat)
    t0 = time.perf_counter()
    g = from_pytorch(m, tuple(x[:1] for x in xs), target="vitis_hls", mode="csim")
    csim_compile_s = time.perf_counter() - t0
    sub = [x[:csim_jets] for x in np_xs]
    csim_err = _rel_err(g(*sub), ref[:csim_jets])
    csim = _median(lambda: g(*sub), max(1, repeat // 2))
    return {"model": name, "source": ZOO[name][2], "params": sum(p.numel() for p in m.parameters()),
            "ops": n_ops, "compile_s": compile_s, "max_rel_err": err, "batch": batch,
            "ours_jets_per_s": batch / ours, "torch_jets_per_s": batch / eager, "speed_vs_torch": eager / ours,
            "csim_compile_s": csim_compile_s, "csim_max_rel_err": csim_err, "csim_jets_per_s": csim_jets / csim,
            "csim_vs_torch": (csim_jets / csim) / (batch / eager)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two models, fewer repeats (not committed)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--csim-jets", type=int, default=32)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sys.path.insert(0, str(ZOO_DIR))
    from zoo import ZOO

    names = sorted(ZOO)[:2] if args.quick else sorted(ZOO)
    rows = []
    for k, name in enumerate(names, 1):
        print(f"[{k}/{len(names)}] {name} ...", flush=True)
        r = bench_model(name, args.batch, 2 if args.quick else args.repeat, args.csim_jets)
        rows.append(r)
        print(f"    compile {r['compile_s']:.1f} s, err {r['max_rel_err']:.1e}, {r['speed_vs_torch']:.2f}x torch, "
              f"csim {r['csim_jets_per_s']:.0f} jets/s", flush=True)
    info = machine_info()
    table = markdown_table(
        ["model", "params", "ops", "llvm compile s", "max rel. error", "llvm jets/s", "torch jets/s (1 thr)",
         "llvm / torch", "csim compile s", "csim jets/s", "csim / torch"],
        [[r["model"], r["params"], r["ops"], f"{r['compile_s']:.1f}", f"{max(r['max_rel_err'], r['csim_max_rel_err']):.1e}",
          f"{r['ours_jets_per_s']:.0f}", f"{r['torch_jets_per_s']:.0f}", f"{r['speed_vs_torch']:.2f}",
          f"{r['csim_compile_s']:.1f}", f"{r['csim_jets_per_s']:.0f}", f"{r['csim_vs_torch']:.3f}"] for r in rows],
        "lrrrrrrrrrr")
    md = (f"# Zoo: public jet taggers through from_pytorch\n\n{machine_line(info)}\n\n"
          f"Batch {args.batch} jets on the CPU (compiled for chunks of 256), median of {args.repeat} runs, 1 thread; "
          f"csim on {args.csim_jets} jets, one per kernel call. Max rel. error: largest |ours - torch| over the "
          f"largest |torch|, llvm and csim together. Ratios: ours / torch in jets per second.\n\n" + table +
          "\nSources:\n\n" + "".join(f"- {r['model']}: {r['source']}\n" for r in rows))
    name = "zoo-quick" if args.quick else "zoo"
    js, mdp = write_results(name, {"machine": info, "rows": rows}, md)
    png = bar_chart(name, f"Jets per second at B={args.batch}, 1 thread (log scale)", [r["model"] for r in rows],
                    {"allo-ext llvm": [r["ours_jets_per_s"] for r in rows],
                     "torch eager": [r["torch_jets_per_s"] for r in rows],
                     "allo-ext csim": [r["csim_jets_per_s"] for r in rows]}, "jets / s", log=True)
    print(md)
    print(f"wrote {js}, {mdp}, {png}")


if __name__ == "__main__":
    main()
