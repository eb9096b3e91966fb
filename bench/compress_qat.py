"""Benchmark: fixed-point QAT against post-training quantisation for JetFormer.tiny on generated jets.

A float JetFormer.tiny (4 blocks, C=8, 2 heads; 8 particles x 3 features) is trained with the paper's
recipe, then for each of ap_fixed<16,6>, <10,4> and <8,3>:

- PTQ: the float model compiled at that precision (its accuracy is that of the fake-quantised
  forward, which is bit-exact with from_pytorch(..., target="llvm", precision=...));
- QAT: the float model fine-tuned for a few epochs through the fake-quantised forward
  (allo_ext.compress.fixed_qat), then compiled; the compiled llvm model is compared with the
  fake-quantised forward bit for bit on 256 held-out jets.

Twice: with the accumulator in the activation type (what ``precision="ap_fixed<8,3>"`` compiles) and
with a wide accumulator ap_fixed<32,12> (``--accum``). The budget is small on purpose (2 shared cores):
``--max-jets`` training jets, ``--epochs`` QAT epochs per precision.

Writes bench/results/compress_qat.{json,md,png}. The float run resumes from build/.

    python -m bench.compress_qat [--epochs 3] [--max-jets 6000] [--n-test 5000]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


from allo_ext.data.generate import generate

from .common import machine_info, machine_line, markdown_table, write_results

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-epochs", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3, help="QAT fine-tuning epochs per precision")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--max-jets", type=int, default=6000, help="train on the first N generated jets (90/10 split)")
    ap.add_argument("--n-test", type=int, default=10000, help="generated held-out jets (seed 2)")
    ap.add_argument("--eval-n", type=int, default=5000, help="held-out jets used for the accuracies")
    ap.add_argument("--accum", default="both", choices=["none", "wide", "both"],
                    help="accumulator: the activation type, ap_fixed<32,12>, or both")
    ap.add_argument("--check-n", type=int, default=256)
    ap.add_argument("--work-dir", type=Path, default=REPO / "build" / "bench_compress" / "qat")
    ap.add_argument("--results-name", default="compress_qat")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the Markdown and the plot from bench/results/<name>.json without running")
    args = ap.parse_args(argv)
    if args.report_only:
        import json

        out = json.loads((RESULTS / f"{args.results_name}.json").read_text())
        write_results(args.results_name, out, markdown(out))
        plot_bits(out, RESULTS / f"{args.results_name}.png")
        return out
    args.work_dir.mkdir(parents=True, exist_ok=True)

    from allo_ext.bundle import load_bundle
    from allo_ext.compress.data import load_for_bundle
    from allo_ext.compress.fixed_qat_train import PRECISIONS, ptq_vs_qat
    from allo_ext.train import TrainConfig
    from allo_ext.workflow import train_on_file

    train_file = generate(args.n_train, seed=1, mpi=True)
    if args.max_jets < args.n_train:
        from .compress_subset import subset

        train_file = subset(train_file, args.max_jets, args.work_dir)
    test_file = generate(args.n_test, seed=2, mpi=True)
    t0 = time.perf_counter()
    base = train_on_file(train_file, args.work_dir / "float_tiny", preset="tiny", n_particles=8,
                         config=TrainConfig(epochs=args.base_epochs, progress=False), test_data=test_file)
    float_s = time.perf_counter() - t0
    model, bundle, _ = load_bundle(args.work_dir / "float_tiny")
    data = load_for_bundle(bundle, train_file, test_file)
    data.x_test, data.y_test = data.x_test[:args.eval_n], data.y_test[:args.eval_n]
    accums = {"none": [None], "wide": ["ap_fixed<32,12>"], "both": [None, "ap_fixed<32,12>"]}[args.accum]
    runs = []
    t1 = time.perf_counter()
    for acc in accums:
        rep = ptq_vs_qat(model, data, PRECISIONS, accum=acc, epochs=args.epochs, lr=args.lr,
                         check_n=args.check_n, progress=True)
        runs.append(rep)
    out = {"runs": runs, "float_test_accuracy_run": base.test_accuracy, "float_train_s": float_s,
           "qat_total_s": time.perf_counter() - t1, "train_file": str(train_file), "test_file": str(test_file),
           "n_train": int(len(data.y_train)), "n_val": int(len(data.y_val)), "n_eval": int(len(data.y_test)),
           "epochs": {"float": args.base_epochs, "qat": args.epochs}, "lr": args.lr, "machine": machine_info()}
    write_results(args.results_name, out, markdown(out))
    plot_bits(out, RESULTS / f"{args.results_name}.png")
    return out


def _bits(label: str) -> int:
    return int(label.split("<")[1].split(",")[0])


def plot_bits(out: dict, path: Path) -> Path:
    """Held-out accuracy against the total bits of ap_fixed<W,I>: PTQ and QAT per accumulator, and
    the float model as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.axhline(out["runs"][0]["float_accuracy"], c="k", ls="--", label="float32")
    ax.axhline(0.2, c="grey", ls=":", label="chance (5 classes)")
    for k, rep in enumerate(out["runs"]):
        acc = rep["accum"] or "accumulator = activation type"
        rows = sorted(rep["rows"], key=lambda r: _bits(r["precision"]))
        bits = [_bits(r["precision"]) for r in rows]
        ls = "-" if k == 0 else ":"
        ax.plot(bits, [r["ptq_accuracy"] for r in rows], "o" + ls, c="tab:orange", label=f"PTQ ({acc})")
        ax.plot(bits, [r["qat_accuracy"] for r in rows], "s" + ls, c="tab:blue", label=f"QAT ({acc})")
        for b, r in zip(bits, rows):
            ax.annotate(r["precision"], (b, r["qat_accuracy"]), fontsize=7, xytext=(3, 4), textcoords="offset points")
    ax.set_xlabel("total bits W of ap_fixed<W,I>")
    ax.set_ylabel(f"accuracy on {out['n_eval']:,} held-out jets")
    ax.set_title("JetFormer.tiny: post-training quantisation vs QAT")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown(out: dict) -> str:
    info = out["machine"]
    md = ["# Fixed-point QAT vs post-training quantisation: JetFormer.tiny on generated jets\n",
          machine_line(info) + "\n",
          f"{out['n_train']:,} training / {out['n_val']:,} validation generated jets (Pythia8 + FastJet, MPI on, "
          f"seed 1), accuracies on {out['n_eval']:,} held-out jets (seed 2); 8 particles x (pT_rel, eta_rel, "
          f"phi_rel), 5 classes.\n",
          f"Budget (2 shared cores): the float model {out['epochs']['float']} epochs "
          f"({out['float_train_s']:.0f} s, resumed from build/ when present); QAT fine-tunes it for "
          f"{out['epochs']['qat']} epochs per precision (AdamW lr {out['lr']:g}, cosine, BatchNorm statistics "
          f"frozen) through the fake-quantised forward; all QAT runs together took {out['qat_total_s']:.0f} s of "
          "wall time at nice priority, evaluations and the bit-exactness compiles included.\n",
          "PTQ = the float model compiled at the precision. QAT = the fine-tuned model compiled at it. Both "
          "accuracies come from the fake-quantised forward, which is bit-exact with the compiled llvm model: "
          "the last column compiles the QAT model and counts held-out jets whose log-probabilities differ in "
          "any bit.\n"]
    rows = []
    for rep in out["runs"]:
        acc = rep["accum"] or "= activation type"
        for r in rep["rows"]:
            be = r.get("bit_exact_llvm")
            rows.append([r["precision"], acc, f"{rep['float_accuracy']:.4f}", f"{r['ptq_accuracy']:.4f}",
                         f"{r['qat_accuracy']:.4f}", f"{r['qat_accuracy'] - r['ptq_accuracy']:+.4f}",
                         r["qat"]["best_epoch"], f"{r['qat']['train_s']:.0f}", f"{r['seconds']:.0f}",
                         f"{be['jets_differing']} / {be['n_jets']}" if be else "not run"])
    md.append(markdown_table(["precision", "accumulator", "float32", "PTQ", "QAT", "QAT - PTQ", "best epoch",
                              "QAT train (s)", "row total (s)", "compiled llvm differs (jets)"], rows))
    md.append("\nRow total = PTQ evaluation + QAT fine-tuning + QAT evaluation, at nice priority on the shared "
              "machine (the bit-exactness check's compile is extra). Paper: DESIGN.md records no ap_fixed "
              "accuracies for JetFormer-tiny (its quantisation table is the 1-bit one, in compress_models.md), "
              "so there is no paper column here.\n")
    if out.get("note"):
        md.append(f"\nNote: {out['note']}\n")
    md.append("\n![accuracy vs bits](compress_qat.png)\n")
    return "\n".join(md)


if __name__ == "__main__":
    main()
