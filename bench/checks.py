"""Benchmark: cost of the run-time bounds and division checks (allo_ext/passes/safety.py) on the CPU.

Checks are on by default; ``build(target="llvm", checks=False)`` / ``from_pytorch(..., checks=False)``
turns them off. Accesses the compiler proves in bounds carry no check at all, so whole models pay
nothing; a data-dependent gather (an index read from memory) pays one compare per access. Measured
here, checked vs unchecked in the same run, as jets (or calls) per second. Writes
bench/results/checks.{json,md}.

    python -m bench.checks [--repeat 20]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import allo_ext
from allo_ext import float32, index, int32
from allo_ext.frontend import from_pytorch
from allo_ext.models import JetFormer

from .common import machine_info, machine_line, markdown_table, write_results

N, M = 4096, 65536


def gather(A: float32[N], I: int32[M]) -> float32[M]:
    Z: float32[M] = 0.0
    for i in range(M):
        Z[i] = A[index(I[i])]
    return Z


def _rate(fn, args, repeat: int, items: int) -> float:
    fn(*args)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return items / best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--results-name", default="checks")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    g = np.random.default_rng(0)
    a = g.normal(size=N).astype(np.float32)
    idx = g.integers(0, N, size=M).astype(np.int32)
    model = JetFormer.tiny(n_particles=8, n_features=3).eval()
    x = g.normal(size=(1024, 8, 3)).astype(np.float32)
    for name, build, call_args, items, unit in (
        ("gather (index from memory)", lambda c: allo_ext.customize(gather).build(target="llvm", checks=c),
         (a, idx), M, "loads/s"),
        ("JetFormer-tiny, B=1024", lambda c: from_pytorch(model, torch.zeros(1, 8, 3), target="llvm", checks=c),
         (x,), len(x), "jets/s"),
    ):
        on, off = build(True), build(False)
        sites = len(getattr(on, "check_sites", getattr(getattr(on, "module", None), "check_sites", [])))
        r_on, r_off = _rate(on, call_args, args.repeat, items), _rate(off, call_args, args.repeat, items)
        np.testing.assert_array_equal(on(*call_args), off(*call_args))
        rows.append({"case": name, "check_sites": sites, "checked_per_s": r_on, "unchecked_per_s": r_off,
                     "unit": unit, "checked_over_unchecked": r_on / r_off})
        print(f"{name}: {sites} check sites, checked/unchecked throughput {r_on / r_off:.3f}", flush=True)
    info = machine_info()
    data = {"rows": rows, "repeat": args.repeat, "machine": info}
    md = ("# bench/checks: run-time bounds and division checks on llvm\n\n"
          "Best of the repeats, one thread; checked and unchecked builds of the same code in the same run.\n\n"
          + markdown_table(["case", "check sites", "checked", "unchecked", "unit", "checked / unchecked"],
                           [[r["case"], r["check_sites"], f"{r['checked_per_s']:,.0f}", f"{r['unchecked_per_s']:,.0f}",
                             r["unit"], f"{r['checked_over_unchecked']:.3f}"] for r in rows], "lrrrlr")
          + f"\n{machine_line(info)}\n")
    write_results(args.results_name, data, md)
    return data


if __name__ == "__main__":
    main()
