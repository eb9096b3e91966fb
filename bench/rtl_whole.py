"""Benchmark: the WHOLE JetFormer.tiny at ap_fixed<16,6> through the latency route, simulated in RTL.

The model (seeded, BatchNorm statistics randomised so that no fold is an identity) is traced into a
da4ml pipeline; its Verilog is simulated with a few hundred jets streamed one per clock (II = 1) in
Verilator (Icarus's elaboration of a design this size does not finish in useful time: see
``allo_ext/backends/latency/sim.py``). Measured:

- cycles: clocks from an input step at the ports to the output's change, counted by the testbench;
- bit-exactness of every output against target="llvm" and csim at the same precision (both computed
  independently of the latency route), and argmax agreement with float torch;
- time: trace + pipeline, simulator build (C++ compile included; a cache hit is reported as such),
  simulation per jet.

    python -m bench.rtl_whole [--jets 300] [--csim]

Writes bench/results/rtl_whole.{json,md}.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from .common import machine_info, machine_line, markdown_table, write_results

P16 = "ap_fixed<16,6>"


def whole_model(seed: int = 0, norm_seed: int = 5):
    """JetFormer.tiny with random weights and non-trivial BatchNorm statistics (the slow test's model)."""
    from allo_ext.models import JetFormer
    from allo_ext.models.latency_cases import randomise_norms

    torch.manual_seed(seed)
    return randomise_norms(JetFormer.tiny(), norm_seed)


def jets(n: int, seed: int = 6) -> np.ndarray:
    """Gaussian particles, one jet at zero, one near the type's range, one around the last bit."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 3)).astype(np.float32) * 2
    x[0] = 0
    x[1] = np.clip(20.0 * np.sign(rng.normal(size=(8, 3))), -4, 4)
    x[2] = rng.uniform(-2e-3, 2e-3, size=(8, 3))
    return x


def run(n: int, with_csim: bool) -> dict:
    from allo_ext.frontend import from_pytorch

    m = whole_model()
    X = jets(n)
    t0 = time.perf_counter()
    d = from_pytorch(m, torch.from_numpy(X[:1]), target="rtl", schedule="latency", precision=P16,
                     simulator="verilator")
    t_trace = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim = d.simulator()
    t_build = time.perf_counter() - t0
    out = np.full((n, 5), np.nan)
    t0 = time.perf_counter()
    out[:] = d(X)
    t_sim = time.perf_counter() - t0
    want = from_pytorch(m, torch.from_numpy(X), target="llvm", precision=P16)(X)
    rows_llvm = int((out == want).all(axis=1).sum())
    rows_csim = None
    if with_csim:
        cs = from_pytorch(m, torch.from_numpy(X[:1]), target="vitis_hls", mode="csim", precision=P16)
        got = np.stack([np.asarray(cs(X[i:i + 1])).reshape(-1) for i in range(n)])
        rows_csim = int((out == got).all(axis=1).sum())
    with torch.no_grad():
        ref = m(torch.from_numpy(X)).numpy()
    return {"machine": machine_info(), "jets": n, "cycles": d.cycles, "ii": d.ii, "clock_ns": d.clock_ns,
            "latency_ns": d.cycles * d.clock_ns, "stages": d.stages, "simulator": sim.simulator,
            "cache_hit": sim.cache_hit, "trace_and_pipeline_s": round(t_trace, 1), "sim_build_s": round(t_build, 1),
            "sim_run_s": round(t_sim, 2), "sim_ms_per_jet": round(1000 * t_sim / n, 2),
            "bit_exact_vs_llvm": f"{rows_llvm}/{n}",
            "bit_exact_vs_csim": None if rows_csim is None else f"{rows_csim}/{n}",
            "argmax_agreement_with_float_torch": float((out.argmax(1) == ref.argmax(1)).mean()),
            "resources": d.resources, "verilog_bytes": sum(len(v) for v in sim.sources.values())}


def markdown(d: dict) -> str:
    rows = [[k, d[k]] for k in ("jets", "cycles", "ii", "latency_ns", "stages", "simulator", "cache_hit",
                                "trace_and_pipeline_s", "sim_build_s", "sim_run_s", "sim_ms_per_jet",
                                "bit_exact_vs_llvm", "bit_exact_vs_csim", "argmax_agreement_with_float_torch",
                                "verilog_bytes")]
    rows += [[f"da4ml {k}", v] for k, v in d["resources"].items()]
    return ("# Whole JetFormer.tiny at ap_fixed<16,6>, latency route, RTL simulation\n\n"
            f"{machine_line(d['machine'])}\n\n" + markdown_table(["what", "value"], rows, "lr") +
            "\nbuild and run times are wall-clock on a shared 2-core machine (load average above).\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jets", type=int, default=300)
    ap.add_argument("--csim", action="store_true", help="also compare with the C simulation (slow)")
    a = ap.parse_args(argv)
    d = run(a.jets, a.csim)
    js, md = write_results("rtl_whole", d, markdown(d))
    print(Path(md).read_text())


if __name__ == "__main__":
    main()
