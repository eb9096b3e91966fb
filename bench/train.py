"""Benchmark: test accuracy of JetFormer models trained on our own generated jets.

Targets (issue 5), with 3 features (pT_rel, eta_rel, phi_rel) and an independent held-out test set
of generated jets (MPI on, another seed):
- ``tiny``: JetFormer.tiny() on 8 particles, >= 0.59;
- ``hls4ml150``: JetFormer.hls4ml150()-style (3 blocks, C=64, 2 heads) on 32 particles, >= 0.70.

Training data: ``--n-train`` generated jets (MPI on), split 90/10 into train and validation (so
50,000 give 45,000 training jets). Both data sets come from the on-disk generator cache when
present. Runs go to ``--runs-dir`` (checkpoints: a killed benchmark resumes where it stopped; the
checkpoints also work with ``allo-ext compile/verify``). Writes bench/results/train.{json,md}.

    python -m bench.train [--models tiny,hls4ml150] [--epochs-tiny 40] [--epochs-hls4ml150 25]
                          [--n-train 50000] [--n-test 10000] [--train-seed 1] [--test-seed 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from allo_ext.data.generate import generate
from allo_ext.train import TrainConfig
from allo_ext.workflow import train_on_file

from .common import machine_info, machine_line, markdown_table, write_results

# name -> (preset, particles, target accuracy)
MODELS = {
    "tiny": ("tiny", 8, 0.59),
    "hls4ml150": ("hls4ml150", 32, 0.70),
}
FEATURES = ("pT_rel", "eta_rel", "phi_rel")
REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,hls4ml150", help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--epochs-tiny", type=int, default=40, help="epochs for the tiny model")
    ap.add_argument("--epochs-hls4ml150", type=int, default=25, help="epochs for the 32-particle C=64 model")
    ap.add_argument("--n-train", type=int, default=50_000, help="generated jets for train+validation (90/10)")
    ap.add_argument("--n-test", type=int, default=10_000, help="generated held-out test jets")
    ap.add_argument("--train-seed", type=int, default=1)
    ap.add_argument("--test-seed", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="generator processes")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--max-lr", type=float, default=1e-3)
    ap.add_argument("--runs-dir", type=Path, default=REPO / "build" / "bench_train",
                    help="checkpoints per model (resumed when present)")
    ap.add_argument("--fresh", action="store_true", help="ignore existing checkpoints in --runs-dir")
    ap.add_argument("--results-name", default="train", help="writes bench/results/<name>.{json,md}")
    args = ap.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if args.n_train % 10 or args.n_test < 1:
        ap.error("--n-train must be a multiple of 10 (90/10 split), --n-test >= 1")

    t0 = time.perf_counter()
    train_file = generate(args.n_train, seed=args.train_seed, mpi=True, workers=args.workers)
    test_file = generate(args.n_test, seed=args.test_seed, mpi=True, workers=args.workers)
    gen_s = time.perf_counter() - t0

    epochs = {"tiny": args.epochs_tiny, "hls4ml150": args.epochs_hls4ml150}
    results = []
    for name in names:
        preset, n_particles, target = MODELS[name]
        cfg = TrainConfig(epochs=epochs[name], batch_size=args.batch_size, max_lr=args.max_lr, seed=0)
        start = time.perf_counter()
        r = train_on_file(train_file, args.runs_dir / name, model_name="jetformer", preset=preset,
                          features=FEATURES, n_particles=n_particles, config=cfg, test_data=test_file,
                          resume=not args.fresh)
        seconds = time.perf_counter() - start
        tm = r.test_metrics
        results.append({
            "model": name, "preset": preset, "n_particles": n_particles, "features": list(FEATURES),
            "config": r.bundle.config, "epochs": cfg.epochs, "epochs_run": r.epochs_run,
            "best_epoch": r.best_epoch, "batch_size": cfg.batch_size, "max_lr": cfg.max_lr,
            "val_accuracy": r.val_accuracy, "test_accuracy": tm["accuracy"], "test_loss": tm["loss"],
            "test_macro_auc": tm["macro_auc"], "test_auc": tm["auc"], "confusion": tm["confusion"],
            "n_test": tm["n_jets"], "target": target, "passed": tm["accuracy"] >= target,
            "train_seconds_this_run": round(seconds, 1), "run_dir": str(args.runs_dir / name),
        })
        print(f"{name}: test accuracy {tm['accuracy']:.4f} (target {target}), "
              f"val {r.val_accuracy:.4f}, {seconds:.0f} s", flush=True)

    info = machine_info()
    data = {"train_file": str(train_file), "test_file": str(test_file), "n_train_generated": args.n_train,
            "n_train": args.n_train * 9 // 10, "n_val": args.n_train // 10, "n_test": args.n_test,
            "train_seed": args.train_seed, "test_seed": args.test_seed, "mpi": True,
            "generate_or_cache_seconds": round(gen_s, 1), "results": results, "machine": info}
    rows = [[r["model"], r["n_particles"], f"{r['config']['n_blocks']}x C={r['config']['dim']} "
             f"H={r['config']['n_heads']}", f"{r['epochs_run']}/{r['epochs']}", r["best_epoch"],
             f"{r['val_accuracy']:.4f}", f"{r['test_accuracy']:.4f}", f"{r['test_macro_auc']:.4f}",
             f">= {r['target']}", "yes" if r["passed"] else "**no**"] for r in results]
    md = (f"# bench/train: JetFormer test accuracy on generated jets\n\n"
          f"Trained on {args.n_train * 9 // 10:,} generated jets (+{args.n_train // 10:,} validation; MPI on, seed "
          f"{args.train_seed}), tested on {args.n_test:,} independent jets (MPI on, seed {args.test_seed}); "
          f"features {', '.join(FEATURES)}; AdamW + OneCycle (max lr {args.max_lr}), batch {args.batch_size}, "
          f"weights of the best validation epoch.\n\n"
          + markdown_table(["model", "particles", "blocks", "epochs", "best epoch", "val acc", "test acc",
                            "test macro AUC", "target", "met"], rows, "llllrrrrll")
          + f"\n{machine_line(info)}\n")
    write_results(args.results_name, data, md)
    return data


if __name__ == "__main__":
    main()
