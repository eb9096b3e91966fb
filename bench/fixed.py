"""Benchmark: a trained JetFormer.tiny compiled at ap_fixed<16,6> (C simulation) against float torch,
and a particle MLP at the same type, ours against hls4ml 1.3.0, on the same generated jets.

1. jets: 5,000 for training and 2,000 held out (Pythia8 + FastJet, MPI off; the demo's data);
2. JetFormer.tiny trained as ``allo-ext train`` does (``workflow.train_on_file``), a particle MLP
   (Flatten, 64, 32, 32, 5, softmax) trained on the same jets with plain torch;
3. ``allo_ext.quant.calibrate`` on 1,000 training jets: integer bits per tensor, overflow counts at
   ap_fixed<16,6>;
4. compiled with ``from_pytorch(..., target="vitis_hls", mode="csim", precision=...)`` at
   ap_fixed<16,6> everywhere (accumulators ap_fixed<32,12>), and with the calibrated 16-bit types;
   argmax agreement with float torch on the held-out jets. hls4ml's particle MLP at ap_fixed<16,6>.

``python -m bench.fixed [--quick]`` writes bench/results/fixed.{json,md,png}. Under 10 minutes.
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

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results

PREC = "ap_fixed<16,6>"
ACC = "ap_fixed<32,12>"


def _jets(out: Path, n_train: int, n_test: int):
    from allo_ext.data.generate import generate

    return (generate(n_train, out / "train.h5", seed=0, mpi=False),
            generate(n_test, out / "test.h5", seed=1, mpi=False))


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

    n_train, n_test, epochs = (2000, 500, 8) if quick else (5000, 2000, 20)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_file, test_file = _jets(out / "data", n_train, n_test)
    res = _train_jetformer(train_file, test_file, out, epochs)
    model = res.model.eval()
    X, y = res.bundle.load_data(test_file)
    Xtr, ytr = res.bundle.load_data(train_file)
    X, Xtr = X.astype(np.float32), Xtr.astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(X)).numpy()
    cal = calibrate(model, torch.from_numpy(Xtr[:1000]), bits=16, reference=PREC, accum=ACC)
    rows, overflow = [], []
    for name, (ref_over, ours_over, size) in cal.overflows.items():
        overflow.append({"tensor": name, "max_abs": cal.max_abs[name], "type": cal.types[name].ap_type(),
                         "overflow_at_ap_fixed_16_6": ref_over, "overflow_calibrated": ours_over, "size": size})
    for label, prec in ((f"{PREC}, acc {ACC}", {"default": PREC, "accum": ACC}),
                        ("calibrated 16-bit types, acc " + ACC, cal.precision(default=PREC, accum=ACC))):
        yq, build = _ours(model, X, prec)
        rows.append({"model": "JetFormer.tiny (trained)", "tool": "allo-ext csim", "precision": label,
                     "argmax_agree_vs_float": float((yq.argmax(1) == ref.argmax(1)).mean()),
                     "max_abs_err": float(np.abs(yq - ref).max()), "accuracy": float((yq.argmax(1) == y).mean()),
                     "build_s": build})
    rows.append({"model": "JetFormer.tiny (trained)", "tool": "torch float32", "precision": "float32",
                 "argmax_agree_vs_float": 1.0, "max_abs_err": 0.0, "accuracy": float((ref.argmax(1) == y).mean()),
                 "build_s": 0.0})
    mlp = _train_mlp(Xtr, ytr, epochs=10 if quick else 30)
    with torch.no_grad():
        ref_m = mlp(torch.from_numpy(X)).numpy()
    for tool, (ym, build) in (("allo-ext csim", _ours(mlp, X, {"default": PREC, "accum": ACC})),
                              ("hls4ml 1.3.0", _hls4ml(mlp, X))):
        rows.append({"model": "particle MLP (trained)", "tool": tool, "precision": PREC,
                     "argmax_agree_vs_float": float((ym.argmax(1) == ref_m.argmax(1)).mean()),
                     "max_abs_err": float(np.abs(ym - ref_m).max()), "accuracy": float((ym.argmax(1) == y).mean()),
                     "build_s": build})
    # softmax alone at a wide type, where hls4ml 1.3.0's table-based softmax collapses
    torch.manual_seed(0)
    sm = nn.Sequential(nn.Linear(5, 5), nn.Softmax(dim=-1)).eval()
    Xs = (np.random.default_rng(0).standard_normal((n_test, 5)) * 3).astype(np.float32)
    with torch.no_grad():
        ref_s = sm(torch.from_numpy(Xs)).numpy()
    for tool, (ys, build) in (("allo-ext csim", _ours(sm, Xs, {"default": "ap_fixed<32,16>", "accum": "ap_fixed<48,24>"})),
                              ("hls4ml 1.3.0", _hls4ml(sm, Xs, "ap_fixed<32,16>"))):
        rows.append({"model": "Linear(5,5) + softmax", "tool": tool, "precision": "ap_fixed<32,16>",
                     "argmax_agree_vs_float": float((ys.argmax(1) == ref_s.argmax(1)).mean()),
                     "max_abs_err": float(np.abs(ys - ref_s).max()), "accuracy": float("nan"), "build_s": build})
    return {"machine": machine_info(), "n_train": n_train, "n_test": n_test, "epochs": epochs,
            "float_test_accuracy": float((ref.argmax(1) == y).mean()), "rows": rows, "overflow": overflow,
            "total_s": time.perf_counter() - t0}


def to_markdown(d: dict) -> str:
    hdr = ["model", "tool", "precision", "argmax agree vs float", "max abs err", "accuracy", "build (s)"]
    rows = [[r["model"], r["tool"], r["precision"], f"{r['argmax_agree_vs_float']:.4f}", f"{r['max_abs_err']:.2e}",
             f"{r['accuracy']:.4f}", f"{r['build_s']:.1f}"] for r in d["rows"]]
    ov = [[o["tensor"], f"{o['max_abs']:.3g}", o["type"], o["overflow_at_ap_fixed_16_6"], o["overflow_calibrated"],
           o["size"]] for o in d["overflow"]]
    return (f"# Fixed point: trained models at {PREC} in C simulation\n\n{machine_line(d['machine'])}\n\n"
            f"{d['n_train']} training jets, {d['n_test']} held-out jets (Pythia8 + FastJet, MPI off), "
            f"{d['epochs']} epochs. Accumulators {ACC}.\n\n" + markdown_table(hdr, rows)
            + "\n\n## Calibration (1,000 training jets): overflow counts per tensor\n\n"
            + markdown_table(["tensor", "max abs", "calibrated type", f"overflow at {PREC}", "overflow calibrated",
                              "values"], ov) + f"\n\nTotal time {d['total_s']:.0f} s.\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("out/bench-fixed"))
    a = ap.parse_args(argv)
    d = run(a.quick, a.out)
    write_results("fixed", d, to_markdown(d))
    labels = [f"{r['model'].split(' (')[0]}\n{r['tool']}\n{r['precision'][:22]}" for r in d["rows"]]
    bar_chart("fixed", f"argmax agreement with float torch at {PREC}", labels,
              {"agreement": [r["argmax_agree_vs_float"] for r in d["rows"]]}, "fraction of jets")
    print(to_markdown(d))


if __name__ == "__main__":
    main()
