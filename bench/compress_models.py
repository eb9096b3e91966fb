"""Benchmark: pruning, 1-bit QAT, Linformer/particle orderings and explain on generated jets.

Parts (``--parts``, all by default):

- ``prune``: JetFormer-tiny (4, 8, 2) on 8 particles trained with the paper's recipe, then pruned
  (torch-pruning, Taylor, ratio 0.5 in 5 steps with 5 fine-tuning epochs each), uniform per layer
  and global; FLOPs, parameters (ours and the paper's convention), test accuracy and torch time
  before and after; the pruned model compiled (llvm, csim) against torch.
- ``quantize``: BitJetFormer (3, 64, 2) on 8 x 3 trained from scratch (ReduceLROnPlateau 0.8/5, min lr
  1e-4) next to the full-precision JetFormer with the paper's OneCycle recipe; Table 6 sizes, test
  accuracy, bitlinear kernel calls and csim against torch.
- ``linformer``: JetFormer-tiny against LinformerJetFormer-tiny (k=4) at 8, 16 and 32 particles,
  particle orderings pt/kt/random and fixed projections (leading, pool); test accuracy and FLOPs.
- ``explain``: attention heat-maps by class and the embedding PCA of the trained tiny model.

Writes bench/results/compress_models.{json,md} and compress_*.png. Runs resume from build/.

    python -m bench.compress_models [--parts prune,quantize,linformer,explain] [--base-epochs 20]
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from allo_ext.data.generate import generate

from .common import machine_info, machine_line, markdown_table, write_results

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PAPER = {"prune_flops_before": 26168, "prune_flops_change": -0.47, "prune_params_change": -0.35,
         "size_full_kb": 404.12, "size_one_bit_kb": 31.37}
# The paper's accuracies are on the hls4ml LHC jet dataset, not on these generated jets, and
# DESIGN.md does not record them: the accuracy cells of the paper rows say so instead of a number.
NO_PAPER_ACC = "not in DESIGN.md"


def part_prune(args, train_file, test_file, work: Path) -> dict:
    from allo_ext.compress.data import load_for_bundle
    from allo_ext.compress.prune import PruneConfig, prune
    from allo_ext.compress.quantize import check_compiled
    from allo_ext.models import count
    from allo_ext.train import TrainConfig
    from allo_ext.workflow import train_on_file

    base = train_on_file(train_file, work / "base_tiny", preset="tiny", n_particles=8,
                         config=TrainConfig(epochs=args.base_epochs, progress=False), test_data=test_file)
    out = {"base_run": str(work / "base_tiny"), "base_test_accuracy": base.test_accuracy}
    for mode in ("uniform", "global"):
        from allo_ext.bundle import load_bundle

        model, bundle, _ = load_bundle(work / "base_tiny")
        data = load_for_bundle(bundle, train_file, test_file)
        paper_before = count(model, 8, 3)["paper_params"]
        cfg = PruneConfig(ratio=0.5, steps=5, finetune_epochs=args.finetune_epochs,
                          global_pruning=mode == "global")
        t0 = time.perf_counter()
        model, rep = prune(model, data, cfg, progress=False)
        rep["seconds"] = time.perf_counter() - t0
        paper_after = count(model, 8, 3)["paper_params"]
        rep["paper_params_change"] = paper_after / paper_before - 1
        rep["paper_params"] = [paper_before, paper_after]
        rep["compiled"] = check_compiled(model, data.x_test[:256])
        out[mode] = rep
        print(f"prune {mode}: flops {rep['flops_change']:+.1%} params {rep['params_change']:+.1%} "
              f"acc {rep['before']['accuracy']:.4f} -> {rep['after']['accuracy']:.4f}", flush=True)
    return out


def part_quantize(args, train_file, test_file, work: Path) -> dict:
    from allo_ext.compress.quantize import qat_config, quantize_report, train_bitjetformer
    from allo_ext.compress.size import size_report
    from allo_ext.train import TrainConfig

    shape = dict(n_blocks=3, dim=64, n_heads=2, n_particles=8)
    bit = train_bitjetformer(train_file, work / "bit_3_64_2", config=qat_config(args.qat_epochs, progress=False),
                             test_data=test_file, **shape)
    fp = train_bitjetformer(train_file, work / "fp_3_64_2", model="jetformer",
                            config=TrainConfig(epochs=args.qat_epochs, progress=False), test_data=test_file, **shape)
    x, _ = bit.bundle.load_data(test_file, n=256)
    rep = quantize_report(bit.model, x)
    print(f"quantize: 1-bit acc {bit.test_accuracy:.4f}, fp acc {fp.test_accuracy:.4f}, sizes {rep['size']}", flush=True)
    return {"bit": {"test_accuracy": bit.test_accuracy, "val_accuracy": bit.val_accuracy, "epochs": bit.epochs_run,
                    **rep},
            "fp": {"test_accuracy": fp.test_accuracy, "val_accuracy": fp.val_accuracy, "epochs": fp.epochs_run,
                   "size": size_report(fp.model)}}


def part_linformer(args, train_file, test_file, work: Path) -> dict:
    from allo_ext.compress.data import load_jets
    from allo_ext.compress.ordering import set_fixed_projections
    from allo_ext.compress.quantize import check_compiled
    from allo_ext.models import JetFormer, LinformerJetFormer, count
    from allo_ext.train import TrainConfig, evaluate, fit

    variants = [("jetformer", "pt", "-"), ("linformer", "pt", "learned"), ("linformer", "kt", "learned"),
                ("linformer", "random", "learned"), ("linformer", "pt", "leading")]
    if args.lin_all:
        variants += [("jetformer", "kt", "-"), ("jetformer", "random", "-"), ("linformer", "pt", "pool")]
    rows = []
    for n in (8, 16, 32):
        data = {o: load_jets(train_file, test_file, n_particles=n, ordering=o, max_train=args.lin_max_train)
                for o in ("pt", "kt", "random")}
        for model_name, order, proj in variants:
            torch.manual_seed(0)
            if model_name == "jetformer":
                model = JetFormer.tiny(n_particles=n)
            else:
                model = LinformerJetFormer.tiny(n_particles=n, k=args.k)
                set_fixed_projections(model, proj)
            d = data[order]
            t0 = time.perf_counter()
            # Short runs: cosine decay from 3e-3 learns in a few epochs where OneCycle's warm-up would not.
            fit(model, d.train, d.val, TrainConfig(epochs=args.lin_epochs, scheduler="cosine", lr=3e-3,
                                                   progress=False, save_plots=False))
            acc = evaluate(model, d.x_test, d.y_test).accuracy
            row = {"n_particles": n, "model": model_name, "ordering": order, "projection": proj,
                   "k": args.k if model_name == "linformer" else None, "test_accuracy": float(acc),
                   "flops": int(count(model, n, 3)["flops"]), "seconds": time.perf_counter() - t0}
            if model_name == "linformer" and n == 8 and order == "pt" and proj == "learned":
                row["compiled"] = check_compiled(model, d.x_test[:128])
            rows.append(row)
            print(f"linformer part: {row}", flush=True)
    return {"rows": rows, "epochs": args.lin_epochs, "max_train": args.lin_max_train, "k": args.k}


def part_explain(args, train_file, test_file, work: Path) -> dict:
    from allo_ext.bundle import load_bundle
    from allo_ext.compress.explain import explain

    model, bundle, _ = load_bundle(work / "base_tiny")
    x, y = bundle.load_data(test_file, n=3000)
    rep = explain(model, x, y, work / "explain", bundle.class_names)
    last = Path(rep["attention_pngs"][-1])
    shutil.copyfile(last, RESULTS / "compress_explain_attention.png")
    shutil.copyfile(rep["embeddings_png"], RESULTS / "compress_explain_pca.png")
    rep["copied"] = ["compress_explain_attention.png", "compress_explain_pca.png"]
    return rep


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="prune,quantize,linformer,explain")
    ap.add_argument("--base-epochs", type=int, default=20)
    ap.add_argument("--finetune-epochs", type=int, default=5)
    ap.add_argument("--qat-epochs", type=int, default=15)
    ap.add_argument("--lin-epochs", type=int, default=5)
    ap.add_argument("--lin-max-train", type=int, default=8000)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--lin-all", action="store_true", help="also JetFormer with kt/random order and pool projections")
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--max-jets", type=int, default=6000, help="train on the first N generated jets (90/10 split)")
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument("--work-dir", type=Path, default=REPO / "build" / "bench_compress" / "models")
    ap.add_argument("--results-name", default="compress_models", help="bench/results/<name>.{json,md}")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite bench/results/<name>.md from its JSON without running anything")
    args = ap.parse_args(argv)
    if args.report_only:
        import json

        out = json.loads((RESULTS / f"{args.results_name}.json").read_text())
        out["paper"] = PAPER
        write_results(args.results_name, out, markdown(out))
        return out
    args.work_dir.mkdir(parents=True, exist_ok=True)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    train_file = generate(args.n_train, seed=1, mpi=True)
    if args.max_jets < args.n_train:
        from .compress_subset import subset

        train_file = subset(train_file, args.max_jets, args.work_dir)
    test_file = generate(args.n_test, seed=2, mpi=True)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    import json

    prev = RESULTS / f"{args.results_name}.json"
    fns = {"prune": part_prune, "quantize": part_quantize, "linformer": part_linformer, "explain": part_explain}
    for p in parts:
        result = fns[p](args, train_file, test_file, args.work_dir)
        # Re-read before writing: another part may have been written meanwhile.
        out = json.loads(prev.read_text()) if prev.exists() else {}
        out[p] = result
        out.update(train_file=str(train_file), test_file=str(test_file), n_jets=min(args.max_jets, args.n_train),
                   epochs={"base": args.base_epochs, "finetune": args.finetune_epochs, "qat": args.qat_epochs,
                           "linformer": args.lin_epochs},
                   paper=PAPER, machine=machine_info())
        write_results(args.results_name, out, markdown(out))
    return out


def markdown(out: dict) -> str:
    md = ["# bench/compress: pruning, 1-bit QAT, Linformer and orderings on generated jets\n",
          f"{out['n_jets'] * 9 // 10:,} training / {out['n_jets'] // 10:,} validation generated jets (MPI on, seed 1), "
          "5,000 independent test jets (seed 2), features (pT_rel, eta_rel, phi_rel). Budgets are short (2 cores "
          f"shared by six engineers): base model {out['epochs']['base']} epochs, {out['epochs']['finetune']} "
          f"fine-tuning epochs per pruning step, {out['epochs']['qat']} epochs for each QAT/full-precision run.\n"]
    p = out.get("prune")
    if p:
        rows = []
        for mode in ("uniform", "global"):
            r = p[mode]
            b, a = r["before"], r["after"]
            rows.append([mode, f"{b['flops']:,} -> {a['flops']:,}", f"{r['flops_change']:+.1%}",
                         f"{b['params']:,} -> {a['params']:,}", f"{r['params_change']:+.1%}",
                         f"{r['paper_params_change']:+.1%}", f"{b['accuracy']:.4f} -> {a['accuracy']:.4f}",
                         f"x{r['speedup']:.2f}", f"{r['compiled']['csim']['max_abs_err']:.1e}"])
        rows.append(["paper (4, 8, 2)", f"{PAPER['prune_flops_before']:,} -> ~{PAPER['prune_flops_before'] * (1 + PAPER['prune_flops_change']):,.0f}", f"{PAPER['prune_flops_change']:+.0%}",
                     "", "", f"{PAPER['prune_params_change']:+.0%}", NO_PAPER_ACC, "", ""])
        md += [f"## Pruning JetFormer-tiny (4, 8, 2), ratio 0.5 in 5 steps, {out['epochs']['finetune']} fine-tuning epochs each\n",
               markdown_table(["pruning", "FLOPs", "FLOPs change", "params", "params change",
                               "params change (paper convention)", "test acc", "torch speed-up (loaded machine)",
                               "csim max err"], rows, "lllllllrr"),
               "\nThe paper convention counts the reference code's unused BatchNorm1d((N+1)^2) per block "
               "(count()['paper_params']); with it, uniform pruning gives the paper's -35%. Global ranking "
               "(one Taylor threshold for all layers) prunes only the FFN on this model. The paper's accuracies "
               "are on the hls4ml LHC jet dataset (not generated jets) and are not recorded in DESIGN.md, so only "
               "its FLOP and parameter changes are compared.\n"]
    q = out.get("quantize")
    if q:
        b, f = q["bit"], q["fp"]
        rows = [["full precision JetFormer (OneCycle)", f"{f['test_accuracy']:.4f}", NO_PAPER_ACC,
                 f"{f['size']['full_precision_kb']:.2f}", f"{PAPER['size_full_kb']:.2f}"],
                ["1-bit BitJetFormer (QAT, plateau)", f"{b['test_accuracy']:.4f}", NO_PAPER_ACC,
                 f"{b['size']['one_bit_kb']:.2f}", f"{PAPER['size_one_bit_kb']:.2f}"]]
        md += ["## 1-bit QAT, (3 blocks, C=64, 2 heads) on 8 x 3\n",
               markdown_table(["model", "test acc", "paper acc", "size (KB)", "paper size (KB)"], rows, "lrrrr"),
               f"\nThe paper's sizes include its unused BatchNorm1d(81) per block (1.27 KB each, 3.81 KB in all). "
               f"Compiled BitJetFormer: {b['bitlinear_calls']} bitlinear kernel calls; csim max |err| vs torch "
               f"{b['compiled']['csim']['max_abs_err']:.1e}, argmax agreement {b['compiled']['csim']['argmax_agree']:.4f} "
               f"on {b['compiled']['csim']['n_jets']} test jets. A model-level error above float rounding comes from "
               "the 8-bit activation quantiser: where x * gamma lands within an ulp of a rounding boundary, the float "
               "ops upstream (softmax, BatchNorm) differing from torch in the last bit move one activation by one "
               "level (1/127 of the row's absmax). The bitlinear kernel itself is checked against torch's formula "
               "in hwtests/test_kernels_b.py, and a trained 1-block BitJetFormer end to end (< 1e-4, llvm and "
               "csim) in tests/test_compress_models.py.\n"]
    lin = out.get("linformer")
    if lin:
        rows = [[r["n_particles"], r["model"] + (f" k={r['k']}" if r["k"] else ""), r["ordering"], r["projection"],
                 f"{r['test_accuracy']:.4f}", f"{r['flops']:,}"] for r in lin["rows"]]
        md += [f"## Linformer and particle ordering ({lin['epochs']} epochs, cosine from lr 3e-3, "
               f"{lin['max_train']:,} training jets, tiny shape (4, 8, 2))\n",
               markdown_table(["particles", "model", "ordering", "E/F projection", "test acc", "FLOPs"], rows, "rllrrr")]
        md.append("\nOne seed and a few epochs each: differences of a few points are within run-to-run noise. "
                  "The paper-style comparison needs full training (`--lin-epochs 30 --lin-max-train 18000`).\n")
        comp = [r for r in lin["rows"] if "compiled" in r]
        if comp:
            c = comp[0]["compiled"]
            md.append(f"\nLinformer (8 particles, k={lin['k']}) compiled: llvm max |err| {c['llvm']['max_abs_err']:.1e}, "
                      f"csim {c['csim']['max_abs_err']:.1e}.\n")
    e = out.get("explain")
    if e:
        md += ["## Interpretability (JetFormer-tiny)\n",
               "compress_explain_attention.png (last block, mean attention by class), compress_explain_pca.png "
               "(class-token embeddings). Class-token self-attention per block and class: "
               + ", ".join(f"{k}: {[round(v, 3) for v in vals]}" for k, vals in e["class_token_self_attention"].items())
               + "\n"]
    md.append(f"\n{machine_line(out['machine'])}\n")
    return "\n".join(md)


if __name__ == "__main__":
    main()
