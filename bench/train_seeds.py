"""Benchmark: the default `allo-ext train --preset tiny` recipe on several seeds (target: every seed >= 0.59).

Runs the command line exactly as a user would, with nothing but --data, --test-data, --out and
--seed, on ``--n-train`` generated jets (90/10 train/validation, so 50,000 give 45,000 training
jets) and ``--n-test`` independent held-out jets of another generator seed. Both files come from
the generator's disk cache when present. Each run goes to ``--runs-dir``/seed<N> (a killed
benchmark resumes). Writes bench/results/train_seeds.{json,md}.

    python -m bench.train_seeds [--seeds 0,1,2] [--n-train 50000] [--n-test 10000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from allo_ext.data.generate import generate
from allo_ext.workflow import PRESET_EPOCHS

from .common import machine_info, machine_line, markdown_table, write_results

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.59


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-train", type=int, default=50_000)
    ap.add_argument("--n-test", type=int, default=10_000)
    ap.add_argument("--train-seed", type=int, default=1, help="generator seed of the training jets")
    ap.add_argument("--test-seed", type=int, default=2, help="generator seed of the test jets")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=REPO / "build" / "bench_train_seeds")
    ap.add_argument("--results-name", default="train_seeds")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    train_file = generate(args.n_train, seed=args.train_seed, mpi=True, workers=args.workers)
    test_file = generate(args.n_test, seed=args.test_seed, mpi=True, workers=args.workers)
    # The seeds train in parallel (one torch thread each, the CLI's default on 2 cores).
    procs, t0 = {}, time.perf_counter()
    for seed in seeds:
        out = args.runs_dir / f"seed{seed}"
        cmd = [sys.executable, "-m", "allo_ext.cli", "train", "--data", str(train_file), "--test-data",
               str(test_file), "--out", str(out), "--seed", str(seed), "--no-progress"]
        procs[seed] = (out, subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    rows = []
    for seed, (out, p) in procs.items():
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"seed {seed}: allo-ext train failed:\n{err[-2000:]}")
        m = json.loads((out / "test_metrics.json").read_text())
        hist = json.loads((out / "history.json").read_text())
        rows.append({"seed": seed, "test_accuracy": m["accuracy"], "test_macro_auc": m["macro_auc"],
                     "n_test": m["n_jets"], "epochs": len(hist["epochs"]), "best_epoch": hist.get("best_epoch"),
                     "seconds": round(time.perf_counter() - t0, 1), "passed": m["accuracy"] >= TARGET})
        print(f"seed {seed}: test accuracy {m['accuracy']:.4f}", flush=True)
    info = machine_info()
    data = {"command": "allo-ext train --data TRAIN --test-data TEST --out DIR --seed N (all else default)",
            "preset_epochs_tiny": PRESET_EPOCHS["tiny"], "train_file": str(train_file), "test_file": str(test_file),
            "n_train": args.n_train * 9 // 10, "n_val": args.n_train // 10, "n_test": args.n_test,
            "target": TARGET, "runs": rows, "machine": info}
    md = (f"# bench/train_seeds: the default tiny recipe on {len(seeds)} seeds\n\n"
          f"`allo-ext train --preset tiny` with the defaults ({PRESET_EPOCHS['tiny']} epochs, AdamW + OneCycle max lr "
          f"1e-3, batch 256) on {args.n_train * 9 // 10:,} generated training jets (+{args.n_train // 10:,} validation; "
          f"MPI on, generator seed {args.train_seed}), tested on {args.n_test:,} independent jets (generator seed "
          f"{args.test_seed}). Target: every seed >= {TARGET}.\n\n"
          + markdown_table(["seed", "epochs", "best epoch", "test acc", "test macro AUC", "met", "wall s (parallel)"],
                           [[r["seed"], r["epochs"], r["best_epoch"], f"{r['test_accuracy']:.4f}",
                             f"{r['test_macro_auc']:.4f}", "yes" if r["passed"] else "**no**", r["seconds"]]
                            for r in rows], "rrrrrlr")
          + f"\n{machine_line(info)}\n")
    write_results(args.results_name, data, md)
    return data


if __name__ == "__main__":
    main()
