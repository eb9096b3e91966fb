"""Benchmark: the latency schedule on RTL (target="rtl", schedule="latency": a da4ml static pipeline)
and its estimate (``allo_ext.frontend.estimate(..., schedule="latency")``, an independent model).

1. Kernels (``allo_ext.models.latency_cases``; the same models tests/test_latency_estimate.py holds to
   the bounds), at ap_fixed<16,6> with a 16-bit and a 32-bit accumulator: estimated cycles against
   the cycles measured in the Icarus simulation, estimated LUT/FF/DSP against Yosys ``synth_xilinx``
   (UltraScale+) on the route's Verilog, and da4ml's own LUT estimate beside both.
2. Blocks: JetFormer.tiny's FFN and attention (C=8), one whole block and the whole model: the
   route's pipeline (cycles = its register count, which the simulation measures exactly on every
   kernel), da4ml's LUT and the DSPs its Verilog instantiates, beside the estimate. The block is also
   simulated (Verilator at its size: a build of minutes; ``--no-block-sim`` skips it) and synthesised by
   Yosys stage by stage (``LatencyDesign.synthesize(per_stage=True)``: 13-18 minutes on 2 busy cores,
   where the flattened run does not finish; ``--no-block-yosys`` skips it), and recorded with the design's
   digest for tests/test_latency_block.py.
3. Pareto of latency against DSP over reuse factors for the whole JetFormer.tiny: da4ml does not
   time-share a multiplier, so the reuse factor goes through the estimate of the latency schedule
   only (R = 1 is also the route's own point); the stage delay budget is the route's real knob.
4. Reference: hls4ml's particle MLP at ap_fixed<16,6> (hls4ml 1.3.0, C simulation time beside our
   csim of the same model). hls4ml reports no latency without Vitis HLS (not installed here); ours
   comes from the RTL simulation of the latency route.
5. The route's own knob on the block: the delay budget per stage (``DELAYS``), built designs beside the
   estimate at the same budget.

    python -m bench.latency [--quick] [--trained] [--no-block-sim] [--no-block-yosys] [--pieces]

Writes bench/results/latency.{json,md,png} and latency-pareto.png (``--quick``: latency-quick.*).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results

P16 = "ap_fixed<16,6>"
ACC = "ap_fixed<32,12>"
PRECISIONS = {"acc16": P16, "acc32": {"default": P16, "accum": ACC}}
VU9P = {"lut": 1_182_240, "dsp": 6_840}
YOSYS_TIMEOUT = 900.0
REUSE = (1, 2, 4, 8, 16, 32)
DELAYS = (3.0, 4.0, 5.0, 8.0, 12.0)  # the delay budget per stage (adder levels; 5 is 200 MHz; a DSP takes 3)


def _err(est, truth):
    if truth in (None, 0):
        return None if truth is None else (0.0 if est == 0 else None)
    return round(100.0 * (est - truth) / truth, 1)


def kernel_row(name, model, shape, plabel) -> dict:
    from allo_ext.backends.rtl.yosys import SynthesisError
    from allo_ext.frontend import estimate, from_pytorch
    from allo_ext.models.latency_cases import hard_inputs

    prec = PRECISIONS[plabel]
    x = hard_inputs(6, shape, seed=1)
    t0 = time.perf_counter()
    e = estimate(model, torch.from_numpy(x[:1]), precision=prec)
    est_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = from_pytorch(model, torch.from_numpy(x), target="rtl", schedule="latency", precision=prec)
    want = from_pytorch(model, torch.from_numpy(x), target="llvm", precision=prec)(x)
    from allo_ext.backends.rtl.simulate import RTLSimulationError

    try:
        got, measured = d(x), True
    except RTLSimulationError as err:  # relu/softmax: no step between all-zero and all-one inputs to time
        if "same output for the all-zero" not in str(err):
            raise
        got, measured = d.predict(x), False
    sim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        y = dict(d.synthesize(timeout=YOSYS_TIMEOUT))
    except SynthesisError as err:
        y = {"error": str(err).splitlines()[0]}
    yosys_s = time.perf_counter() - t0
    row = {"kernel": name, "precision": plabel, "est": e.report(), "rtl_cycles": d.cycles if measured else d.stages + 1,
           "rtl_cycles_measured": measured,
           "rtl_bit_exact_vs_llvm": bool(np.array_equal(got, want)), "da4ml": d.resources, "yosys": y,
           "estimate_s": round(est_s, 3), "build_sim_s": round(sim_s, 1), "yosys_s": round(yosys_s, 1)}
    row["err_pct"] = {"cycles": _err(e.cycles, d.cycles),
                      **{k: _err(getattr(e, k), y.get(k)) for k in ("lut", "ff", "dsp")}}
    return row


def block_rows(quick: bool, block_sim: bool, block_yosys: bool) -> tuple[list[dict], dict]:
    """One row per block; also the whole model's (estimate, design) for the Pareto points."""
    from allo_ext.frontend import estimate, from_pytorch
    from allo_ext.models import JetFormer
    from allo_ext.models.latency_cases import hard_inputs, jetformer_block, randomise_norms
    from allo_ext.models.layers import FeedForward, SelfAttention

    torch.manual_seed(0)
    items = [("JetFormer.tiny FFN (C=8)", randomise_norms(FeedForward(8, 16, "batch", "relu")), (9, 8), True),
             ("JetFormer.tiny attention (C=8, 2 heads)", SelfAttention(8, 2).eval(), (9, 8), False),
             ("JetFormer.tiny block", jetformer_block(), (9, 8), block_sim)]
    if not quick:
        items.append(("JetFormer.tiny (whole model)", randomise_norms(JetFormer.tiny(), 5), (8, 3), False))
    rows = []
    prec = PRECISIONS["acc32"]
    for name, model, shape, simulate in items:
        x = hard_inputs(2, shape, seed=1)
        x[1] = np.clip(x[1], -4, 4)
        e = estimate(model, torch.from_numpy(x[:1]), precision=prec)
        t0 = time.perf_counter()
        d = from_pytorch(model, torch.from_numpy(x[:1]), target="rtl", schedule="latency", precision=prec)
        row = {"block": name, "precision": "acc32", "est": e.report(), "route_cycles": d.stages + 1, "digest": d.digest(),
               "da4ml": d.resources, "build_s": round(time.perf_counter() - t0, 1), "simulated_cycles": None}
        if simulate:
            t0 = time.perf_counter()
            d(x[:1])
            row.update(simulated_cycles=d.cycles, sim_s=round(time.perf_counter() - t0, 1))
        if block_yosys and name == "JetFormer.tiny block":
            t0 = time.perf_counter()
            row["yosys"] = dict(d.synthesize(per_stage=True, timeout=3600))
            row["yosys_s"] = round(time.perf_counter() - t0, 1)
        row["err_pct"] = {"cycles": _err(e.cycles, row["simulated_cycles"] or row["route_cycles"]),
                          "dsp": _err(e.dsp, d.resources["dsp"]), "lut_vs_da4ml": _err(e.lut, d.resources["lut"])}
        if row.get("yosys"):
            row["err_pct"].update({f"{k}_vs_yosys": _err(getattr(e, k), row["yosys"][k]) for k in ("lut", "ff", "dsp")})
        print(f"{name}: estimate {e.cycles} cycles / {e.dsp} DSP / {e.lut} LUT; route {row['route_cycles']} cycles, "
              f"{d.resources['dsp']} DSP, {d.resources['lut']} LUT (da4ml)", flush=True)
        rows.append(row)
        if "whole" in name or (quick and name == "JetFormer.tiny block"):
            whole = {"name": name, "estimate": e, "design": d}
    return rows, whole


def pareto(whole: dict) -> list[dict]:
    """Reuse factors through the estimate (da4ml does not time-share); R = 1 is also the route's point."""
    e, d = whole["estimate"], whole["design"]
    pts = []
    for R in REUSE:
        r = e.with_reuse(R) if R != 1 else e
        pts.append({"model": whole["name"], "source": "estimate", "reuse_factor": R, "delay": e.delay,
                    "cycles": r.cycles, "ii": r.ii, "dsp": r.dsp, "lut": r.lut, "ff": r.ff})
    pts.append({"model": whole["name"], "source": "route (da4ml)", "reuse_factor": 1, "delay": d.delay,
                "cycles": d.stages + 1, "ii": 1, "dsp": d.resources["dsp"], "lut": d.resources["lut"],
                "ff": d.resources["ff"], "estimate_cycles": e.cycles, "estimate_dsp": e.dsp})
    return pts


def delay_sweep() -> list[dict]:
    """The route's own knob on one JetFormer.tiny block: the delay budget per stage (da4ml's latency cutoff)
    trades registers for cycles; each point is a built design beside its estimate."""
    from allo_ext.frontend import estimate, from_pytorch
    from allo_ext.models.latency_cases import hard_inputs, jetformer_block

    x = torch.from_numpy(hard_inputs(1, (9, 8), seed=1))
    pts = []
    for delay in DELAYS:
        d = from_pytorch(jetformer_block(), x, target="rtl", schedule="latency", precision=PRECISIONS["acc32"],
                         delay=delay)
        e = estimate(jetformer_block(), x, precision=PRECISIONS["acc32"], delay=delay)
        pts.append({"model": "JetFormer.tiny block", "delay": delay, "cycles": d.stages + 1, "dsp": d.resources["dsp"],
                    "lut": d.resources["lut"], "ff": d.resources["ff"], "estimate_cycles": e.cycles,
                    "estimate_lut": e.lut, "estimate_ff": e.ff, "estimate_dsp": e.dsp})
        print(f"block at delay {delay}: {pts[-1]}", flush=True)
    return pts


def reference(quick: bool) -> dict:
    """hls4ml's particle MLP at ap_fixed<16,6>: its csim time beside ours, and our latency route on it."""
    from allo_ext.frontend import estimate, from_pytorch

    from .csim import hls4ml_run, ours, particle_mlp

    m = particle_mlp()
    x = np.random.default_rng(0).normal(size=(256 if quick else 2048, 8, 3)).astype(np.float32)
    out = {"model": "particle MLP 24-64-32-32-5 (bench/csim.py), ap_fixed<16,6>", "jets": len(x)}
    try:
        h = hls4ml_run(m, x, 3)
        out["hls4ml"] = {"build_s": round(h["build_s"], 2), "csim_s": h["predict_s"], "latency_cycles": None,
                         "note": "no latency without Vitis HLS (csynth); not installed here"}
    except Exception as err:  # hls4ml is optional at run time: say why the row is missing
        out["hls4ml"] = {"error": f"{type(err).__name__}: {err}"[:300]}
    o = ours(m, x, 3)
    out["allo_ext_csim"] = {"build_s": round(o["build_s"], 2), "csim_s": o["predict_s"]}
    d = from_pytorch(m, torch.from_numpy(x[:8]), target="rtl", schedule="latency", precision=P16)
    d(x[:8])
    e = estimate(m, torch.from_numpy(x[:1]), precision=P16)
    out["allo_ext_latency_route"] = {"rtl_cycles": d.cycles, "ii": d.ii, "dsp": d.resources["dsp"],
                                     "lut_da4ml": d.resources["lut"], "estimate_cycles": e.cycles,
                                     "estimate_lut": e.lut, "estimate_dsp": e.dsp}
    return out


def trained_agreement(quick: bool, out: Path) -> list[dict]:
    """argmax agreement of the latency route with float torch, trained JetFormer.tiny, held-out jets."""
    from allo_ext.frontend import from_pytorch
    from allo_ext.quant import calibrate

    from .fixed import _jets, _train_jetformer

    n_train, n_test, epochs = (2000, 500, 8) if quick else (5000, 2000, 20)
    out.mkdir(parents=True, exist_ok=True)
    train_file, test_file = _jets(out / "data", n_train, n_test)
    res = _train_jetformer(train_file, test_file, out, epochs)
    model = res.model.eval()
    Xtr, _ = res.bundle.load_data(train_file)
    X, _ = res.bundle.load_data(test_file)
    X, Xtr = X.astype(np.float32), Xtr.astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(X)).argmax(-1).numpy()
    cal = calibrate(model, torch.from_numpy(Xtr[:1000]), bits=16, reference=P16, accum=ACC)
    rows = []
    for label, prec in (("ap_fixed<16,6>, acc " + ACC, {"default": P16, "accum": ACC}),
                        ("calibrated 16-bit types, acc " + ACC, cal.precision(default=P16, accum=ACC))):
        d = from_pytorch(model, torch.from_numpy(X[:4]), target="rtl", schedule="latency", precision=prec)
        pred = d.predict(X).argmax(-1)
        rows.append({"precision": label, "n_test": int(len(X)), "agreement": float((pred == ref).mean()),
                     "cycles": d.cycles, "lut": d.resources["lut"], "dsp": d.resources["dsp"]})
    return rows


def run(quick: bool, trained: bool, block_sim: bool, block_yosys: bool, out: Path, pieces: bool = False) -> dict:
    from allo_ext.models.latency_cases import kernel_cases, piece_cases

    t_start = time.perf_counter()
    kernels = []
    cases = {**kernel_cases(), **(piece_cases() if pieces else {})}
    for name, (mk, shape) in cases.items():
        for plabel in (("acc16",) if quick else tuple(PRECISIONS)):
            r = kernel_row(name, mk(), shape, plabel)
            print(f"{name} {plabel}: est {r['est']['cycles']} / RTL {r['rtl_cycles']} cycles; LUT est "
                  f"{r['est']['lut']} / Yosys {r['yosys'].get('lut')} / da4ml {r['da4ml']['lut']} ({r['yosys_s']} s)",
                  flush=True)
            kernels.append(r)
    blocks, whole = block_rows(quick, block_sim, block_yosys)
    pts = pareto(whole)
    sweep = delay_sweep()
    ref = reference(quick)
    agree = trained_agreement(quick, out) if trained else []
    return {"machine": machine_info(), "kernels": kernels, "blocks": blocks, "pareto": pts, "delay_sweep": sweep, "reference": ref,
            "trained": agree, "vu9p": VU9P, "bench_s": round(time.perf_counter() - t_start, 1)}


def _fmt(v):
    return "-" if v is None else (f"{v:+.0f}%" if isinstance(v, float) else str(v))


def to_markdown(d: dict) -> str:
    head = ["kernel", "acc", "cycles est", "cycles RTL", "err", "LUT est", "LUT Yosys", "err", "LUT da4ml",
            "FF est", "FF Yosys", "err", "DSP est", "DSP Yosys", "err", "bit-exact", "Yosys s"]
    rows = []
    for r in d["kernels"]:
        y, e, er = r["yosys"], r["est"], r["err_pct"]
        rows.append([r["kernel"], r["precision"], e["cycles"], r["rtl_cycles"], _fmt(er["cycles"]), e["lut"],
                     y.get("lut", y.get("error", "-")), _fmt(er["lut"]), r["da4ml"]["lut"], e["ff"], y.get("ff", "-"),
                     _fmt(er["ff"]), e["dsp"], y.get("dsp", "-"), _fmt(er["dsp"]),
                     "yes" if r["rtl_bit_exact_vs_llvm"] else "NO", r["yosys_s"]])
    md = (f"# Latency schedule: estimate against the RTL route (da4ml static pipeline) at {P16}\n\n"
          f"{machine_line(d['machine'])}; bench time {d['bench_s']} s\n\n"
          "## Kernels\n\ncycles RTL: measured in the Icarus simulation of the route's Verilog (6 items, II = 1). "
          "Yosys: `synth_xilinx -family xcup -nobram` on that Verilog. LUT da4ml: da4ml's own estimate, beside both "
          "(never used as a truth). acc16: 16-bit accumulator (each product rounded into it); acc32: ap_fixed<32,12> "
          "(constant products as one shared matrix product). bit-exact: the RTL outputs equal target='llvm' "
          "(= csim). The estimate is computed without da4ml (tests/test_latency_estimate.py).\n\n"
          + markdown_table(head, rows, "llrrrrrrrrrrrrrlr"))
    bh = ["block (acc32)", "cycles est", "cycles route", "simulated", "DSP est", "DSP route", "LUT est", "LUT da4ml",
          "FF est", "FF da4ml", "Yosys"]
    brows = []
    for r in d["blocks"]:
        e = r["est"]
        y = r.get("yosys")
        brows.append([r["block"], e["cycles"], r["route_cycles"], r["simulated_cycles"] or "-", e["dsp"],
                      r["da4ml"]["dsp"], e["lut"], r["da4ml"]["lut"], e["ff"], r["da4ml"]["ff"],
                      (f"{y['lut']} LUT ({_fmt(r['err_pct']['lut_vs_yosys'])}) / {y['ff']} FF "
                       f"({_fmt(r['err_pct']['ff_vs_yosys'])}) / {y['dsp']} DSP ({_fmt(r['err_pct']['dsp_vs_yosys'])})"
                       if y else "not run")])
    md += ("\n## Blocks\n\ncycles route: the pipeline's register count (stages + 1), which the simulation measures "
           "exactly on every kernel above; simulated: measured by the testbench in RTL simulation where run. DSP route: the DSP48E2 slices of the "
           "multipliers its Verilog writes. Yosys: `synth_xilinx` stage by stage (each pipeline stage with its input "
           "register, summed), since the flattened run does not finish on the block here: an approximation of it "
           "(no shift registers across stages, so FF is an upper bound; measured against the flattened run on "
           "kernels in tests/test_latency_synth.py); in brackets the estimate's error against it. The whole "
           "model is 30% above the route on DSP and 44% on FF in the estimate (its value ranges widen through "
           "two blocks faster than da4ml's), beyond the bounds the block and kernels meet.\n\n"
           + markdown_table(bh, brows, "lrrrrrrrrrl"))
    ph = ["model", "source", "reuse factor", "delay/stage", "cycles", "II", "DSP", "LUT", "FF", "est. cycles",
          "est. DSP"]
    prow = [[p["model"], p["source"], p["reuse_factor"], p["delay"], p["cycles"], p["ii"], p["dsp"], p["lut"], p["ff"],
             p.get("estimate_cycles", "-"), p.get("estimate_dsp", "-")] for p in d["pareto"]]
    md += ("\n## Pareto: JetFormer.tiny (acc32), latency against DSP over reuse factors\n\nda4ml does not "
           "time-share a multiplier, so reuse factors (hls4ml's name) exist only in the estimate of the latency "
           "schedule: DSPs divide by R, II = R, each multiplier in series waits R - 1 more cycles, operand muxes "
           "add LUTs; constant products stay parallel. The route's own knob is the delay budget per stage "
           f"(tests/test_latency_rtl.py). VU9P: {VU9P['dsp']} DSP, {VU9P['lut']} LUT.\n\n"
           + markdown_table(ph, prow, "llrrrrrrrrr"))
    sh = ["delay/stage", "cycles", "est. cycles", "DSP", "LUT (da4ml)", "est. LUT", "FF (da4ml)", "est. FF"]
    srows = [[p["delay"], p["cycles"], p["estimate_cycles"], p["dsp"], p["lut"], p["estimate_lut"], p["ff"],
              p["estimate_ff"]] for p in d.get("delay_sweep", [])]
    md += ("\n## The route's knob: delay budget per stage, one JetFormer.tiny block (acc32)\n\nda4ml's latency "
           "cutoff: fewer adder levels per stage mean more stages (cycles) and more registers, and a higher clock "
           "is possible (5 levels is the budget for 200 MHz; the cycle counts here are not converted to ns at other "
           "clocks). Each row is a built design (da4ml's LUT/FF estimate; cycles = the pipeline's registers) beside "
           "the estimate at the same budget.\n\n" + markdown_table(sh, srows, "rrrrrrrr"))
    ref = d["reference"]
    h = ref.get("hls4ml", {})
    ours_ = ref["allo_ext_csim"]
    lat = ref["allo_ext_latency_route"]
    md += (f"\n## Reference: {ref['model']}, {ref['jets']} jets\n\n"
           + markdown_table(["", "build s", "C simulation s", "latency"],
                            [["hls4ml 1.3.0", h.get("build_s", "-"), _num(h.get("csim_s")),
                              "none without Vitis HLS" if "error" not in h else h["error"]],
                             ["allo_ext csim", ours_["build_s"], _num(ours_["csim_s"]), "-"],
                             ["allo_ext latency route (RTL)", "-", "-",
                              f"{lat['rtl_cycles']} cycles (II {lat['ii']}), estimate {lat['estimate_cycles']}; "
                              f"{lat['lut_da4ml']} LUT (da4ml), est. {lat['estimate_lut']}; {lat['dsp']} DSP"]],
                            "lrrl"))
    if d["trained"]:
        md += ("\n## Trained JetFormer.tiny: argmax agreement with float torch (held-out generated jets)\n\n"
               + markdown_table(["precision", "jets", "agreement", "cycles", "LUT", "DSP"],
                                [[t["precision"], t["n_test"], f"{t['agreement']:.4f}", t["cycles"], t["lut"],
                                  t["dsp"]] for t in d["trained"]], "lrrrrr"))
    return md


def _num(v):
    return "-" if v is None else f"{v:.4f}"


def pareto_plot(name: str, pts: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .common import RESULTS

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    est = [p for p in pts if p["source"] == "estimate"]
    ax.plot([p["dsp"] for p in est], [p["cycles"] for p in est], "o-", label="estimate, reuse factor R")
    for p in est:
        ax.annotate(f"R={p['reuse_factor']}", (p["dsp"], p["cycles"]), textcoords="offset points", xytext=(4, 4))
    route = [p for p in pts if p["source"] != "estimate"]
    ax.plot([p["dsp"] for p in route], [p["cycles"] for p in route], "s", ms=9, mfc="none",
            label="route: da4ml's pipeline (R = 1)")
    ax.axvline(VU9P["dsp"], color="grey", ls="--", lw=1, label="VU9P DSPs")
    ax.set_xscale("log")
    ax.set_xlabel("DSP48E2")
    ax.set_ylabel("cycles at 200 MHz")
    ax.set_title(f"{pts[0]['model']}, ap_fixed<16,6>, acc32: cycles against DSP", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}-pareto.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trained", action="store_true")
    ap.add_argument("--no-block-sim", dest="block_sim", action="store_false",
                    help="skip the RTL simulation of the JetFormer.tiny block (a Verilator build of minutes)")
    ap.add_argument("--no-block-yosys", dest="block_yosys", action="store_false",
                    help="skip Yosys on the JetFormer.tiny block (stage by stage: ~10 minutes on 2 cores)")
    ap.add_argument("--pieces", action="store_true", help="attention and FFN at C=4 in the kernel table (Yosys: "
                    "tens of minutes each)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="bench-latency-"))
    d = run(a.quick, a.trained, a.block_sim, a.block_yosys, out, a.pieces)
    name = "latency-quick" if a.quick else "latency"
    write_results(name, d, to_markdown(d))
    ks = [r for r in d["kernels"] if r["precision"] == "acc16"]
    bar_chart(name, "Latency schedule at ap_fixed<16,6> (acc16): estimate against RTL and Yosys",
              [r["kernel"] for r in ks],
              {"cycles est": [r["est"]["cycles"] for r in ks], "cycles RTL": [r["rtl_cycles"] for r in ks],
               "kLUT est": [r["est"]["lut"] / 1e3 for r in ks],
               "kLUT Yosys": [r["yosys"].get("lut", 0) / 1e3 for r in ks],
               "kLUT da4ml": [r["da4ml"]["lut"] / 1e3 for r in ks],
               "DSP est": [r["est"]["dsp"] for r in ks], "DSP Yosys": [r["yosys"].get("dsp", 0) for r in ks]},
              "count", log=True)
    pareto_plot(name, d["pareto"])
    print(to_markdown(d))


if __name__ == "__main__":
    main()
