"""Benchmark: a trained JetFormer.tiny compiled at 16-bit fixed point (C simulation) against float torch,
and a particle MLP at ap_fixed<16,6>, ours against hls4ml 1.3.0, on the same generated jets.

1. jets: 20,000 for training (seed 1) and 10,000 held out (seed 2), Pythia8 + FastJet with MPI on,
   served from the jet cache when present (generated fresh they take a while: see ``allo-ext generate``);
2. JetFormer.tiny trained as ``allo-ext train`` does (``workflow.train_on_file``, 40 epochs), a particle
   MLP (Flatten, 64, 32, 32, 5, softmax) trained on the same jets with plain torch;
3. ``allo_ext.quant.calibrate`` on 1,000 training jets: integer bits per tensor of the graph
   ``from_pytorch`` compiles, overflow counts at ap_fixed<16,6>;
4. compiled with ``from_pytorch(..., target="vitis_hls", mode="csim", precision=...)``: ap_fixed<16,6>
   everywhere, the calibrated 16-bit types (TRN and WRAP, ap_fixed's defaults), and the calibrated types
   with AP_RND and AP_SAT; accumulators ap_fixed<32,12>. Argmax agreement with float torch on 2,000 held-out jets.
   The llvm target (bit-identical to csim, checked here on those 2,000) measures the same types on all
   10,000 held-out jets: what each change buys. hls4ml's particle MLP at ap_fixed<16,6>.

``python -m bench.fixed [--quick]`` writes bench/results/fixed.{json,md,png}. 26 minutes on 2 cores shared
with a load of 18 (training is 40 epochs of about 10 s when idle).
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .common import machine_info, machine_line, markdown_table, write_results

PREC = "ap_fixed<16,6>"
PREC_RND = "ap_fixed<16,6,AP_RND,AP_SAT>"
ACC = "ap_fixed<32,12>"
N_CSIM = 2000  # held-out jets run through C simulation


def _jets(out: Path, n_train: int, n_test: int, mpi: bool):
    from allo_ext.data.generate import generate

    return (generate(n_train, out / "train.h5", seed=1, mpi=mpi),
            generate(n_test, out / "test.h5", seed=2, mpi=mpi))


def _train_jetformer(train_file, test_file, out: Path, epochs: int):
    from allo_ext.train import TrainConfig
    from allo_ext.workflow import train_on_file

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="resume=False")
        return train_on_file(train_file, out / "model", model_name="jetformer", preset="tiny",
                             config=TrainConfig(epochs=epochs, seed=0), test_data=test_file, resume=False)


def _train_mlp(X, y, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    n, p, f = X.shape
    m = nn.Sequential(nn.Flatten(), nn.Linear(p * f, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                      nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5), nn.Softmax(dim=-1))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, 256):
            idx = perm[i:i + 256]
            loss = nn.functional.nll_loss(torch.log(m(Xt[idx]) + 1e-9), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return m.eval()


def _ours(model, X, precision) -> tuple[np.ndarray, float]:
    from allo_ext.frontend import from_pytorch

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        f = from_pytorch(model, torch.from_numpy(X[:1]), target="vitis_hls", mode="csim", project=d,
                         precision=precision)
        build = time.perf_counter() - t0
        return np.asarray(f(X)), build


def _llvm(model, X, precision, chunk: int = 250) -> np.ndarray:
    from allo_ext.frontend import from_pytorch

    f = from_pytorch(model, torch.from_numpy(X[:chunk]), target="llvm", precision=precision)
    return np.concatenate([np.asarray(f(X[i:i + chunk])) for i in range(0, len(X), chunk)])


def _agree(y, ref) -> float:
    return float((y.argmax(1) == ref.argmax(1)).mean())


def _hls4ml(model, X, prec=PREC) -> tuple[np.ndarray, float]:
    import hls4ml

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        cfg = hls4ml.utils.config_from_pytorch_model(model, input_shape=tuple(X.shape[1:]),
                                                     default_precision=prec, granularity="model")
        hm = hls4ml.converters.convert_from_pytorch_model(model, output_dir=d, hls_config=cfg, backend="Vivado")
        hm.compile()
        build = time.perf_counter() - t0
        return np.asarray(hm.predict(X)), build


def run(quick: bool, out: Path) -> dict:
    from allo_ext.quant import calibrate

    n_train, n_test, epochs, mpi = (2000, 2000, 8, False) if quick else (20000, 10000, 40, True)
    n_csim = min(N_CSIM, n_test) if not quick else 500
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_file, test_file = _jets(out / "data", n_train, n_test, mpi)
    res = _train_jetformer(train_file, test_file, out, epochs)
    model = res.model.eval()
    X, y = res.bundle.load_data(test_file)
    Xtr, ytr = res.bundle.load_data(train_file)
    X, Xtr = X.astype(np.float32), Xtr.astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(X)).numpy()
    srt = np.sort(ref, 1)
    gap = srt[:, -1] - srt[:, -2]  # near-ties are what a quantised model can flip
    cal_args = dict(bits=16, reference=PREC, accum=ACC)
    cal = calibrate(model, torch.from_numpy(Xtr[:1000]), **cal_args)
    cal_rnd = calibrate(model, torch.from_numpy(Xtr[:1000]), q="RND", **cal_args)
    cal_sat = calibrate(model, torch.from_numpy(Xtr[:1000]), q="RND", o="SAT", **cal_args)
    overflow = [{"tensor": name, "own_max_abs": cal.own_max[name], "max_abs": cal.max_abs[name],
                 "type": cal.types[name].ap_type(), "overflow_at_ap_fixed_16_6": ref_over,
                 "overflow_calibrated": ours_over, "size": size}
                for name, (ref_over, ours_over, size) in cal.overflows.items()]
    variants = [(f"{PREC}, acc {ACC}", {"default": PREC, "accum": ACC}),
                (f"{PREC_RND}, acc {ACC}", {"default": PREC_RND, "accum": ACC}),
                (f"calibrated 16-bit (TRN), acc {ACC}", cal.precision(default=PREC, accum=ACC)),
                (f"calibrated 16-bit AP_RND, acc {ACC}", cal_rnd.precision(default="ap_fixed<16,6,AP_RND>", accum=ACC)),
                (f"calibrated 16-bit AP_RND AP_SAT, acc {ACC}", cal_sat.precision(default=PREC_RND, accum=ACC))]
    csim = {variants[0][0], variants[2][0], variants[4][0]}  # the rest: llvm only
    # every variant on all held-out jets with llvm (bit-identical to csim): what each change buys
    ablation = []
    for label, prec in variants:
        yl = _llvm(model, X, prec)
        ablation.append({"precision": label, "argmax_agree_vs_float": _agree(yl, ref), "n_jets": len(X),
                         "max_abs_err": float(np.abs(yl - ref).max()), "mean_abs_err": float(np.abs(yl - ref).mean()),
                         "accuracy": float((yl.argmax(1) == y).mean()), "llvm": yl})
    rows = []
    Xc, refc, yc = X[:n_csim], ref[:n_csim], y[:n_csim]
    for (label, prec), ab in zip(variants, ablation):
        if label not in csim:
            continue
        yq, build = _ours(model, Xc, prec)
        rows.append({"model": "JetFormer.tiny (trained)", "tool": "allo-ext csim", "precision": label,
                     "n_jets": n_csim, "argmax_agree_vs_float": _agree(yq, refc),
                     "max_abs_err": float(np.abs(yq - refc).max()), "accuracy": float((yq.argmax(1) == yc).mean()),
                     "build_s": build, "llvm_bit_identical": bool(np.array_equal(yq, ab["llvm"][:n_csim]))})
    for ab in ablation:
        del ab["llvm"]
    rows.append({"model": "JetFormer.tiny (trained)", "tool": "torch float32", "precision": "float32",
                 "n_jets": n_csim, "argmax_agree_vs_float": 1.0, "max_abs_err": 0.0,
                 "accuracy": float((refc.argmax(1) == yc).mean()), "build_s": 0.0})
    X, y, ref = Xc, yc, refc  # the particle MLP and the softmax rows below: the C-simulated jets
    mlp = _train_mlp(Xtr, ytr, epochs=10 if quick else 30)
    with torch.no_grad():
        ref_m = mlp(torch.from_numpy(X)).numpy()
    for tool, (ym, build) in (("allo-ext csim", _ours(mlp, X, {"default": PREC, "accum": ACC})),
                              ("hls4ml 1.3.0", _hls4ml(mlp, X))):
        rows.append({"model": "particle MLP (trained)", "tool": tool, "precision": PREC, "n_jets": len(X),
                     "argmax_agree_vs_float": float((ym.argmax(1) == ref_m.argmax(1)).mean()),
                     "max_abs_err": float(np.abs(ym - ref_m).max()), "accuracy": float((ym.argmax(1) == y).mean()),
                     "build_s": build})
    # softmax alone at a wide type, where hls4ml 1.3.0's table-based softmax collapses
    torch.manual_seed(0)
    sm = nn.Sequential(nn.Linear(5, 5), nn.Softmax(dim=-1)).eval()
    Xs = (np.random.default_rng(0).standard_normal((n_csim, 5)) * 3).astype(np.float32)
    with torch.no_grad():
        ref_s = sm(torch.from_numpy(Xs)).numpy()
    for tool, (ys, build) in (("allo-ext csim", _ours(sm, Xs, {"default": "ap_fixed<32,16>", "accum": "ap_fixed<48,24>"})),
                              ("hls4ml 1.3.0", _hls4ml(sm, Xs, "ap_fixed<32,16>"))):
        rows.append({"model": "Linear(5,5) + softmax", "tool": tool, "precision": "ap_fixed<32,16>",
                     "n_jets": len(Xs), "argmax_agree_vs_float": float((ys.argmax(1) == ref_s.argmax(1)).mean()),
                     "max_abs_err": float(np.abs(ys - ref_s).max()), "accuracy": float("nan"), "build_s": build})
    return {"machine": machine_info(), "n_train": n_train, "n_test": n_test, "n_csim": n_csim, "epochs": epochs,
            "mpi": mpi, "float_test_accuracy": float((ref.argmax(1) == y).mean()), "rows": rows,
            "ablation": ablation,
            "top2_gap_quantiles": {str(q): float(np.quantile(gap, q)) for q in (0.005, 0.01, 0.02)},
            "overflow": overflow, "total_s": time.perf_counter() - t0}


def to_markdown(d: dict) -> str:
    hdr = ["model", "tool", "precision", "jets", "argmax agree vs float", "max abs err", "accuracy", "build (s)",
           "= llvm"]
    rows = [[r["model"], r["tool"], r["precision"], r["n_jets"], f"{r['argmax_agree_vs_float']:.4f}",
             f"{r['max_abs_err']:.2e}", f"{r['accuracy']:.4f}", f"{r['build_s']:.1f}",
             {True: "bit-identical", False: "DIFFERS"}.get(r.get("llvm_bit_identical"), "")] for r in d["rows"]]
    ab = [[a["precision"], a["n_jets"], f"{a['argmax_agree_vs_float']:.4f}", f"{a['max_abs_err']:.2e}",
           f"{a['mean_abs_err']:.2e}", f"{a['accuracy']:.4f}"] for a in d["ablation"]]
    ov = [[o["tensor"], f"{o['own_max_abs']:.3g}", f"{o['max_abs']:.3g}", o["type"], o["overflow_at_ap_fixed_16_6"],
           o["overflow_calibrated"], o["size"]] for o in d["overflow"]]
    gaps = ", ".join(f"{float(q) * 100:g}%: {v:.3g}" for q, v in d["top2_gap_quantiles"].items())
    return (f"# Fixed point: trained models at 16-bit fixed point in C simulation\n\n{machine_line(d['machine'])}\n\n"
            f"{d['n_train']} training jets, {d['n_test']} held-out jets (Pythia8 + FastJet, MPI "
            f"{'on' if d['mpi'] else 'off'}), {d['epochs']} epochs; float test accuracy "
            f"{d['float_test_accuracy']:.4f}. C simulation on the first {d['n_csim']} held-out jets. "
            f"Accumulators {ACC}. Gap between the two largest float log-probabilities, quantiles: {gaps} "
            f"(a jet whose gap is below the fixed-point error can flip).\n\n" + markdown_table(hdr, rows)
            + f"\n\n## What each change buys (llvm, bit-identical to csim, all {d['n_test']} held-out jets)\n\n"
            + markdown_table(["JetFormer.tiny precision", "jets", "argmax agree vs float", "max abs err",
                              "mean abs err", "accuracy"], ab)
            + "\n\n## Calibration (1,000 training jets): overflow counts per tensor of the compiled graph\n\n"
            "A node's type covers its own values and what it reads (its inputs are converted into its type). "
            "BatchNorms that follow a linear are folded into it (the linear's row then shows the norm's values); "
            "channels-last BatchNorms are fused into `batch_norm_channels_last_default*` nodes.\n\n"
            + markdown_table(["tensor", "own max abs", "covered max abs", "calibrated type", f"overflow at {PREC}",
                              "overflow calibrated", "values"], ov) + f"\n\nTotal time {d['total_s']:.0f} s.\n")


def plot(d: dict) -> Path:
    """Horizontal bars with their values: the rows that matter sit between 0.9 and 1, where a vertical
    bar chart shows nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .common import RESULTS

    rows = [(f"{r['model'].split(' (')[0]} | {r['tool']} | {r['precision']}", r["argmax_agree_vs_float"])
            for r in d["rows"]]
    rows += [(f"JetFormer.tiny | llvm, {a['n_jets']} jets | {a['precision']}", a["argmax_agree_vs_float"])
             for a in d["ablation"]]
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(rows) + 1.2))
    ys = range(len(rows))[::-1]
    ax.barh(list(ys), [v for _, v in rows], color=["C0" if "llvm" not in lbl else "C1" for lbl, _ in rows])
    for y, (_, v) in zip(ys, rows):
        ax.text(min(v, 1.0) + 0.002, y, f"{v:.4f}", va="center", fontsize=8)
    ax.set_yticks(list(ys), [lbl for lbl, _ in rows], fontsize=8)
    ax.axvline(0.99, color="k", ls="--", lw=0.8)
    ax.set_xlim(0.0, 1.06)
    ax.set_xlabel("argmax agreement with float torch (dashed: the 99% target)")
    ax.set_title("16-bit fixed point vs float: csim (blue), llvm on all held-out jets (orange)", fontsize=10)
    fig.tight_layout()
    path = RESULTS / "fixed.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- the latency route (issue 9)
VU9P_DSP, VU9P_LUT = 6840, 1_182_240
N_PY = 300  # held-out jets run through da4ml's Python model where its C++ interpreter refuses a design


def _trained(out: Path, quick: bool):
    """The JetFormer.tiny of ``run`` (its checkpoint in ``out/model`` when a run left one), its bundle and
    the jets: (model, bundle, train file, test file, trained here?)."""
    from allo_ext.bundle import load_bundle

    n_train, n_test, epochs, mpi = (2000, 2000, 8, False) if quick else (20000, 10000, 40, True)
    train_file, test_file = _jets(out / "data", n_train, n_test, mpi)
    if (out / "model" / "best_model.pt").is_file():
        model, bundle, _ = load_bundle(out / "model")
        return model, bundle, train_file, test_file, False
    res = _train_jetformer(train_file, test_file, out, epochs)
    return res.model.eval(), res.bundle, train_file, test_file, True


def _latency_variants(model, Xtr):
    """(label, precision, C++ interpreter expected to run it): calibrated 16-bit types as in ``run`` and
    cheaper ones, for the LUT budget."""
    from allo_ext.quant import calibrate

    cal = {}

    def cal_prec(bits, q="RND", o=None, acc=ACC):
        key = (bits, q, o)
        if key not in cal:
            kw = {"q": q} if o is None else {"q": q, "o": o}
            cal[key] = calibrate(model, torch.from_numpy(Xtr[:1000]), bits=bits, reference=PREC, accum=acc, **kw)
        modes = f",AP_{q}" + (f",AP_{o}" if o else "")
        return cal[key].precision(default=f"ap_fixed<{bits},6{modes}>", accum=acc)

    return [(f"calibrated 16-bit AP_RND, acc {ACC}", cal_prec(16)),
            (f"{PREC}, acc {ACC}", {"default": PREC, "accum": ACC}),
            ("calibrated 16-bit AP_RND, acc ap_fixed<24,10>", cal_prec(16, acc="ap_fixed<24,10>")),
            (f"calibrated 14-bit AP_RND, acc {ACC}", cal_prec(14)),
            (f"calibrated 16-bit AP_RND AP_SAT, acc {ACC}", cal_prec(16, o="SAT"))]


def _csim_figures() -> dict:
    """bench/results/fixed.json's C simulation and llvm rows (the handshake/csim route), by precision label."""
    import json

    from .common import RESULTS

    path = RESULTS / "fixed.json"
    if not path.is_file():
        return {}
    d = json.loads(path.read_text())
    out = {}
    for r in d.get("rows", []):
        if r.get("tool") == "allo-ext csim" and r.get("model", "").startswith("JetFormer"):
            out.setdefault(r["precision"], {})["csim"] = (r["argmax_agree_vs_float"], r["n_jets"])
    for a in d.get("ablation", []):
        out.setdefault(a["precision"], {})["llvm"] = (a["argmax_agree_vs_float"], a["n_jets"])
    return out


def _rtl_sim(d, X, yd, ref) -> dict:
    """The design's Verilog simulated (Verilator at this size), the jets streamed one per clock: the outputs
    against da4ml's software model and float torch, and the cycles the testbench measures."""
    t0 = time.perf_counter()
    yr = d(X)
    return {"n_jets": len(X), "simulator": d.simulator().simulator, "cycles_measured": d.last_cycles, "ii": d.ii,
            "argmax_agree_vs_float": _agree(yr, ref), "bit_identical_software_model": bool(np.array_equal(yr, yd)),
            "sim_build_s": round(d.timings.get("sim_build_s", 0.0), 1),
            "sim_run_s": round(d.timings.get("sim_run_s", 0.0), 1), "total_s": round(time.perf_counter() - t0, 1)}


def run_latency(quick: bool, out: Path, partial=None, rtl_jets: int = 0, only: str | None = None,
                keep: list | None = None) -> dict:
    """The trained JetFormer.tiny through ``target="rtl", schedule="latency"`` (da4ml's static pipeline) at
    each precision: argmax agreement with float torch on the held-out jets through da4ml's bit-exact model of
    the Verilog, bit-identity with llvm (= csim), cycles, and da4ml's LUT/FF estimate and the DSPs.
    ``rtl_jets``: the first precision's Verilog is also simulated on that many held-out jets. ``only``: run the
    precisions whose label contains it; ``keep``: earlier rows of the others, kept in their place."""
    from allo_ext.frontend import from_pytorch

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    model, bundle, train_file, test_file, trained = _trained(out, quick)
    X, y = bundle.load_data(test_file)
    Xtr, _ = bundle.load_data(train_file)
    X, Xtr = X.astype(np.float32), Xtr.astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(X)).numpy()
    n_first = min(N_CSIM, len(X)) if not quick else min(500, len(X))
    csim = _csim_figures()
    rows = []
    earlier = {r["precision"]: r for r in keep or []}

    def summary() -> dict:
        ok = [r for r in rows if r["argmax_agree_vs_float"] >= 0.99 and r["fits_vu9p"] and r["csim_bit_identical"]
              and r["n_jets"] == len(X)]
        cheapest = min(ok, key=lambda r: (r["lut"], r["dsp"]))["precision"] if ok else None
        return {"machine": machine_info(), "n_test": len(X), "n_first": n_first, "quick": quick,
                "trained_here": trained, "float_test_accuracy": float((ref.argmax(1) == y).mean()),
                "vu9p": {"dsp": VU9P_DSP, "lut": VU9P_LUT}, "rows": rows, "cheapest_at_99": cheapest,
                "total_s": time.perf_counter() - t0}

    for k, (label, prec) in enumerate(_latency_variants(model, Xtr)):
        if only and only not in label:
            if label in earlier:
                rows.append(earlier[label])
            continue
        print(f"latency route: {label}", flush=True)
        tb = time.perf_counter()
        d = from_pytorch(model, torch.from_numpy(X[:1]), target="rtl", schedule="latency", precision=prec)
        build = time.perf_counter() - tb
        tp = time.perf_counter()
        try:
            d.comb.predict(X[:1].reshape(1, -1))
            n = len(X)
            model_used = "da4ml C++ interpreter"
        except RuntimeError:  # da4ml 0.6 refuses some AP_SAT muxes: its Python model runs them (slowly)
            n = min(N_PY, len(X))
            model_used = "da4ml Python model (its C++ interpreter refuses this design)"
        yd = d.predict(X[:n])
        predict_s = time.perf_counter() - tp
        yl = _llvm(model, X[:n], prec)
        nc = min(n, n_first)
        yc, csim_build = _ours(model, X[:nc], prec)  # csim: the handshake route's reference, on the first jets
        r = d.report()
        rows.append({"precision": label, "n_jets": n, "software_model": model_used,
                     "argmax_agree_vs_float": _agree(yd, ref[:n]),
                     "argmax_agree_first": _agree(yd[:n_first], ref[:min(n, n_first)]), "n_first": min(n, n_first),
                     "max_abs_err": float(np.abs(yd - ref[:n]).max()), "accuracy": float((yd.argmax(1) == y[:n]).mean()),
                     "llvm_bit_identical": bool(np.array_equal(yd, yl)),
                     "csim_bit_identical": bool(np.array_equal(yd[:nc], yc)), "n_csim": nc,
                     "csim_argmax_agree": _agree(yc, ref[:nc]), "csim_build_s": csim_build,
                     "csim_llvm_bit_identical": bool(np.array_equal(yl[:nc], yc)),
                     "csim_route": csim.get(label, {}),
                     "cycles": r["cycles"], "ii": r["ii"], "latency_ns": r["latency_ns"], "lut": r["lut"], "ff": r["ff"],
                     "dsp": r["dsp"], "stages": r["stages"],
                     "fits_vu9p": bool(r["dsp"] <= VU9P_DSP and r["lut"] <= VU9P_LUT),
                     "build_s": build, "predict_s": predict_s})
        if rtl_jets and k == 0:
            print(f"  RTL simulation of {min(rtl_jets, n)} jets (building the simulator can take minutes)", flush=True)
            rows[-1]["rtl"] = _rtl_sim(d, X[:min(rtl_jets, n)], yd[:min(rtl_jets, n)], ref[:min(rtl_jets, n)])
            print(f"  RTL: {rows[-1]['rtl']}", flush=True)
        print(f"  {rows[-1]['argmax_agree_vs_float']:.4f} on {n} jets, {r['cycles']} cycles, {r['lut']} LUT, "
              f"{r['dsp']} DSP, = llvm: {rows[-1]['llvm_bit_identical']}, = csim: {rows[-1]['csim_bit_identical']} "
              f"(csim {rows[-1]['csim_argmax_agree']:.4f} on {nc}; llvm = csim: {rows[-1]['csim_llvm_bit_identical']})",
              flush=True)
        if partial is not None:  # each variant takes minutes: what is measured is kept
            partial(summary())
    return summary()


def latency_markdown(d: dict) -> str:
    hdr = ["precision", "jets", "argmax agree vs float", f"first {d['n_first']} jets", "csim, same run",
           "= csim", "= llvm", "csim route (bench/fixed.json)", "cycles", "LUT", "FF", "DSP", "fits VU9P", "build (s)"]

    def csim_cell(c):
        parts = [f"{k} {v[0]:.4f} ({v[1]})" for k, v in sorted(c.items())]
        return ", ".join(parts) if parts else "-"

    same = {True: "bit-identical", False: "DIFFERS"}
    rows = [[r["precision"], r["n_jets"], f"{r['argmax_agree_vs_float']:.4f}", f"{r['argmax_agree_first']:.4f}",
             f"{r['csim_argmax_agree']:.4f} ({r['n_csim']})", same[r["csim_bit_identical"]],
             same[r["llvm_bit_identical"]] + ("" if r["csim_llvm_bit_identical"] else " (llvm != csim)"),
             csim_cell(r["csim_route"]), r["cycles"],
             f"{r['lut']:,}", f"{r['ff']:,}", r["dsp"], "yes" if r["fits_vu9p"] else "no", f"{r['build_s']:.0f}"]
            for r in d["rows"]]
    notes = [f"- {r['precision']}: {r['software_model']}, first {r['n_jets']} held-out jets"
             for r in d["rows"] if r["n_jets"] != d["n_test"]]
    return ("# Fixed point on the latency route: trained JetFormer.tiny as a da4ml static pipeline\n\n"
            f"{machine_line(d['machine'])}\n\n"
            f"`from_pytorch(model, x, target=\"rtl\", schedule=\"latency\", precision=...)` on the JetFormer.tiny "
            f"of `bench/fixed.py` ({'trained in this run' if d['trained_here'] else 'its checkpoint'}; float test "
            f"accuracy {d['float_test_accuracy']:.4f} on {d['n_test']} held-out jets). Types calibrated on 1,000 "
            "training jets (`allo_ext.quant.calibrate`). Outputs from da4ml's software model of the traced design "
            "(bit-exact with its Verilog: da4ml's guarantee, and Icarus-checked on blocks in tests/test_latency_rtl.py "
            "and tests/test_latency_precision.py), compared bit for bit with C simulation (g++ and ap_types, run here "
            f"on the first {d['n_first']} jets) and with target=\"llvm\" (all jets). Cycles: pipeline registers at 5 ns (200 MHz), II = 1. LUT/FF: da4ml's estimate; DSP: "
            f"one DSP48E2 per activation product of <= 27x18 bits. VU9P: <= {d['vu9p']['dsp']:,} DSP, "
            f"<= {d['vu9p']['lut']:,} LUT. csim route column: bench/results/fixed.json (C simulation on its first "
            "2,000 jets, llvm on all held-out jets) for the same precision where it measured it.\n\n"
            + markdown_table(hdr, rows)
            + ("\n\n" + "\n".join(notes) if notes else "")
            + "".join(f"\n\n**In RTL simulation** ({r['rtl']['simulator']}, the design's Verilog, "
                      f"{r['rtl']['n_jets']:,} held-out jets streamed one per clock), {r['precision']}: argmax "
                      f"agreement with float torch **{r['rtl']['argmax_agree_vs_float']:.4f}**, outputs "
                      f"{'bit-identical to' if r['rtl']['bit_identical_software_model'] else 'DIFFERENT from'} the "
                      f"software model's, **{r['rtl']['cycles_measured']} cycles measured** by the testbench, II "
                      f"{r['rtl']['ii']} (simulator build {r['rtl']['sim_build_s']:.0f} s, run "
                      f"{r['rtl']['sim_run_s']:.0f} s)." for r in d["rows"] if r.get("rtl"))
            + f"\n\nCheapest design with >= 99% agreement, bit-identical to csim and within the VU9P: "
            f"**{d['cheapest_at_99'] or 'none'}**.\n\nTotal time {d['total_s']:.0f} s.\n")


def latency_plot(d: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .common import RESULTS

    fig, ax = plt.subplots(figsize=(8, 4.8))
    for r in d["rows"]:
        ax.scatter(r["lut"] / 1e3, r["argmax_agree_vs_float"], s=20 + r["dsp"] / 60,
                   marker="o" if r["n_jets"] == d["n_test"] else "x")
        ax.annotate(f"{r['precision']}\n{r['cycles']} cyc, {r['dsp']} DSP", (r["lut"] / 1e3, r["argmax_agree_vs_float"]),
                    fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.axhline(0.99, color="k", ls="--", lw=0.8)
    ax.axvline(d["vu9p"]["lut"] / 1e3, color="r", ls=":", lw=0.8)
    ax.set_xlabel("LUT (thousands, da4ml estimate; dotted: VU9P)")
    ax.set_ylabel("argmax agreement with float torch (dashed: 99%)")
    ax.set_title("JetFormer.tiny on the latency route (marker size: DSP; x: Python-model subset)", fontsize=9)
    fig.tight_layout()
    path = RESULTS / "fixed_latency.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("out/bench-fixed"))
    ap.add_argument("--plot-only", action="store_true", help="redraw fixed.png from bench/results/fixed.json")
    ap.add_argument("--latency", action="store_true",
                    help="the latency route (target='rtl', schedule='latency') instead: bench/results/fixed_latency.*; "
                         "reuses the checkpoint a full run left in --out")
    ap.add_argument("--only", metavar="TEXT", help="with --latency: rerun the precisions whose label contains TEXT, "
                    "keeping the other rows of bench/results/fixed_latency.json")
    ap.add_argument("--rtl-jets", type=int, default=0, metavar="N",
                    help="with --latency: simulate the first precision's Verilog on N held-out jets (Verilator: a "
                         "build of minutes)")
    a = ap.parse_args(argv)
    if a.latency:
        name = "fixed_latency-quick" if a.quick else "fixed_latency"

        def save(d):
            write_results(name, d, latency_markdown(d))
            if not a.quick:
                latency_plot(d)

        keep = None
        if a.only:
            import json

            from .common import RESULTS

            keep = json.loads((RESULTS / f"{name}.json").read_text())["rows"]
        d = run_latency(a.quick, a.out, partial=save, rtl_jets=a.rtl_jets, only=a.only, keep=keep)
        save(d)  # rows kept after the last one run are in the final summary only
        print(latency_markdown(d))
        return
    if a.plot_only:
        import json

        from .common import RESULTS

        plot(json.loads((RESULTS / "fixed.json").read_text()))
        return
    d = run(a.quick, a.out)
    write_results("fixed", d, to_markdown(d))
    plot(d)
    print(to_markdown(d))


if __name__ == "__main__":
    main()
