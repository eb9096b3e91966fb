"""`make demo`: jets -> training -> compilation -> cross-backend verification, end to end.

1. generate 5,000 training jets and 2,000 independent test jets with Pythia8 + FastJet (MPI off,
   cached on disk, so a second run skips this);
2. train JetFormer-tiny (8 particles x pT_rel, eta_rel, phi_rel) for a few epochs;
3. evaluate it on the test jets;
4. compile it: HLS C++ (target vhls) and the CPU MLIR (target llvm);
5. run every open backend (llvm, csim, rtl) against torch on the test jets and print the table.

Everything goes to out/demo/ (or --out): data/, model/ (checkpoints, plots, metrics), hls/,
mlir/, verify.json and summary.json. Exit code 1 if a backend fails verification; a backend whose
tool is missing is reported as skipped.

    python -m allo_ext.demo [--out out/demo] [--epochs 40] [--n-train 5000] [--n-test 2000]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from rich.console import Console

DEFAULTS = dict(n_train=5000, n_test=2000, train_seed=0, test_seed=1, epochs=40)



DEMO_RTL_SECONDS = 300  # the demo's budget for the rtl row's simulation run (a few hundred jets, streamed)


def _step(console: Console, i: int, n: int, text: str) -> None:
    console.rule(f"[bold]{i}/{n}  {text}")


def run(out: Path, *, n_train: int, n_test: int, train_seed: int, test_seed: int, epochs: int,
        console: Console | None = None) -> dict:
    from .data import GeneratorsMissingError
    from .data.generate import default_cache_dir, generate
    from .train import TrainConfig
    from .verify import failures, render_table, verify
    from .workflow import export_project, train_on_file, write_json

    console = console or Console()
    t_start = time.perf_counter()
    times: dict[str, float] = {}
    summary: dict = {"out": str(out)}
    console.print(f"[bold]allo-ext demo[/]: outputs go to [bold]{out}[/]")

    _step(console, 1, 5, f"jets: {n_train} for training, {n_test} held out (Pythia8 + FastJet, MPI off)")
    t = time.perf_counter()
    try:
        train_file = generate(n_train, out / "data" / "train.h5", seed=train_seed, mpi=False)
        test_file = generate(n_test, out / "data" / "test.h5", seed=test_seed, mpi=False)
    except GeneratorsMissingError as e:
        console.print(f"[bold red]cannot generate jets:[/] {e}")
        raise SystemExit(1) from e
    times["data_s"] = time.perf_counter() - t
    console.print(f"training jets: {train_file} (seed {train_seed}); test jets: {test_file} (seed {test_seed}) "
                  f"[{times['data_s']:.1f} s; cached in {default_cache_dir()}]")

    _step(console, 2, 5, f"training JetFormer-tiny for {epochs} epochs (90/10 train/validation split)")
    t = time.perf_counter()
    with warnings.catch_warnings():
        # The demo always trains afresh; fit's warning about overwriting a previous run is noise here.
        warnings.filterwarnings("ignore", message="resume=False")
        result = train_on_file(train_file, out / "model", model_name="jetformer", preset="tiny",
                               config=TrainConfig(epochs=epochs, seed=0), test_data=test_file, resume=False)
    times["train_s"] = time.perf_counter() - t
    console.print(f"{result.bundle.describe()}")
    console.print(f"validation accuracy {result.val_accuracy:.4f} (best epoch {result.best_epoch}) "
                  f"[{times['train_s']:.1f} s]")

    _step(console, 3, 5, f"test accuracy on {n_test} independent jets")
    tm = result.test_metrics
    console.print(f"test accuracy [bold]{tm['accuracy']:.4f}[/] (chance 0.2), macro AUC {tm['macro_auc']:.4f}; "
                  "AUC per class: " + ", ".join(f"{c} {a:.3f}" for c, a in tm["auc"].items()))

    _step(console, 4, 5, "compiling: HLS C++ (vhls) and CPU MLIR (llvm)")
    t = time.perf_counter()
    compiled = {}
    for target, sub in (("vhls", "hls"), ("llvm", "mlir")):
        try:
            with console.status(f"compiling for {target}..."):
                files = export_project(result.model, result.bundle, target, out / sub,
                                       checkpoint=str(out / "model"))
            compiled[target] = {"dir": str(out / sub), "files": sorted(files), "ok": True}
            console.print(f"{target}: {len(files)} files in {out / sub} (see its README.md)")
        except Exception as e:  # shown and recorded; verification below still runs every backend
            compiled[target] = {"dir": str(out / sub), "ok": False, "error": f"{type(e).__name__}: {e}"}
            console.print(f"[bold red]{target} failed:[/] {type(e).__name__}: {e}")
    times["compile_s"] = time.perf_counter() - t

    _step(console, 5, 5, f"verifying every backend against torch on the {n_test} test jets")
    t = time.perf_counter()
    X, y = result.bundle.load_data(test_file)
    from . import verify as verify_module

    # The rtl row streams a few hundred jets through the whole-model pipeline in RTL (Verilator): bounded.
    verify_module.RTL_SECONDS = DEMO_RTL_SECONDS
    with console.status("verifying...") as status:
        rows = verify(result.model, X, y, on_start=lambda b: status.update(f"building and running {b}..."))
    times["verify_s"] = time.perf_counter() - t
    console.print(render_table(rows))
    write_json([r.to_dict() for r in rows], out / "verify.json")

    times["total_s"] = time.perf_counter() - t_start
    bad = failures(rows)
    summary.update({
        "data": {"train": str(train_file), "test": str(test_file), "n_train": n_train, "n_test": n_test,
                 "train_seed": train_seed, "test_seed": test_seed, "mpi": False},
        "model": result.bundle.to_dict(),
        "epochs": epochs, "best_epoch": result.best_epoch,
        "val_accuracy": result.val_accuracy, "test_accuracy": tm["accuracy"], "test_macro_auc": tm["macro_auc"],
        "test_auc": tm["auc"], "compiled": compiled, "verify": [r.to_dict() for r in rows],
        "verification_passed": not bad, "seconds": {k: round(v, 1) for k, v in times.items()},
    })
    write_json(summary, out / "summary.json")

    console.rule("[bold]done")
    console.print(f"test accuracy of JetFormer-tiny: [bold]{tm['accuracy']:.4f}[/] on {n_test} held-out jets")
    status = {r.backend: r.status for r in rows[1:]}
    console.print("backends: " + ", ".join(f"{b} {s}" for b, s in status.items()))
    console.print(f"outputs in [bold]{out}[/]:")
    for what, where in (("jets (hls4ml format)", out / "data"),
                        ("checkpoints, training curves, ROC plots, metrics", out / "model"),
                        ("HLS C++ project + README", out / "hls"), ("CPU MLIR + README", out / "mlir"),
                        ("verification rows", out / "verify.json"), ("summary", out / "summary.json")):
        console.print(f"  {where}: {what}")
    console.print(f"total {times['total_s']:.0f} s")
    if bad:
        console.print(f"[bold red]verification failed for {', '.join(r.backend for r in bad)}[/]")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--n-train", type=int, default=DEFAULTS["n_train"])
    ap.add_argument("--n-test", type=int, default=DEFAULTS["n_test"])
    ap.add_argument("--train-seed", type=int, default=DEFAULTS["train_seed"])
    ap.add_argument("--test-seed", type=int, default=DEFAULTS["test_seed"])
    a = ap.parse_args(argv)
    if a.train_seed == a.test_seed:
        ap.error("the test set must come from another seed than the training set")
    summary = run(a.out, n_train=a.n_train, n_test=a.n_test, train_seed=a.train_seed,
                  test_seed=a.test_seed, epochs=a.epochs)
    return 0 if summary["verification_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
