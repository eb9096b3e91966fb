"""Benchmark: RTL (CIRCT handshake SystemVerilog) cycles and Yosys resources beside ``estimate()``.

For each kernel (JetFormer-tiny sizes: 9 tokens x 8 channels) and precision:

- ``estimate()``: the static HLS model (allo_ext/passes/estimate) on the kernel's default schedule:
  cycles, LUT, FF, DSP;
- RTL: cycles of one call counted by the generated testbench in Icarus (start token -> done token),
  and Yosys ``synth_xilinx`` LUT/FF/DSP of the same SystemVerilog (memories are ports: not counted);
- the estimate's error against the RTL cycles, ``estimate / rtl - 1``.

Precisions: float32 (estimate only: the RTL route builds integer/fixed-point hardware), a 16-bit
datapath (``ap_fixed<16,6>`` = ``Fixed(16, 10)``; its estimate is taken on the integer-lowered
module), and BitLinear (1-bit weights, int8
activations; no multiplier) beside the int8 x int8 linear it replaces.

    python -m bench.hw [--quick]        # --quick: no Yosys (cycles only), a smoke run

Writes bench/results/hw.json, hw.md and hw.png (``--quick``: hw-quick.*).
"""
# No "from __future__ import annotations": ffn_block defines a kernel, whose annotations are evaluated.

import argparse
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results

TOK, C = 9, 8  # JetFormer-tiny: 8 particles + the class token, 8 channels


@dataclass
class Variant:
    kernel: str
    precision: str
    make: Callable  # () -> kernel function
    args: Callable  # rng -> tuple of numpy inputs
    rtl: bool = True


def _sixteen():
    """The 16-bit type: ap_fixed<16,6>, i.e. Fixed(16, 10)."""
    from allo_ext import Fixed

    return Fixed(16, 10), "ap_fixed<16,6>"


def ffn_block(T):
    """The feed-forward half of a JetFormer-tiny block as ONE design: ``x + W2 relu(W1 relu(x))``
    (its BatchNorms folded into the linears, as the frontend does), 9 tokens, C=8 -> 16 -> 8."""
    from allo_ext.kernels import nn as K

    r1, l1, r2, l2 = K.relu2d(T, TOK, C), K.linear2d(T, TOK, C, 2 * C), K.relu2d(T, TOK, 2 * C), \
        K.linear2d(T, TOK, 2 * C, C)
    res = K.add(T, (TOK, C), (TOK, C))

    def ffn(X: T[TOK, C], W1: T[2 * C, C], b1: T[2 * C], W2: T[C, 2 * C], b2: T[C]) -> T[TOK, C]:
        return res(X, l2(r2(l1(r1(X), W1, b1)), W2, b2))

    return ffn


def variants() -> list[Variant]:
    from allo_ext import float32
    from allo_ext.kernels import nn as K

    T16, p16 = _sixteen()
    is_fixed = T16.is_fixed

    def vals(r, *shape):
        x = r.standard_normal(shape)
        return x if is_fixed else np.round(x * 64).astype(np.int16)

    def f32(r, *shape):
        return r.standard_normal(shape).astype(np.float32)

    out = []
    for T, prec, gen, rtl in ((float32, "float32", f32, False), (T16, p16, vals, True)):
        out += [
            Variant("linear 9x8->8", prec, lambda T=T: K.linear2d(T, TOK, C, C),
                    lambda r, g=gen: (g(r, TOK, C), g(r, C, C), g(r, C)), rtl),
            Variant("relu 9x8", prec, lambda T=T: K.relu2d(T, TOK, C), lambda r, g=gen: (g(r, TOK, C),), rtl),
            Variant("matmul 9x8x9 (QK^T)", prec, lambda T=T: K.matmul(T, TOK, C, TOK),
                    lambda r, g=gen: (g(r, TOK, C), g(r, C, TOK)), rtl),
            Variant("bmm 2x9x4x9 (heads)", prec, lambda T=T: K.bmm(T, 2, TOK, C // 2, TOK),
                    lambda r, g=gen: (g(r, 2, TOK, C // 2), g(r, 2, C // 2, TOK)), rtl),
            Variant("JetFormer-tiny FFN block (one design)", prec, lambda T=T: ffn_block(T),
                    lambda r, g=gen: (g(r, TOK, C), g(r, 2 * C, C), g(r, 2 * C), g(r, C, 2 * C), g(r, C)), rtl),
        ]
    i8 = lambda r, *s: r.integers(-128, 128, s).astype(np.int8)  # noqa: E731
    out += [
        Variant("linear 9x8->8", "int8 x int8 -> int32", lambda: K.linear_int8(TOK, C, C),
                lambda r: (i8(r, TOK, C), i8(r, C, C))),
        Variant("linear 9x8->8", "BitLinear (1-bit W, int8 x)", lambda: K.bitlinear_core(TOK, C, C),
                lambda r: (i8(r, TOK, C), r.random((C, C)) < 0.5)),
    ]
    return out


def measure(v: Variant, synth: bool) -> dict:
    import allo_ext
    from allo_ext.kernels import apply_schedules

    s = allo_ext.customize(v.make())
    apply_schedules(s, "default")

    def estimate():
        # The estimator costs integer ops; fixed-point ops are lowered to them first (in place, so
        # only after the backends below have read the module).
        from allo_ext.passes.fixed_to_int import fixed_to_int

        fixed_to_int(s.module)
        e = s.estimate(interface="ip")  # the RTL testbench's memories are ports used in place, as ap_memory
        return {"cycles": e.cycles, "lut": e.lut, "ff": e.ff, "dsp": e.dsp}, e

    row = {"kernel": v.kernel, "precision": v.precision}
    if not v.rtl:
        row["estimate"], _ = estimate()
        row["rtl"] = None
        return row
    t0 = time.perf_counter()
    m = s.build(target="rtl")
    build = time.perf_counter() - t0
    args = v.args(np.random.default_rng(0))
    got = m(*args)
    ref = s.build(target="llvm")(*args)
    exact = bool(np.array_equal(np.asarray(got), np.asarray(ref)))
    rtl = {"cycles": m.cycles, "build_s": round(build, 2), "sv_kb": round(len(m.sv) / 1024, 1),
           "bit_exact_vs_llvm": exact}
    if synth:
        t1 = time.perf_counter()
        r = m.synth()
        rtl.update(lut=r["lut"], ff=r["ff"], dsp=r["dsp"], bram=r["bram"], synth_s=round(time.perf_counter() - t1, 1))
    row["rtl"] = rtl
    row["estimate"], e = estimate()
    row["estimate_cycle_error"] = e.cycles / m.cycles - 1.0
    return row


def run(quick: bool) -> dict:
    from rich.progress import track

    rows = []
    for v in track(variants(), description="kernels"):
        rows.append(measure(v, synth=not quick))
    return {"machine": machine_info(), "rows": rows}


def _fmt(x, spec="{:,}"):
    return "-" if x is None else spec.format(x)


def to_markdown(data: dict) -> str:
    hdr = ["kernel", "precision", "est. cycles", "RTL cycles", "est. error", "est. LUT", "RTL LUT", "est. FF",
           "RTL FF", "est. DSP", "RTL DSP", "bit-exact"]
    rows = []
    for r in data["rows"]:
        e, t = r["estimate"], r["rtl"] or {}
        err = r.get("estimate_cycle_error")
        rows.append([r["kernel"], r["precision"], _fmt(e["cycles"]), _fmt(t.get("cycles")),
                     "-" if err is None else f"{100 * err:+.0f}%", _fmt(e["lut"]), _fmt(t.get("lut")), _fmt(e["ff"]),
                     _fmt(t.get("ff")), _fmt(e["dsp"]), _fmt(t.get("dsp")),
                     "-" if not t else ("yes" if t["bit_exact_vs_llvm"] else "NO")])
    md = (f"# RTL against the static estimate\n\n{machine_line(data['machine'])}\n\n"
          "RTL: CIRCT handshake (dynamically scheduled) SystemVerilog, cycles from Icarus, resources from Yosys "
          "0.23 `synth_xilinx` (memories are ports, so no BRAM; no timing). The estimate models a statically "
          "scheduled Vitis HLS design of the same schedule, so its error against the RTL cycles measures how far "
          "dynamic scheduling is from the pipelined HLS model, per kernel. float32 has no RTL (CIRCT builds "
          "integer/fixed-point hardware only).\n\n")
    md += markdown_table(hdr, rows, "ll" + "r" * 10)
    return md


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="cycles only (no Yosys): a smoke run")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data = run(args.quick)
    data["wall_s"] = round(time.perf_counter() - t0, 1)
    md = to_markdown(data) + f"\nWall time: {data['wall_s']} s.\n"
    name = "hw-quick" if args.quick else "hw"
    js, mdp = write_results(name, data, md)
    with_rtl = [r for r in data["rows"] if r["rtl"]]
    labels = [f"{r['kernel']}\n{r['precision']}" for r in with_rtl]
    png = bar_chart(name, "Cycles per call: RTL simulation vs static estimate", labels,
                    {"RTL (Icarus)": [r["rtl"]["cycles"] for r in with_rtl],
                     "estimate()": [r["estimate"]["cycles"] for r in with_rtl]}, "cycles", log=True)
    print(md)
    print(f"wrote {js}, {mdp} and {png}")


if __name__ == "__main__":
    main()
