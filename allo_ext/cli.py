"""The `allo-ext` command line: jets (generate, inspect), training, compiling, verification, benchmarks.

    allo-ext data generate --n-jets 5000 --out jets.h5 --no-mpi
    allo-ext train --data jets.h5 --model jetformer --preset tiny --epochs 20 --out runs/tiny
    allo-ext compile runs/tiny --target vhls --out hls/
    allo-ext verify runs/tiny --data test.h5 --n 1000
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

class _Commands(TyperGroup):
    """The top-level command group: any exception a command raises ends as one line on stderr and
    exit code 1, never a traceback (``allo-ext --debug ...`` or ALLO_EXT_DEBUG=1 shows it). Commands
    registered anywhere (also by other modules) get this for free: it wraps the whole dispatch."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise  # typer's own exits and usage errors print themselves
        except Exception as e:  # noqa: BLE001 - this is the one place every error ends up
            if ctx.params.get("debug") or os.environ.get("ALLO_EXT_DEBUG"):
                raise
            # Printed as plain text: option names like [generate] are not rich markup.
            err_console.print(Text.assemble(("error: ", "bold red"), error_line(e)), soft_wrap=True)
            raise typer.Exit(1) from None


def error_line(e: BaseException) -> str:
    """What the user sees for an exception: its message for the errors we raise on purpose (they
    say what to do), the type and message plus a pointer to --debug for anything else."""
    from .lang.errors import AlloError

    msg = str(e).strip() or type(e).__name__
    if isinstance(e, (AlloError, ValueError, TypeError, OSError, ImportError, NotImplementedError,
                      ArithmeticError)) and type(e).__module__.startswith(("allo_ext", "builtins")):
        if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
            msg = f"{msg}: {e.filename}"
        return msg
    first = msg.splitlines()[0]
    return (f"{type(e).__name__}: {first} (unexpected; rerun with `allo-ext --debug ...` for the traceback "
            "and report it)")


app = typer.Typer(
    name="allo-ext",
    help="Compile PyTorch jet taggers through MLIR to CPU code, HLS C++ and simulated RTL, "
         "verified against torch. Jets in the hls4ml LHC format.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)
data_app = typer.Typer(help="Jet data in the hls4ml format: generate with Pythia8+FastJet, inspect files.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)
REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"


@app.callback()
def _main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error instead of one "
                                        "line (also: ALLO_EXT_DEBUG=1).")] = False,
):
    """Compile PyTorch jet taggers through MLIR to CPU code, HLS C++ and simulated RTL, verified against
    torch. Jets in the hls4ml LHC format."""


@contextlib.contextmanager
def _user_errors():
    """Kept for commands written against the old per-command handler: errors now end in one line
    through the top-level group (_Commands), so this only passes them on."""
    yield


class OptionError(ValueError):
    """A command-line value that cannot work; the message starts with the option's name."""

    def __init__(self, option: str, msg: str):
        super().__init__(f"{option}: {msg}")


def _positive(value, option: str):
    if value is not None and value < 1:
        raise OptionError(option, f"must be >= 1, got {value}")


def parse_assignments(items: list[str] | None, what: str) -> dict:
    """['dim=16', 'norm=layer', 'hidden=[64,32]'] -> {'dim': 16, 'norm': 'layer', 'hidden': [64, 32]}.
    Values are read as JSON when they parse, else kept as strings."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} entries look like key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _features(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text.split(",") if f.strip())


def _feature_list(text: str) -> tuple[str, ...]:
    """--features: at least one, each known, none twice."""
    from .data import FEATURE_NAMES

    feats = _features(text)
    if not feats:
        raise OptionError("--features", "names no feature")
    unknown = [f for f in feats if f not in FEATURE_NAMES]
    if unknown:
        raise OptionError("--features", f"unknown feature(s) {', '.join(unknown)}; valid: {', '.join(FEATURE_NAMES)}")
    dup = sorted({f for f in feats if feats.count(f) > 1})
    if dup:
        raise OptionError("--features", f"{', '.join(dup)} given more than once")
    return feats


def _check_jets(path: Path, n_particles: int | None, option: str):
    """Open an hls4ml-format file (or directory) now, before any long work, and check it has enough
    particles per jet."""
    from .data import JetFiles

    files = JetFiles.open(path)
    if len(files) == 0:
        raise OptionError(option, f"{path} holds no jets")
    if n_particles is not None and n_particles > min(files.n_particles):
        raise OptionError(option, f"{path} has {min(files.n_particles)} particles per jet, the model takes "
                                  f"{n_particles}; use a file with at least {n_particles}")
    return files


# ------------------------------------------------------------------------------------------- data
@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", help="Output .h5 file (hls4ml format).")],
    n_jets: Annotated[int, typer.Option("--n-jets", help="Number of jets, split evenly over the classes.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives an identical file.")] = 0,
    mpi: Annotated[bool, typer.Option("--mpi/--no-mpi", help="Multi-parton interactions (realistic) or off "
                                      "(about 2x faster).")] = True,
    workers: Annotated[int, typer.Option(help="Generator processes.")] = 2,
    classes: Annotated[str, typer.Option(help="Comma-separated classes out of g,q,W,Z,t.")] = "g,q,W,Z,t",
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse (and fill) the on-disk cache "
                                        "($ALLO_EXT_CACHE/jets or ~/.cache/allo_ext/jets).")] = True,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
):
    """Generate jets with Pythia8 and FastJet (needs `pip install 'allo-ext\\[generate]'`)."""
    with _user_errors():
        from .data.generate import _canonical_classes, generate
        from .outputs import check_output_file

        _positive(n_jets, "--n-jets")
        _positive(workers, "--workers")
        n_classes = len(_canonical_classes(_features(classes)))
        if n_jets < n_classes:
            raise OptionError("--n-jets", f"{n_jets} jets over {n_classes} classes leaves a class without jets; "
                                          f"give at least {n_classes}")
        check_output_file(out, force=force)
        path = generate(n_jets, out, classes=_features(classes), seed=seed, mpi=mpi, workers=workers,
                        use_cache=cache)
        console.print(f"wrote {n_jets} jets to [bold]{path}[/]")


@data_app.command("inspect")
def data_inspect(
    file: Annotated[Path, typer.Argument(help="An hls4ml-format .h5 file or a directory of them.")],
    n_particles: Annotated[Optional[int], typer.Option(help="Particles per jet to include in the feature "
                                                        "statistics (default: all).")] = None,
):
    """Counts per class, array shapes and per-feature statistics (over real, non-padded particles)."""
    _positive(n_particles, "--n-particles")
    with _user_errors():
        import h5py
        import numpy as np

        from .data import CLASS_NAMES, FEATURE_NAMES, JetFiles, Normaliser
        from .data.normalise import padding_mask

        files = JetFiles.open(file)
        p = n_particles or min(files.n_particles)
        norm = Normaliser(features=FEATURE_NAMES)
        lo = np.full(len(FEATURE_NAMES), np.inf)
        hi = np.full(len(FEATURE_NAMES), -np.inf)
        counts = np.zeros(len(CLASS_NAMES), np.int64)
        multiplicity = []
        for x, y in files.iter_chunks(features=FEATURE_NAMES, n_particles=p):
            norm.update(x)
            real = x[padding_mask(x)]
            if len(real):
                lo, hi = np.minimum(lo, real.min(axis=0)), np.maximum(hi, real.max(axis=0))
            counts += np.bincount(y, minlength=len(CLASS_NAMES))
            multiplicity.append(padding_mask(x).sum(axis=1))
        mult = np.concatenate(multiplicity) if multiplicity else np.zeros(0)

        console.print(f"[bold]{file}[/]: {len(files)} jets in {len(files.files)} file(s)")
        for path, n, parts in zip(files.files, files.sizes, files.n_particles):
            with h5py.File(path, "r") as f:
                shapes = {k: f[k].shape for k in f.keys() if isinstance(f[k], h5py.Dataset)}
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            console.print(f"  {path.name}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
            if attrs:
                console.print("    " + ", ".join(f"{k}={v}" for k, v in attrs.items()), soft_wrap=True)
        t = Table(title="jets per class")
        for c in CLASS_NAMES:
            t.add_column(c, justify="right")
        t.add_row(*[f"{int(c)} ({c / max(counts.sum(), 1):.1%})" for c in counts])
        console.print(t)
        if len(mult):
            console.print(f"real particles per jet in the first {p}: mean {mult.mean():.1f}, "
                          f"min {int(mult.min())}, max {int(mult.max())}")
        _jet_columns_table(files)
        t = Table(title=f"per-particle features (real particles of the first {p} per jet)")
        for col in ("feature", "mean", "std", "min", "max"):
            t.add_column(col, justify="left" if col == "feature" else "right")
        for i, name in enumerate(FEATURE_NAMES):
            if norm.count:
                t.add_row(name, f"{norm.mean[i]:.4g}", f"{norm.std[i]:.4g}", f"{lo[i]:.4g}", f"{hi[i]:.4g}")
            else:
                t.add_row(name, "-", "-", "-", "-")
        console.print(t)


def _jet_columns_table(files) -> None:
    """Median of the filled jet-level columns per class (the public files fill all of them, our
    generator j_pt, j_eta, j_mass and j_multiplicity): a quick physics check, e.g. W/Z/t mass peaks."""
    import h5py
    import numpy as np

    from .data import CLASS_NAMES, JET_FEATURE_NAMES
    from .data.hls4ml_format import JETS_KEY, LABEL_COLUMNS

    names = ("j_pt", "j_eta", "j_mass", "j_multiplicity")
    cols = [JET_FEATURE_NAMES.index(n) for n in names]
    values, labels = [], []
    for path in files.files:
        with h5py.File(path, "r") as f:
            ds = f[JETS_KEY]
            for a in range(0, ds.shape[0], 65536):
                block = ds[a:a + 65536]
                values.append(block[:, cols])
                labels.append(block[:, LABEL_COLUMNS].argmax(axis=1))
    if not values:
        return
    v, y = np.concatenate(values), np.concatenate(labels)
    filled = [i for i in range(len(names)) if np.any(v[:, i] != 0)]
    if not filled:
        return
    t = Table(title="jet columns: median per class")
    t.add_column("column")
    for c in CLASS_NAMES:
        t.add_column(c, justify="right")
    for i in filled:
        t.add_row(names[i], *[f"{np.median(v[y == k, i]):.4g}" if np.any(y == k) else "-"
                              for k in range(len(CLASS_NAMES))])
    console.print(t)


# ------------------------------------------------------------------------------------------ train
@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Training jets: an hls4ml-format .h5 file or directory. "
                                       "10% is held out for validation.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory: checkpoints (resumed if present), "
                                      "plots, metrics.")],
    model: Annotated[str, typer.Option(help="Model: jetformer, linformer, bitjetformer, mlp or deepsets.")] = "jetformer",
    preset: Annotated[str, typer.Option(help="Size preset: tiny, hls4ml150, jetclass, or none (config defaults).")] = "tiny",
    config: Annotated[Optional[list[str]], typer.Option("--config", help="Model config override key=value "
                                                        "(repeatable), e.g. --config dim=16 --config norm=layer.")] = None,
    train_config: Annotated[Optional[list[str]], typer.Option("--train-config", help="TrainConfig override "
                                                              "key=value (repeatable), e.g. scheduler=plateau.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs, one OneCycle cycle over all of them "
                                                  "(default: the preset's, 40 for tiny, 25 for hls4ml150).")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 256,
    max_lr: Annotated[float, typer.Option(help="Peak learning rate of OneCycle.")] = 1e-3,
    features: Annotated[str, typer.Option(help="Comma-separated particle features.")] = "pT_rel,eta_rel,phi_rel",
    n_particles: Annotated[Optional[int], typer.Option(help="Particles per jet (default: the preset's, "
                                                       "8 for tiny, 150 for hls4ml150).")] = None,
    test_data: Annotated[Optional[Path], typer.Option(help="Independent test jets: accuracy, AUC, ROC plot.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed (weights init, batch order).")] = 0,
    patience: Annotated[Optional[int], typer.Option(help="Early-stopping patience in epochs (default: off, "
                                                    "the best validation epoch is kept).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start over even if OUT has a checkpoint (removes the "
                                        "old run's checkpoints, metrics and plots).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even if it holds files allo-ext did "
                                        "not write.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
):
    """Train a model on jets; the checkpoint holds the model, its config and the input normalisation."""
    with _user_errors():
        from .bundle import make_model
        from .outputs import check_output_dir, mark_dir, remove_if_unused, run_lock
        from .train import TrainConfig
        from .train.checkpoint import RUN_FILES
        from .workflow import PRESET_EPOCHS, PRESET_PARTICLES, train_on_file

        # Everything that can be checked is checked before the first epoch.
        if preset not in PRESET_PARTICLES:
            raise OptionError("--preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESET_PARTICLES)}")
        _positive(n_particles, "--n-particles")
        feats = _feature_list(features)
        tc = dict(epochs=epochs if epochs is not None else PRESET_EPOCHS[preset], batch_size=batch_size,
                  max_lr=max_lr, seed=seed, patience=patience, progress=progress)
        tc.update(parse_assignments(train_config, "--train-config"))
        cfg = TrainConfig.from_dict(tc)
        overrides = parse_assignments(config, "--config")
        parts = n_particles or PRESET_PARTICLES[preset]
        make_model(model, preset, n_particles=parts, n_features=len(feats), overrides=overrides)
        _check_jets(data, parts, "--data")
        if test_data is not None:
            _check_jets(test_data, parts, "--test-data")
        check_output_dir(out, force=force, ours=RUN_FILES)
        created = not out.exists()
        try:
            with run_lock(out, "--out"):
                mark_dir(out)
                r = train_on_file(data, out, model_name=model, preset=preset, features=feats,
                                  n_particles=n_particles, overrides=overrides, config=cfg, test_data=test_data,
                                  resume=not fresh)
        except ValueError as e:
            if created:
                remove_if_unused(out)  # a run that failed before its first checkpoint leaves nothing behind
            if str(e).startswith("cannot resume"):
                raise ValueError(f"{e} (on the command line: --fresh, or another --out)") from e
            raise
        console.print(f"model: {r.bundle.describe()}")
        if r.val_accuracy is not None:
            console.print(f"validation accuracy: [bold]{r.val_accuracy:.4f}[/] (best epoch {r.best_epoch} "
                          f"of {r.epochs_run})")
        if r.test_accuracy is not None:
            console.print(f"test accuracy: [bold]{r.test_accuracy:.4f}[/] on {r.test_metrics['n_jets']} jets "
                          f"(macro AUC {r.test_metrics['macro_auc']:.4f})")
        console.print(f"outputs in [bold]{out}[/]: " + ", ".join(sorted(p.name for p in out.iterdir()
                                                                    if not p.name.startswith("."))))


# ---------------------------------------------------------------------------------------- compile
@app.command("compile")
def compile_(
    checkpoint: Annotated[Path, typer.Argument(help="A training output directory or a .pt checkpoint.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the project and its README.md to.")],
    target: Annotated[str, typer.Option(help="llvm (MLIR for the CPU), vhls (HLS C++), vitis_hls (Vitis "
                                        "project; --mode csim builds the C simulation) or rtl.")] = "vhls",
    mode: Annotated[Optional[str], typer.Option(help="vitis_hls mode: csyn (default), sw_emu, hw_emu, hw "
                                                "(project files only; run where Vitis is) or csim.")] = None,
    schedule: Annotated[str, typer.Option(help="Kernel schedule profile: default or latency.")] = "default",
    data: Annotated[Optional[Path], typer.Option(help="vitis_hls project modes: jets to write as the host's "
                                                 "input files, with llvm reference outputs.")] = None,
    n: Annotated[int, typer.Option(help="How many jets of --data to write.")] = 16,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even if it holds files allo-ext did "
                                        "not write.")] = False,
):
    """Compile a trained model and write the result with a README.md explaining how to build it."""
    with _user_errors():
        from .bundle import load_bundle
        from .outputs import check_output_dir, mark_dir
        from .workflow import COMPILE_MODES, COMPILE_TARGETS, export_project

        if target not in COMPILE_TARGETS:
            raise OptionError("--target", f"unknown target {target!r}; choose one of {', '.join(COMPILE_TARGETS)}")
        if mode is not None and mode not in COMPILE_MODES.get(target, ()):
            modes = COMPILE_MODES.get(target)
            raise OptionError("--mode", f"target {target} has no mode {mode!r}" + (
                f"; choose one of {', '.join(modes)}" if modes else " (--mode applies to vitis_hls and rtl); "
                "for the C simulation use --target vitis_hls --mode csim"))
        _positive(n, "--n")
        check_output_dir(out, force=force)
        model, bundle, ck = load_bundle(checkpoint)
        xy = None
        if data is not None:
            _check_jets(data, bundle.n_particles, "--data")
            xy = bundle.load_data(data, n=n)
        with console.status(f"compiling {bundle.model} for {target}..."):
            files = export_project(model, bundle, target, out, mode=mode, schedule=schedule,
                                   checkpoint=str(ck), data=xy)
        mark_dir(out)
        console.print(f"compiled {bundle.describe()} for [bold]{target}[/] into [bold]{out}[/]:")
        for name in sorted(files):
            console.print(f"  {name}")


# ----------------------------------------------------------------------------------------- verify
@app.command()
def verify(
    checkpoint: Annotated[Path, typer.Argument(help="A training output directory or a .pt checkpoint.")],
    data: Annotated[Path, typer.Option("--data", help="hls4ml-format jets to run (normalised with the "
                                       "checkpoint's statistics).")],
    n: Annotated[Optional[int], typer.Option(help="Use the first N jets of --data.")] = 1000,
    backends: Annotated[str, typer.Option(help="Comma-separated backends: llvm, csim, rtl.")] = "llvm,csim,rtl",
    schedule: Annotated[str, typer.Option(help="Kernel schedule profile: default or latency.")] = "default",
    atol: Annotated[float, typer.Option(help="Largest accepted |log-prob error| against torch.")] = 1e-4,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the rows as JSON here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --json file if it exists.")] = False,
):
    """Run every available backend against torch on real jets: max error, argmax agreement, accuracy.
    Exits with 1 if a backend errs or disagrees; backends whose tools are missing show as skipped."""
    with _user_errors():
        import math

        from .bundle import load_bundle
        from .outputs import check_output_file
        from .verify import BUILDERS, failures, render_table
        from .verify import verify as run_verify

        names = _features(backends)
        if not names:
            raise OptionError("--backends", f"names no backend; choose from {', '.join(BUILDERS)}")
        unknown = [b for b in names if b not in BUILDERS]
        if unknown:
            raise OptionError("--backends", f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BUILDERS)}")
        if not (math.isfinite(atol) and atol >= 0):
            raise OptionError("--atol", f"must be a finite number >= 0, got {atol}")
        _positive(n, "--n")
        if json_out is not None:
            check_output_file(json_out, force=force, what="--json")
        model, bundle, ck = load_bundle(checkpoint)
        _check_jets(data, bundle.n_particles, "--data")
        X, y = bundle.load_data(data, n=n)
        console.print(f"{ck}: {bundle.describe()}; {len(y)} jets from {data}")
        with console.status("verifying...") as status:
            rows = run_verify(model, X, y, backends=names, schedule=schedule, atol=atol,
                              on_start=lambda b: status.update(f"verifying: building and running {b}..."))
        console.print(render_table(rows))
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
        bad = failures(rows)
        if bad:
            err_console.print(f"[bold red]verification failed[/] for {', '.join(r.backend for r in bad)}")
            raise typer.Exit(1)


# --------------------------------------------------------------------------------------- upstream
@app.command()
def upstream(
    kernel: Annotated[str, typer.Argument(help="A library kernel name (see allo_ext.kernels).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for <kernel>.py, test_<kernel>.py and the golden "
                                      "data.")],
    args: Annotated[str, typer.Option("--args", help="The factory's arguments as Python, e.g. 'float32, 4, 8' or "
                                      "'float32, (2, 5)'; type names are those of allo_ext.")],
    force: Annotated[bool, typer.Option("--force", help="Replace files that exist.")] = False,
):
    """Write a library kernel in Allo's syntax (generic header, Allo's schedule calls) with an
    Allo-style pytest file, for sending upstream to cornell-zhang/allo."""
    import allo_ext as _ax

    from .upstream import write_upstream

    ns = {k: getattr(_ax, k) for k in _ax.__all__}
    try:
        vals = eval(f"[{args}]", {"__builtins__": {}}, ns)  # noqa: S307 - the user's own argument list
    except Exception as e:  # noqa: BLE001
        raise OptionError("--args", f"cannot read {args!r}: {e}") from None
    info = write_upstream(kernel, vals, str(out), overwrite=force)
    for f in info["files"]:
        console.print(f"wrote {f}")
    for n in info["notes"]:
        console.print(f"[yellow]note:[/] {n}")


# ------------------------------------------------------------------------------------------ bench
def available_benches() -> dict[str, str]:
    """name -> first docstring line of bench/<name>.py (bench/ lives in the source checkout)."""
    if not BENCH_DIR.is_dir():
        return {}
    out = {}
    for p in sorted(BENCH_DIR.glob("*.py")):
        if p.stem in ("__init__", "common"):
            continue
        text = p.read_text()
        doc = text.split('"""')[1].strip().split("\n\n")[0] if text.startswith('"""') else ""
        out[p.stem] = " ".join(doc.split())
    return out


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    names: Annotated[Optional[list[str]], typer.Argument(help="Benchmarks to run (cpu, frontend, csim, train, "
                                                         "generate, ...), or 'all'. None: list them.")] = None,
):
    """Run benchmarks (`python -m bench.<name>`); results go to bench/results/<name>.{json,md}.
    Options after the name go to the benchmark, e.g. `allo-ext bench train --models tiny`."""
    found = available_benches()
    if not found:
        err_console.print(f"[bold red]error:[/] no benchmarks at {BENCH_DIR}: they live in the source checkout "
                          f"(git clone), not in an installed package")
        raise typer.Exit(1)
    if not names:
        t = Table(title=f"benchmarks in {BENCH_DIR} (run: allo-ext bench NAME \\[options], or all)")
        t.add_column("name")
        t.add_column("what")
        for k, v in found.items():
            t.add_row(k, v)
        console.print(t)
        return
    # Unknown options are kept as arguments (ignore_unknown_options): everything from the first
    # option on belongs to the benchmark.
    cut = next((i for i, x in enumerate(names) if x.startswith("-")), len(names))
    names, extra = names[:cut], names[cut:] + list(ctx.args)
    names = list(found) if names == ["all"] else names
    missing = [x for x in names if x not in found]
    for x in missing:
        err_console.print(f"[yellow]bench '{x}' does not exist (yet); available: {', '.join(found)}[/]")
    if extra and len(names) != 1:
        err_console.print("[bold red]error:[/] benchmark options need exactly one benchmark name")
        raise typer.Exit(1)
    failed = []
    for x in (x for x in names if x in found):
        console.rule(f"bench {x}")
        r = subprocess.run([sys.executable, "-m", f"bench.{x}", *extra], cwd=REPO, check=False)
        if r.returncode:
            failed.append(x)
    if failed or missing:
        if failed:
            err_console.print(f"[bold red]failed:[/] {', '.join(failed)}")
        raise typer.Exit(1)


# hpo, prune, quantize, explain: allo_ext.compress behind thin commands.
from . import cli_compress  # noqa: E402

cli_compress.register(app, _user_errors)


def main() -> None:  # pragma: no cover - console entry for `python -m allo_ext.cli`
    app()


if __name__ == "__main__":
    main()
