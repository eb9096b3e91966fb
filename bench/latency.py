"""Benchmark: the latency route (target="rtl", schedule="latency": kernels traced into a da4ml pipeline).

Per model or JetFormer.tiny block, at ap_fixed<16,6> (and with an ap_fixed<32,12> accumulator, where
constant products become one distributed-arithmetic matrix product) and per stage delay budget:

- cycles: pipeline registers from input ports to output ports (II = 1); for the rows simulated in
  Icarus, measured there (first clock with a defined output) and checked bit for bit against
  target="llvm" (itself bit-exact with csim) on random inputs;
- LUT and FF: da4ml's estimate (multipliers counted as LUTs, and without them); DSP: the DSP48E2
  slices of the activation-activation products (QK^T, AV, the softmax's table products);
- trace and pipeline times.

With ``--trained``: JetFormer.tiny trained on generated jets (as bench/fixed.py does), argmax
agreement with float torch on the held-out jets through the latency route's bit-exact model of the
Verilog (``design.predict``; identical to the Icarus simulation wherever both ran).

    python -m bench.latency [--quick] [--trained]

Writes bench/results/latency.{json,md,png} (``--quick``: latency-quick.*). Targets (issue 9):
<= 100 cycles at 200 MHz for the whole model, <= 6,840 DSP and <= 1,182,240 LUT (a VU9P).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results

P16 = "ap_fixed<16,6>"
ACC = "ap_fixed<32,12>"
PRECISIONS = {"acc16": P16, "acc32": {"default": P16, "accum": ACC}}
VU9P = {"lut": 1_182_240, "dsp": 6_840}


def _bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                mod.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.05)
    return model.eval()


def models(quick: bool):
    from allo_ext.models import JetFormer
    from allo_ext.models.baselines import ParticleMLP
    from allo_ext.models.layers import FeedForward, SelfAttention

    torch.manual_seed(0)
    out = [("linear-relu-linear 8-12-5", nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 5)).eval(), (8,),
            True)]
    out.append(("particle MLP 24-64-32-32-5", ParticleMLP().eval(), (8, 3), not quick))
    out.append(("JetFormer.tiny FFN block", _bn(FeedForward(8, 16, "batch", "relu")), (9, 8), not quick))
    out.append(("JetFormer.tiny attention block", SelfAttention(8, 2).eval(), (9, 8), False))
    if not quick:
        out.append(("JetFormer.tiny (whole)", _bn(JetFormer.tiny()), (8, 3), False))
    return out


def measure(name, model, shape, simulate: bool, precision_label: str, delay: float, n_sim: int = 32) -> dict:
    from allo_ext.frontend import from_pytorch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_sim,) + shape).astype(np.float32)
    prec = PRECISIONS[precision_label]
    t0 = time.perf_counter()
    d = from_pytorch(model, torch.from_numpy(x), target="rtl", schedule="latency", precision=prec, delay=delay)
    build_s = time.perf_counter() - t0
    want = from_pytorch(model, torch.from_numpy(x), target="llvm", precision=prec)(x)
    row = {"model": name, "precision": precision_label, "delay": delay, **d.report(), "build_s": round(build_s, 2),
           **{k: round(v, 2) for k, v in d.timings.items()},
           "predict_bit_exact": bool(np.array_equal(d.predict(x), want)), "simulated": False}
    if simulate:
        t0 = time.perf_counter()
        got = d(x)
        row.update(simulated=True, rtl_bit_exact=bool(np.array_equal(got, want)), rtl_items=n_sim,
                   sim_s=round(time.perf_counter() - t0, 2), cycles=d.cycles)
    return row


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


def run(quick: bool, trained: bool, out: Path) -> dict:
    rows = []
    delays = (5.0,) if quick else (3.0, 5.0, 10.0)
    for name, model, shape, sim in models(quick):
        for plabel in PRECISIONS:
            for delay in delays:
                if delay != 5.0 and "whole" in name:
                    continue
                r = measure(name, model, shape, sim and delay == 5.0, plabel, delay)
                print(f"{name} {plabel} delay {delay}: {r['cycles']} cycles, {r['lut']} LUT, {r['dsp']} DSP", flush=True)
                rows.append(r)
    agree = trained_agreement(quick, out) if trained else []
    return {"machine": machine_info(), "rows": rows, "trained": agree, "vu9p": VU9P}


def to_markdown(d: dict) -> str:
    head = ["model", "precision", "delay/stage", "cycles", "latency @200 MHz (ns)", "II", "LUT (da4ml)",
            "LUT w/o mult", "FF", "DSP", "fits VU9P", "bit-exact vs llvm", "build s"]
    rows = []
    for r in d["rows"]:
        fits = "yes" if r["lut_without_multipliers"] <= VU9P["lut"] and r["dsp"] <= VU9P["dsp"] else "no"
        exact = ("RTL (Icarus, %d items) and model" % r["rtl_items"]) if r.get("simulated") and r.get("rtl_bit_exact") \
            else ("model" if r["predict_bit_exact"] else "NO")
        rows.append([r["model"], r["precision"], r["delay"], r["cycles"], f"{r['cycles'] * 5:.0f}", r["ii"], r["lut"],
                     r["lut_without_multipliers"], r["ff"], r["dsp"], fits, exact, r["build_s"]])
    md = (f"# Latency route (da4ml static pipeline) at {P16}\n\n{machine_line(d['machine'])}\n\n"
          "cycles: input register to output register, one item per clock (II = 1). LUT/FF: da4ml's estimate; "
          "DSP: DSP48E2 slices of activation-activation products. `model`: da4ml's bit-exact software model "
          "of the Verilog equals target='llvm' (= csim) on 32 random inputs; `RTL`: the Icarus simulation "
          "too.\n\n" + markdown_table(head, rows, "llrrrrrrrrrlr"))
    if d["trained"]:
        md += ("\n## Trained JetFormer.tiny: argmax agreement with float torch (held-out generated jets)\n\n"
               + markdown_table(["precision", "jets", "agreement", "cycles", "LUT", "DSP"],
                                [[t["precision"], t["n_test"], f"{t['agreement']:.4f}", t["cycles"], t["lut"],
                                  t["dsp"]] for t in d["trained"]], "lrrrrr"))
    return md


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trained", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="bench-latency-"))
    d = run(a.quick, a.trained, out)
    name = "latency-quick" if a.quick else "latency"
    write_results(name, d, to_markdown(d))
    five = [r for r in d["rows"] if r["delay"] == 5.0 and r["precision"] == "acc32"]
    bar_chart(name, "Latency route at ap_fixed<16,6> (acc32, delay 5): cycles and resources",
              [r["model"] for r in five],
              {"cycles": [r["cycles"] for r in five], "kLUT": [r["lut_without_multipliers"] / 1e3 for r in five],
               "DSP/10": [r["dsp"] / 10 for r in five]}, "count", log=True)
    print(to_markdown(d))


if __name__ == "__main__":
    main()
