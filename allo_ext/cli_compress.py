"""`allo-ext hpo | prune | quantize | explain`: thin command-line wrappers over allo_ext.compress.

Inputs (data files, checkpoints, storage URLs, output paths) are checked before any training.
Outputs follow allo_ext.outputs: a directory that allo-ext did not write is refused without --force.
Errors end as one line through the CLI's top-level handler.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rich.console import Console

console = Console()
_user_errors = None  # set by register(): the CLI's handler of expected errors


def _guard_outputs(out: Path, names: list[str], force: bool) -> None:
    """The shared output policy (allo_ext.outputs): OUT may be new, empty, or written by allo-ext
    before; any other non-empty directory needs --force. Checked before any long work."""
    from .outputs import check_output_dir, mark_dir

    check_output_dir(out, force=force, ours=names)
    mark_dir(out)


def _write_json(obj, path: Path) -> None:
    from .compress.quantize import write_json

    write_json(obj, path)


# -------------------------------------------------------------------------------------------- hpo
def hpo(
    data: Annotated[Path, typer.Option("--data", help="Jets (hls4ml .h5 file or directory); 10% is the validation split.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the report: pareto.png, best_trials.csv, "
                                      "hypervolume.png, hpo_summary.json (and hpo.db by default).")],
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL (default sqlite:///OUT/hpo.db); "
                                                   "postgresql://user@host/db to share a study between machines.")] = None,
    study: Annotated[str, typer.Option(help="Study name: run again to resume, or start more workers on it.")] = "jetformer",
    sampler: Annotated[str, typer.Option(help="nsga2, tpe (20 random start-up trials) or random.")] = "nsga2",
    objective: Annotated[str, typer.Option(help="flops (accuracy vs FLOPs) or hardware (accuracy vs the "
                                           "compiler's estimated cycles and DSPs, latency schedule).")] = "flops",
    precision: Annotated[Optional[str], typer.Option(help="Precision of the hardware estimate, e.g. ap_fixed<16,6> "
                                                     "(default float32).")] = None,
    trials: Annotated[int, typer.Option(help="Completed trials of the whole study (shared by all workers).")] = 40,
    epochs: Annotated[int, typer.Option(help="Training epochs per trial.")] = 5,
    patience: Annotated[Optional[int], typer.Option(help="Early-stopping patience per trial (epochs).")] = 2,
    min_accuracy: Annotated[float, typer.Option(help="Constraint: trials below this validation accuracy are "
                                                "infeasible and stay out of the Pareto front.")] = 0.65,
    n_particles: Annotated[int, typer.Option(help="Particles per jet (pT_rel, eta_rel, phi_rel each).")] = 8,
    max_train: Annotated[Optional[int], typer.Option(help="Use at most this many training jets.")] = None,
    population: Annotated[int, typer.Option(help="NSGA-II population size.")] = 20,
    seed: Annotated[int, typer.Option(help="Sampler and training seed.")] = 0,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Reuse results of configurations already trained "
                                                      "with the same settings (any study).")] = None,
    report_only: Annotated[bool, typer.Option("--report-only", help="Only write the report of the study.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even if it holds files allo-ext did "
                                        "not write.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
):
    """Multi-objective search over JetFormer shapes (blocks, (C, heads), dropout) on Optuna."""
    with _user_errors():
        from .compress.data import check_file, load_jets
        from .compress.hpo import HPOConfig, run_hpo

        storage = storage or f"sqlite:///{(out / 'hpo.db').resolve()}"
        cfg = HPOConfig(study_name=study, storage=storage, sampler=sampler, objective=objective,
                        precision=precision, n_trials=trials, epochs=epochs, patience=patience,
                        min_accuracy=min_accuracy, population_size=population, seed=seed,
                        cache_dir=None if cache_dir is None else str(cache_dir))
        if not report_only:
            check_file(data, "--data")
        names = ["pareto.png", "best_trials.csv", "hypervolume.png", "hpo_summary.json", "hpo.db"]
        _guard_outputs(out, names, force)
        if objective == "hardware" and precision not in (None, "float32"):
            from .compress.hardware import fixed_point_available

            if not fixed_point_available():
                raise ValueError(f"--precision {precision} needs the fixed-point frontend, which this "
                                 "allo_ext lacks; leave --precision out for float32")
        if not report_only:
            jets = load_jets(data, n_particles=n_particles, max_train=max_train, seed=0)
            console.print(f"{len(jets.y_train)} training / {len(jets.y_val)} validation jets, "
                          f"{n_particles} particles; study {study!r} in {storage}")
            run_hpo(cfg, jets, progress=progress, log=console.print)
        s = write_hpo_report(cfg, out, n_particles)
        console.print(f"{s['n_completed']} completed trials, {s['n_feasible']} feasible, "
                      f"{len(s['pareto'])} on the Pareto front; hypervolume {s['hypervolume']}")
        for r in s["pareto"]:
            console.print(f"  ({r['n_blocks']}, {r['dim']}, {r['n_heads']}) dropout {r['dropout']}: "
                          f"acc {r['accuracy']:.4f}, {r['flops']:,} FLOPs")
        console.print(f"report in [bold]{out}[/]: {', '.join(names)}")


def write_hpo_report(cfg, out: Path, n_particles: int, every: int = 20) -> dict:
    from .compress.hpo_report import (hypervolume_history, plot_hypervolume, plot_pareto, references,
                                      study_rows, unique_configs, write_csv)

    rows = study_rows(cfg)
    refs = references(rows, cfg, n_particles, 3)
    marks = list(range(every, len(rows) + 1, every)) or [len(rows)]
    hv = hypervolume_history(rows, cfg, refs, marks)
    plot_pareto(rows, cfg, out / "pareto.png")
    plot_hypervolume({cfg.sampler: hypervolume_history(rows, cfg, refs)}, out / "hypervolume.png",
                     f"study {cfg.study_name}")
    write_csv(rows, out / "best_trials.csv")
    s = {"study": cfg.study_name, "storage": cfg.storage, "sampler": cfg.sampler, "objective": cfg.objective,
         "precision": cfg.precision or "float32", "min_accuracy": cfg.min_accuracy,
         "n_completed": len(rows), "n_feasible": sum(r["accuracy"] >= cfg.min_accuracy for r in rows),
         "hypervolume": hv, "references": refs,
         "pareto": sorted(unique_configs([r for r in rows if r["pareto"]]), key=lambda r: r["flops"])}
    _write_json(s, out / "hpo_summary.json")
    return s


# ------------------------------------------------------------------------------------------ prune
def prune(
    checkpoint: Annotated[Path, typer.Argument(help="A trained JetFormer (allo-ext train output or .pt).")],
    data: Annotated[Path, typer.Option("--data", help="The jets it was trained on (same 90/10 split) for "
                                       "Taylor importance and fine-tuning.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for pruned_model.pt and prune_report.json.")],
    test_data: Annotated[Optional[Path], typer.Option(help="Held-out jets for the before/after accuracy.")] = None,
    ratio: Annotated[float, typer.Option(help="Fraction of channels removed in the end.")] = 0.5,
    steps: Annotated[int, typer.Option(help="Iterative pruning steps.")] = 5,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after each step.")] = 5,
    global_pruning: Annotated[bool, typer.Option("--global/--uniform", help="Rank channels across all layers "
                                                 "(global) or prune each layer by the ratio (uniform).")] = False,
    max_train: Annotated[Optional[int], typer.Option(help="Use at most this many training jets.")] = None,
    compile_check: Annotated[bool, typer.Option("--check/--no-check", help="Compile the pruned model (llvm, "
                                                "csim) and compare with torch.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even if it holds files allo-ext did "
                                        "not write.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
):
    """Structured pruning (torch-pruning, Taylor importance), heads kept whole, with fine-tuning."""
    with _user_errors():
        from .compress.data import check_file, load_for_bundle
        from .compress.prune import PruneConfig, load_model, save_pruned
        from .compress.prune import prune as run_prune

        cfg = PruneConfig(ratio=ratio, steps=steps, finetune_epochs=finetune_epochs, global_pruning=global_pruning)
        check_file(data, "--data")
        check_file(test_data, "--test-data")
        _guard_outputs(out, ["pruned_model.pt", "prune_report.json"], force)
        model, bundle = load_model(checkpoint)
        jets = load_for_bundle(bundle, data, test_data, max_train=max_train)
        model, report = run_prune(model, jets, cfg, progress=progress, log=console.print)
        if compile_check:
            from .compress.quantize import check_compiled

            with console.status("compiling the pruned model (llvm, csim)..."):
                report["compiled"] = check_compiled(model, jets.eval_split()[0][:256])
        save_pruned(model, bundle, out / "pruned_model.pt")
        _write_json(report, out / "prune_report.json")
        b, a = report["before"], report["after"]
        console.print(f"FLOPs {b['flops']:,} -> {a['flops']:,} ({report['flops_change']:+.1%}), params "
                      f"{b['params']:,} -> {a['params']:,} ({report['params_change']:+.1%}), accuracy "
                      f"{b['accuracy']:.4f} -> {a['accuracy']:.4f}, torch time x{report['speedup']:.2f}")
        for name, r in report.get("compiled", {}).items():
            console.print(f"  {name}: max |err| vs torch {r['max_abs_err']:.2e}, argmax agreement {r['argmax_agree']:.4f}")
        console.print(f"wrote [bold]{out / 'pruned_model.pt'}[/] and prune_report.json")


# --------------------------------------------------------------------------------------- quantize
def quantize(
    data: Annotated[Path, typer.Option("--data", help="Training jets; 10% is the validation split.")],
    out: Annotated[Path, typer.Option("--out", help="Training run directory (resumed if present).")],
    test_data: Annotated[Optional[Path], typer.Option(help="Held-out jets: accuracy and the compile check.")] = None,
    blocks: Annotated[int, typer.Option(help="Transformer blocks.")] = 3,
    dim: Annotated[int, typer.Option(help="Width C.")] = 64,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 2,
    n_particles: Annotated[int, typer.Option(help="Particles per jet.")] = 8,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs: 1-bit from scratch (ReduceLROnPlateau "
                                                  "0.8/5, min lr 1e-4; default 50), fixed-point fine-tuning "
                                                  "(default 3).")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Early-stopping patience (epochs).")] = None,
    check_n: Annotated[int, typer.Option(help="Jets for the compiled-vs-torch check (0: skip it).")] = 256,
    precision: Annotated[Optional[list[str]], typer.Option(
        "--precision", help="Fixed-point QAT instead of 1-bit: fine-tune --checkpoint at this type (hls4ml "
        "spelling, e.g. 'ap_fixed<16,6>'; repeat for several) and compare with post-training quantisation.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="With --precision: the trained float model (allo-ext "
                                                       "train output, .pt, or pruned_model.pt).")] = None,
    accum: Annotated[Optional[str], typer.Option(help="With --precision: the accumulator type of linear/matmul "
                                                 "and BatchNorm scales (default: the activation type).")] = None,
    lr: Annotated[float, typer.Option(help="With --precision: fine-tuning learning rate (AdamW, cosine).")] = 5e-4,
    max_train: Annotated[Optional[int], typer.Option(help="With --precision: use at most this many training "
                                                     "jets.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even if it holds files allo-ext did "
                                        "not write.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
):
    """1-bit QAT: train BitJetFormer from scratch; report sizes (paper's Table 6 convention) and check
    that the compiled model (bitlinear kernel; llvm and csim) matches torch. With --precision: fixed-point
    QAT of a trained model, bit-exact with the model compiled at that precision."""
    if precision:
        return _quantize_fixed(data, out, test_data, precision, checkpoint, accum, epochs if epochs is not None
                               else 3, lr, max_train, check_n, force, progress)
    if checkpoint is not None or accum is not None:
        raise ValueError("--checkpoint and --accum are for fixed-point QAT; add --precision")
    epochs = 50 if epochs is None else epochs
    with _user_errors():
        from .compress.data import check_file
        from .compress.quantize import qat_config, quantize_report, train_bitjetformer

        check_file(data, "--data")
        check_file(test_data, "--test-data")
        if check_n < 0:
            raise ValueError(f"--check-n must be >= 0, got {check_n}")
        from .outputs import check_output_dir, mark_dir, run_lock
        from .train.checkpoint import RUN_FILES

        cfg = qat_config(epochs, patience=patience, progress=progress)
        check_output_dir(out, force=force, ours=list(RUN_FILES) + ["quantize_report.json"])
        with run_lock(out, "--out"):
            mark_dir(out)
            r = train_bitjetformer(data, out, n_blocks=blocks, dim=dim, n_heads=heads, n_particles=n_particles,
                                   config=cfg, test_data=test_data)
        src = test_data or data
        x, _ = r.bundle.load_data(src, n=max(check_n, 1))
        with console.status("compiling BitJetFormer (bitlinear kernel; llvm, csim)..."):
            rep = quantize_report(r.model, x, backends=("llvm", "csim") if check_n else ())
        rep.update(val_accuracy=r.val_accuracy, test_accuracy=r.test_accuracy, epochs_run=r.epochs_run)
        _write_json(rep, out / "quantize_report.json")
        s = rep["size"]
        console.print(f"size {s['full_precision_kb']:.2f} KB (full precision) -> {s['one_bit_kb']:.2f} KB (1-bit), "
                      f"x{s['ratio']:.1f}; {rep['bitlinear_calls']} bitlinear kernel calls")
        if r.val_accuracy is not None:
            console.print(f"validation accuracy {r.val_accuracy:.4f}"
                          + (f", test accuracy {r.test_accuracy:.4f}" if r.test_accuracy is not None else ""))
        for name, c in rep["compiled"].items():
            console.print(f"  {name}: max |err| vs torch {c['max_abs_err']:.2e}, argmax agreement {c['argmax_agree']:.4f}")


def _safe_name(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label).strip("_")


def _quantize_fixed(data, out, test_data, precisions, checkpoint, accum, epochs, lr, max_train, check_n, force,
                    progress):
    from .compress.data import check_file, load_for_bundle
    from .compress.fixed_qat_train import ptq_vs_qat
    from .compress.prune import load_model, save_pruned
    from .lang.types import parse_precision

    if checkpoint is None:
        raise ValueError("--precision fine-tunes a trained float model: give it with --checkpoint (an allo-ext "
                         "train run directory, .pt, or pruned_model.pt)")
    if not checkpoint.exists():
        raise FileNotFoundError(f"--checkpoint {checkpoint}: no such file or directory")
    types = []
    for p in precisions:
        t = parse_precision(p)  # ValueError naming the spelling expected
        if not t.is_fixed:
            raise ValueError(f"--precision {p!r} is not a fixed-point type; e.g. 'ap_fixed<16,6>'")
        types.append(t)
    if accum is not None and not parse_precision(accum).is_fixed:
        raise ValueError(f"--accum {accum!r} is not a fixed-point type; e.g. 'ap_fixed<32,12>'")
    if epochs < 0:
        raise ValueError(f"--epochs must be >= 0, got {epochs}")
    if check_n < 0:
        raise ValueError(f"--check-n must be >= 0, got {check_n}")
    check_file(data, "--data")
    check_file(test_data, "--test-data")
    names = [f"qat_{_safe_name(t.ap_type().replace(' ', ''))}.pt" for t in types]
    _guard_outputs(out, names + ["fixed_qat_report.json"], force)
    model, bundle = load_model(checkpoint)
    jets = load_for_bundle(bundle, data, test_data, max_train=max_train)
    report, models = ptq_vs_qat(model, jets, [t.ap_type().replace(" ", "") for t in types], accum=accum,
                                epochs=epochs, lr=lr, check_n=check_n, progress=progress, log=console.print,
                                keep_models=True)
    for name, qmodel in zip(names, models.values()):
        save_pruned(qmodel, bundle, out / name)
    report["models"] = dict(zip(models, names))
    _write_json(report, out / "fixed_qat_report.json")
    console.print(f"wrote {', '.join(names)} and fixed_qat_report.json to [bold]{out}[/]")


# ---------------------------------------------------------------------------------------- explain
def explain(
    checkpoint: Annotated[Path, typer.Argument(help="A trained model (allo-ext train output, .pt, or a pruned_model.pt).")],
    data: Annotated[Path, typer.Option("--data", help="Jets to explain (normalised with the model's statistics).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the PNGs, explain.npz and explain.json.")],
    n: Annotated[int, typer.Option(help="Use the first N jets of --data.")] = 2000,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even if it holds files allo-ext did "
                                        "not write.")] = False,
):
    """Attention heat-maps averaged by class (one PNG per block) and a PCA of class-token embeddings."""
    with _user_errors():
        from .compress.data import check_file
        from .compress.explain import explain as run_explain
        from .compress.prune import load_model

        if n < 1:
            raise ValueError(f"--n must be >= 1, got {n}")
        check_file(data, "--data")
        model, bundle = load_model(checkpoint)
        names = [f"attention_block{i}.png" for i in range(len(getattr(model, "blocks", [])))]
        _guard_outputs(out, names + ["embeddings_pca.png", "explain.npz", "explain.json"], force)
        x, y = bundle.load_data(data, n=n)
        with console.status(f"explaining {len(y)} jets..."):
            rep = run_explain(model, x, y, out, bundle.class_names)
        _write_json(rep, out / "explain.json")
        console.print(f"wrote {len(rep['attention_pngs'])} attention heat-map(s), embeddings_pca.png and "
                      f"explain.npz to [bold]{out}[/]")


def register(app: typer.Typer, user_errors) -> None:
    """Add the commands to ``app``; ``user_errors`` is the CLI's context manager that turns expected
    errors into one line and exit code 1. Called by allo_ext.cli (also when it runs as __main__)."""
    global _user_errors
    _user_errors = user_errors
    for command in (hpo, prune, quantize, explain):
        app.command()(command)
