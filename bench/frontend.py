"""Benchmark: ``from_pytorch(target="llvm")`` against torch eager, torch.compile, ONNX Runtime and IREE.

For each model (default ``JetFormer.tiny()``, 8 particles x 3 features) and batch size (1 and
1024), every runtime is timed side by side in one process on the same inputs: 1 thread, and the
runtime's default thread count where it has one (ours is single-threaded by design: one row).
Timing interleaves the runtimes round by round (``--repeat`` rounds, median per runtime), so load
from other jobs on the machine hits all of them alike; the 1-minute load average is recorded.
At batch 1 each sample is the mean of ``--inner`` calls (a call takes microseconds).

Peers (optional extra ``bench`` in pyproject.toml: ``onnxruntime``, ``onnx``, ``iree-base-*``):

- torch eager (``inference_mode``), 1 thread and ``torch.get_num_threads()`` by default;
- torch.compile (inductor, ``dynamic=False``), compiled per batch size and thread count;
- ONNX Runtime: ``torch.onnx.export`` (TorchScript exporter, dynamic batch), CPU provider,
  ``intra_op_num_threads`` 1 and 0 (default);
- IREE: torch -> torch-mlir fx importer (linalg on tensors, static batch) -> ``iree.compiler`` with
  ``llvm-cpu``, ``--iree-llvmcpu-target-cpu=host`` and ``--iree-opt-level=O3``; the ``local-sync``
  driver (1 thread) and ``local-task`` (default threads).

Ratios are peer time / our time (> 1: we are faster). Also recorded: compile times, and the largest
difference of each runtime's output to torch eager.

    python -m bench.frontend [--quick] [--repeat 20] [--models tiny hls4ml150] [--cold]
                             [--peers IREE ...] [--batches 1 1024]

Writes bench/results/frontend.{json,md,png} (``--quick``: frontend-quick.*; a subset of peers or
other batches: frontend-<peers>-B<batches>.*, so the full table is never overwritten by a partial
run). ``--peers IREE`` is the quick check of the 1.5x target: ours and IREE only, interleaved.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results

MODELS = {
    "tiny": ("JetFormer.tiny (8x3)", 8),
    "hls4ml150": ("JetFormer.hls4ml150-style (32x3)", 32),
}
DEFAULT_THREADS = torch.get_num_threads()


def _model(kind: str, n: int):
    from allo_ext.models import JetFormer

    torch.manual_seed(0)
    m = JetFormer.tiny() if kind == "tiny" else JetFormer.hls4ml150(n_particles=n, n_features=3)
    return m.eval()


def cold_compile(kind: str, n: int) -> dict:
    """Compile in a fresh interpreter, so torch.export's start-up cost is counted once, as a user sees it."""
    code = ("import json,time,torch;t=time.perf_counter();"
            "from bench.frontend import _model;from allo_ext.frontend import from_pytorch;"
            f"m=_model({kind!r},{n});t0=time.perf_counter();f=from_pytorch(m,torch.randn(2,{n},3));"
            "print(json.dumps({'compile_s':time.perf_counter()-t0,'import_s':t0-t,**f.timings}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


class _Threads:
    """torch's intra-op thread count for the duration of a block."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


# Each builder returns {runtime name: (callable on a numpy batch, compile seconds)} or raises ImportError.

def _ours(m, n_particles, batches):
    from allo_ext.frontend import from_pytorch

    t0 = time.perf_counter()
    f = from_pytorch(m, torch.randn(2, n_particles, 3))
    compile_s = time.perf_counter() - t0
    for b in batches:  # modules for small batches are compiled on first use: not timed
        f(np.zeros((b, n_particles, 3), np.float32))
    return {"ours (1T)": (f, compile_s)}, f


def _torch_eager(m, n_particles, batches):
    def run(threads):
        def fn(x):
            with _Threads(threads), torch.inference_mode():
                return m(torch.from_numpy(x)).numpy()
        return fn

    return {"torch eager 1T": (run(1), 0.0), f"torch eager {DEFAULT_THREADS}T": (run(DEFAULT_THREADS), 0.0)}


def _torch_compile(m, n_particles, batches):
    out = {}
    for threads in (1, DEFAULT_THREADS):
        compiled = {}
        t0 = time.perf_counter()
        for b in batches:  # inductor bakes the thread count and shapes into its kernels
            with _Threads(threads):
                torch._dynamo.reset()
                c = torch.compile(m, dynamic=False)
                with torch.inference_mode():
                    c(torch.zeros(b, n_particles, 3))
            compiled[b] = c

        def fn(x, compiled=compiled, threads=threads):
            with _Threads(threads), torch.inference_mode():
                return compiled[x.shape[0]](torch.from_numpy(x)).numpy()

        out[f"torch.compile {threads}T"] = (fn, time.perf_counter() - t0)
    return out


def _onnxruntime(m, n_particles, batches):
    import onnxruntime as ort

    t0 = time.perf_counter()
    buf = io.BytesIO()
    torch.onnx.export(m, (torch.zeros(2, n_particles, 3),), buf, dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "B"}, "y": {0: "B"}}, opset_version=17)
    export_s = time.perf_counter() - t0
    out = {}
    for threads, label in ((1, "1T"), (0, "default")):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        t1 = time.perf_counter()
        sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        out[f"ONNX Runtime {label}"] = ((lambda x, s=sess: s.run(None, {"x": x})[0]),
                                        export_s + time.perf_counter() - t1)
    return out


IREE_FLAGS = ["--iree-llvmcpu-target-cpu=host", "--iree-opt-level=O3"]


def _iree(m, n_particles, batches):
    import iree.compiler as ic
    import iree.runtime as rt
    from torch_mlir import fx

    vmfbs, t0 = {}, time.perf_counter()
    for b in batches:  # static shapes: IREE at its best
        mod = fx.export_and_import(m, torch.zeros(b, n_particles, 3), output_type="linalg-on-tensors",
                                   func_name="main")
        vmfbs[b] = ic.compile_str(str(mod), target_backends=["llvm-cpu"], extra_args=IREE_FLAGS)
    compile_s = time.perf_counter() - t0
    out = {}
    for driver, label in (("local-sync", "1T"), ("local-task", "default")):
        fns = {}
        for b, vmfb in vmfbs.items():
            ctx = rt.SystemContext(config=rt.Config(driver))
            ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, vmfb))
            fns[b] = ctx.modules.module["main"]

        def fn(x, fns=fns):
            return fns[x.shape[0]](x).to_host()

        out[f"IREE {label}"] = (fn, compile_s)
    return out


PEERS = {"torch eager": _torch_eager, "torch.compile": _torch_compile, "ONNX Runtime": _onnxruntime,
         "IREE": _iree}


def _interleaved(fns: dict, x: np.ndarray, repeat: int, inner: int) -> dict:
    """Median seconds per call of each function: ``repeat`` rounds, each timing every function once."""
    for fn in fns.values():  # warm-up
        fn(x)
        fn(x)
    samples = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(inner):
                fn(x)
            samples[k].append((time.perf_counter() - t) / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def run(models: list[str], batches: list[int], repeat: int, inner: int, progress=print, cold: bool = False,
        peers: list[str] | None = None) -> dict:
    rows, notes = [], []
    for kind in models:
        label, n = MODELS[kind]
        m = _model(kind, n)
        if cold:
            progress(f"[{label}] compiling ours (cold, in a fresh process)")
        cold_s = cold_compile(kind, n) if cold else {}
        progress(f"[{label}] compiling ours")
        got, ours = _ours(m, n, batches)
        fns = {k: f for k, (f, _) in got.items()}
        compile_s = {k: c for k, (_, c) in got.items()}
        for peer, build in PEERS.items():
            if peers is not None and peer not in peers:
                continue
            progress(f"[{label}] compiling {peer}")
            try:
                got = build(m, n, batches)
            except ImportError as e:
                notes.append(f"{peer}: not installed ({e}); pip install -e '.[bench]'")
                continue
            fns.update({k: f for k, (f, _) in got.items()})
            compile_s.update({k: c for k, (_, c) in got.items()})
        for b in batches:
            x = torch.randn(b, n, 3, generator=torch.Generator().manual_seed(b)).numpy()
            with torch.inference_mode():
                ref = m(torch.from_numpy(x)).numpy()
            errs = {k: float(np.abs(np.asarray(fn(x)) - ref).max()) for k, fn in fns.items()}
            progress(f"[{label}] timing B={b}: {len(fns)} runtimes x {repeat} rounds")
            load_before = os.getloadavg()[0]
            t = _interleaved(fns, x, repeat, inner if b < 64 else 1)
            ours_s = t["ours (1T)"]
            rows.append({
                "model": label, "batch": b, "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "ours_plan": ours.last_plan,
                "ms": {k: v * 1e3 for k, v in t.items()},
                "ratio_vs_ours": {k: v / ours_s for k, v in t.items()},
                "max_abs_err_vs_torch": errs,
                "compile_s": compile_s,
            })
        rows[-1]["ours_compile_cold"] = cold_s
    return {"machine": machine_info(), "repeat": repeat, "inner": inner, "rows": rows, "notes": notes,
            "targets": targets(rows)}


def targets(rows: list[dict]) -> list[dict]:
    """Issue 10's goals on JetFormer.tiny: B=1 at least as fast as torch eager and within 2x of IREE;
    B=1024 within 1.5x of IREE (single thread, like ours)."""
    out = []
    for r in rows:
        if not r["model"].startswith("JetFormer.tiny"):
            continue
        ms = r["ms"]
        goals = []
        if r["batch"] == 1:
            goals.append(("ours <= torch eager 1T", ms.get("torch eager 1T"), 1.0))
            goals.append(("ours <= 2 x IREE 1T", ms.get("IREE 1T"), 2.0))
        elif r["batch"] >= 1024:
            goals.append(("ours <= 1.5 x IREE 1T", ms.get("IREE 1T"), 1.5))
        for what, peer_ms, factor in goals:
            if peer_ms is not None:
                out.append({"batch": r["batch"], "goal": what, "ours_ms": ms["ours (1T)"], "peer_ms": peer_ms,
                            "met": ms["ours (1T)"] <= factor * peer_ms})
    return out


def to_markdown(data: dict) -> str:
    parts = [f"# from_pytorch(target=\"llvm\") against torch, torch.compile, ONNX Runtime and IREE\n\n"
             f"{machine_line(data['machine'])}\n\nMedian of {data['repeat']} interleaved rounds (batch 1: each "
             f"sample the mean of {data['inner']} calls). Ratio = runtime's time / ours (> 1: we are faster). "
             f"Ours is single-threaded; the others also run with their default thread count "
             f"({DEFAULT_THREADS} here). The 1-minute load average before/after each timing is shown: the "
             f"machine is shared, so absolute times move with it; the ratios were measured in the same rounds.\n"]
    by_model: dict[str, list[dict]] = {}
    for r in data["rows"]:
        by_model.setdefault(r["model"], []).append(r)
    for model, rows in by_model.items():
        names = list(rows[0]["ms"])
        hdr = ["runtime"] + [h for r in rows for h in (f"B={r['batch']} (ms)", f"B={r['batch']} ratio")] + \
              ["max abs err", "compile (s)"]
        table = []
        for k in names:
            line = [k]
            for r in rows:
                line += [f"{r['ms'][k]:.4g}", f"{r['ratio_vs_ours'][k]:.2f}"]
            line += [f"{max(r['max_abs_err_vs_torch'][k] for r in rows):.1e}", f"{rows[0]['compile_s'][k]:.1f}"]
            table.append(line)
        loads = ", ".join(f"B={r['batch']}: {r['load_avg_1min'][0]}/{r['load_avg_1min'][1]}" for r in rows)
        cold = rows[-1].get("ours_compile_cold", {})
        parts.append(f"## {model}\n\n" + markdown_table(hdr, table, "l" + "r" * (len(hdr) - 1)) +
                     f"\nLoad average before/after: {loads}. Our module sizes per call: "
                     + ", ".join(f"B={r['batch']}: {r['ours_plan'][:4]}{'...' if len(r['ours_plan']) > 4 else ''}"
                                 for r in rows)
                     + (f". Our cold compile (fresh process): {cold.get('compile_s', float('nan')):.2f} s."
                        if cold else ".") + "\n")
    if data["targets"]:
        parts.append("## Targets (issue 10)\n\n" + markdown_table(
            ["batch", "goal", "ours (ms)", "peer (ms)", "met"],
            [[t["batch"], t["goal"], f"{t['ours_ms']:.4g}", f"{t['peer_ms']:.4g}", "yes" if t["met"] else "no"]
             for t in data["targets"]], "rlrrl"))
    if data["notes"]:
        parts.append("\n" + "\n".join(f"- {n}" for n in data["notes"]) + "\n")
    return "\n".join(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B=1 and 256, 3 rounds: a smoke run")
    ap.add_argument("--repeat", type=int, default=20, help="timed rounds (median)")
    ap.add_argument("--inner", type=int, default=20, help="calls per sample at small batches")
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["tiny"])
    ap.add_argument("--cold", action="store_true", help="also time our compile in a fresh process")
    ap.add_argument("--peers", nargs="+", choices=sorted(PEERS), default=None,
                    help="time only these peers next to ours (default: all)")
    ap.add_argument("--batches", nargs="+", type=int, default=None, help="batch sizes (default: 1 1024)")
    args = ap.parse_args(argv)
    from rich.console import Console

    console = Console(stderr=True)
    batches = args.batches or ([1, 256] if args.quick else [1, 1024])
    data = run(args.models, batches, 3 if args.quick else args.repeat, args.inner,
               progress=lambda s: console.log(s), cold=args.cold, peers=args.peers)
    md = to_markdown(data)
    name = "frontend-quick" if args.quick else "frontend"
    if args.peers is not None or args.batches is not None:
        tag = "-".join(p.split()[0].replace(".", "").lower() for p in (args.peers or sorted(PEERS)))
        name = f"{name}-{tag}-B{'-'.join(map(str, batches))}"
    js, mdp = write_results(name, data, md)
    rows = data["rows"]
    series = {}
    for k in rows[0]["ms"]:
        series[k] = [r["batch"] / r["ms"][k] * 1e3 for r in rows]
    png = bar_chart(name, "Jets per second (higher is better)", [f"{r['model']}, B={r['batch']}" for r in rows],
                    series, "jets / s", log=True)
    print(md)
    print(f"wrote {js}, {mdp} and {png}")


if __name__ == "__main__":
    main()
