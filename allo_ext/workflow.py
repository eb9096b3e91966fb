"""The steps the CLI, `make demo` and bench/train.py share: train a bundle on jet files, and
write a compiled model (MLIR or an HLS project) into a directory with a README."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .bundle import BundleError, ModelBundle, make_model, write_bundle_json
from .data import DEFAULT_FEATURES, load_split
from .train import TrainConfig, evaluate, fit, plot_roc
from .train.checkpoint import atomic_json_save, clear_run
from .train.seeding import seed_everything

# Particles per jet each preset is sized for when --n-particles is not given.
PRESET_PARTICLES = {"tiny": 8, "hls4ml150": 150, "jetclass": 128, "none": 8}
# Epochs of the default recipe per preset (`allo-ext train` without --epochs). tiny: 20 epochs
# left four seeds at 0.581-0.602 test accuracy, on the 0.59 target; 40 clear it (bench/train_seeds.py).
PRESET_EPOCHS = {"tiny": 40, "hls4ml150": 25, "jetclass": 25, "none": 20}
COMPILE_TARGETS = ("llvm", "vhls", "vitis_hls", "rtl")
COMPILE_MODES = {"vitis_hls": ("csyn", "sw_emu", "hw_emu", "hw", "csim"), "rtl": ("sim", "synth")}


class TargetUnavailableError(RuntimeError):
    """A target this allo_ext cannot build (not implemented yet, or not for this model)."""


@dataclass
class TrainResult:
    model: torch.nn.Module
    bundle: ModelBundle
    out_dir: Path
    val_accuracy: float | None
    test_accuracy: float | None
    test_metrics: dict | None
    epochs_run: int
    best_epoch: int | None


def train_on_file(
    data: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    model_name: str = "jetformer",
    preset: str = "tiny",
    features: Sequence[str] = DEFAULT_FEATURES,
    n_particles: int | None = None,
    overrides: dict[str, Any] | None = None,
    config: TrainConfig | None = None,
    test_data: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    resume: bool = True,
) -> TrainResult:
    """Split ``data`` 90/10 (train/val), fit the normaliser on the train rows, train with
    :func:`allo_ext.train.fit` into ``out_dir`` (checkpoints, plots; resumes an interrupted run)
    and, with ``test_data``, evaluate on it (``test_metrics.json``, ``test_roc.png``).
    The checkpoints carry the model bundle (see :mod:`allo_ext.bundle`)."""
    out = Path(out_dir)
    features = tuple(features)
    if preset not in PRESET_PARTICLES:
        raise BundleError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_PARTICLES)}")
    n_particles = n_particles or PRESET_PARTICLES[preset]
    config = config or TrainConfig()
    if not resume:
        clear_run(out)
    # Seed before the model is built: the weight initialisation draws from torch's global RNG.
    seed_everything(config.seed)
    model = make_model(model_name, preset, n_particles=n_particles, n_features=len(features),
                       overrides=overrides)
    split = load_split(data, features=features, n_particles=n_particles,
                       val_fraction=val_fraction, seed=split_seed)
    bundle = ModelBundle.for_model(model, features, n_particles, split.normaliser)
    val = (split.x_val, split.y_val) if len(split.y_val) else None
    history = fit(model, (split.x_train, split.y_train), val, config, out, resume=resume,
                  model_config=bundle.to_dict())
    write_bundle_json(bundle, out / "bundle.json")
    val_acc = None
    if val is not None:
        val_acc = evaluate(model, *val, class_names=bundle.class_names).accuracy
    test_metrics = None
    if test_data is not None:
        x_test, y_test = bundle.load_data(test_data)
        m = evaluate(model, x_test, y_test, class_names=bundle.class_names)
        test_metrics = m.to_dict() | {"n_jets": int(len(y_test)), "file": str(test_data)}
        atomic_json_save(test_metrics, out / "test_metrics.json")
        if config.save_plots:
            plot_roc(m.y_true, m.probs, out / "test_roc.png", m.class_names)
    return TrainResult(model.eval(), bundle, out, val_acc,
                       None if test_metrics is None else test_metrics["accuracy"], test_metrics,
                       len(history.epochs), history.best_epoch)


# ------------------------------------------------------------------------------------ compile
def _example(bundle: ModelBundle, n: int = 1) -> torch.Tensor:
    return torch.zeros(n, bundle.n_particles, len(bundle.features))


def _input_section(bundle: ModelBundle) -> str:
    lines = [f"- Model: {bundle.describe()}.",
             f"- Input: one jet is {bundle.n_particles} particles x {len(bundle.features)} features "
             f"({', '.join(bundle.features)}), particles in decreasing pT, zero-padded.",
             f"- Output: 5 log-probabilities in the class order {', '.join(bundle.class_names)}."]
    norm = bundle.normaliser
    if norm is not None:
        lines.append("- Inputs must be normalised first, per feature: `x' = (x - mean) / std` for real "
                     "particles, padded particles stay 0 (statistics of the training split, also in "
                     "`bundle.json`):")
        lines.append("")
        lines.append("  | feature | mean | std |")
        lines.append("  |---|---:|---:|")
        for f, mu, sd in zip(norm.features, norm.mean, norm.std):
            lines.append(f"  | {f} | {mu:.6g} | {sd:.6g} |")
    return "\n".join(lines)


def _readme(title: str, bundle: ModelBundle, files: dict[str, str], build: str, checkpoint: str | None) -> str:
    listing = "\n".join(f"- `{name}`: {what}" for name, what in files.items())
    src = f" from `{checkpoint}`" if checkpoint else ""
    return (f"# {title}\n\nGenerated by `allo-ext compile`{src}.\n\n## The model\n\n"
            f"{_input_section(bundle)}\n\n## Files\n\n{listing}\n\n## How to build and run\n\n{build}\n\n"
            "## Checking it\n\n`allo-ext verify <checkpoint> --data <jets.h5>` runs every backend available on "
            "the machine (llvm, csim, ...) on real jets and compares each with PyTorch: maximum "
            "log-probability error, argmax agreement and accuracy.\n")


def _copy_ap_types_hint() -> str:
    try:
        from .backends.hls.csim import ap_types_dir

        return str(ap_types_dir())
    except Exception:  # only a hint in a README; the real build reports the missing tool itself
        return "<site-packages>/hls4ml/templates/vivado/ap_types  (pip install hls4ml==1.3.0)"


def export_project(model: torch.nn.Module, bundle: ModelBundle, target: str, out_dir: str | os.PathLike, *,
                   mode: str | None = None, schedule: str = "default", checkpoint: str | None = None,
                   data: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Path]:
    """Compile ``model`` for ``target`` and write the result into ``out_dir`` with a README.md
    (and bundle.json). Returns the written files by name.

    - ``llvm``: ``model.mlir`` (scheduled affine/memref MLIR) and ``model.bufferized.mlir``;
    - ``vhls``: the HLS C++ (kernel.cpp, kernel.h, kernel_weights.h);
    - ``vitis_hls``: ``mode="csim"`` the C simulation sources and the built library; any other
      mode (default ``csyn``) the full Vitis project (host.cpp, Makefile, run_hls.tcl), with
      ``data`` (normalised X, y) also its input files and llvm reference outputs;
    - ``rtl``: only where the backend exists (``allo_ext.backends.TARGETS``).
    """
    from .backends import TARGETS
    from .frontend import from_pytorch

    if target not in COMPILE_TARGETS:
        raise TargetUnavailableError(f"unknown target {target!r}; choose one of {', '.join(COMPILE_TARGETS)}")
    if target not in TARGETS:
        raise TargetUnavailableError(
            f"target {target!r} is not available in this allo_ext yet (built targets: {', '.join(TARGETS)}); "
            f"use --target vhls or vitis_hls for HLS C++, or llvm for the CPU")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    written: dict[str, Path] = {}
    about: dict[str, str] = {}
    if target == "llvm":
        compiled = from_pytorch(model, _example(bundle), target="llvm", schedule=schedule)
        written["model.mlir"] = out / "model.mlir"
        written["model.mlir"].write_text(str(compiled.schedule) + "\n")
        about["model.mlir"] = (f"the model as one MLIR module (affine/memref/arith/math, weights as "
                               f"memref.global), with the '{schedule}' kernel schedules applied; the top "
                               f"function `{compiled.schedule.top}` takes a batch of {compiled.chunk} jets")
        written["model.bufferized.mlir"] = out / "model.bufferized.mlir"
        written["model.bufferized.mlir"].write_text(compiled.module.lowered_ir + "\n")
        about["model.bufferized.mlir"] = ("the same after the backend's loop unrolling, vectorisation and bufferization (results "
                                          "as out-parameters): exactly what is lowered to LLVM")
        from .backends.llvm import LOWER

        build = ("The CPU backend JIT-compiles this module with MLIR's ExecutionEngine; from Python:\n\n"
                 "```python\nimport torch\nfrom allo_ext.bundle import load_bundle\nfrom allo_ext.frontend import from_pytorch\n"
                 "model, bundle, _ = load_bundle('<checkpoint>')\nf = from_pytorch(model, torch.zeros(1, "
                 f"{bundle.n_particles}, {len(bundle.features)}), target='llvm')\n"
                 "log_probs = f(bundle.load_data('<jets.h5>')[0])\n```\n\n"
                 "By hand with MLIR's own tools (not installed here; the pipeline is the backend's), from the "
                 "bufferized module to LLVM IR:\n\n"
                 f"```\nmlir-opt model.bufferized.mlir --pass-pipeline='{LOWER}' \\\n"
                 "  | mlir-translate --mlir-to-llvmir -o model.ll\n```")
        title = "allo-ext CPU build (MLIR)"
    elif target == "vhls":
        hls = from_pytorch(model, _example(bundle), target="vhls", schedule=schedule)
        written.update(hls.write(out))
        about.update(_hls_files(hls))
        build = _hls_build_text(hls.functions[hls.top].cpp_name)
        title = "allo-ext HLS C++"
    elif target == "vitis_hls":
        mode = mode or "csyn"
        if mode == "csim":
            sim = from_pytorch(model, _example(bundle), target="vitis_hls", mode="csim", schedule=schedule)
            for f in sorted(Path(sim.directory).iterdir()):
                if not f.is_file() or f.name.startswith("."):
                    continue
                if f == sim.library:  # the bytes that were verified and loaded, never a file changed since
                    (out / f.name).write_bytes(sim.library_bytes())
                else:
                    shutil.copy2(f, out / f.name)
                written[f.name] = out / f.name
            about.update(_hls_files(sim.hls))
            about.update({"csim_main.cpp": "C wrapper that loops the kernel over a batch (the C simulation driver)",
                          "libkernel.so": "the C simulation built by g++ (loadable with ctypes)",
                          "build.log": "the g++ command line and its output"})
            build = (f"Rebuild the C simulation with:\n\n```\ng++ -O2 -std=c++17 -shared -fPIC -fwrapv "
                     f"-ffp-contract=off -pthread -isystem {_copy_ap_types_hint()} -o libkernel.so csim_main.cpp\n```\n\n"
                     + _hls_build_text(sim.hls.functions[sim.hls.top].cpp_name))
            title = "allo-ext C simulation (vitis_hls, mode=csim)"
        else:
            opts: dict[str, Any] = {"project": out}
            if data is not None:
                opts["inputs"] = (np.ascontiguousarray(data[0][:, None]),)
            proj = from_pytorch(model, _example(bundle), target="vitis_hls", mode=mode, schedule=schedule, **opts)
            written.update(proj.files)
            about.update(_hls_files(proj.hls))
            about.update({"host.cpp": "XRT host program (native C++ API): loads data/*.bin, runs the kernel, "
                                      "writes the outputs and compares with the reference",
                          "Makefile": "`make run TARGET=sw_emu|hw_emu|hw` builds the xclbin with v++ and runs the host",
                          "run_hls.tcl": "`vitis_hls -f run_hls.tcl`: C synthesis (csynth report)"})
            if data is not None:
                for f in sorted((out / "data").iterdir()):
                    written[f"data/{f.name}"] = f
                about["data/"] = (f"{len(data[0])} normalised test jets (`x.bin`, raw little-endian float32, "
                                  f"jet-major) and the llvm backend's reference outputs (`*.ref.bin`)")
            build = ("Needs Xilinx Vitis (`vitis_hls`, `v++`) and XRT, which are not installed here:\n\n"
                     "```\nsource <Vitis>/settings64.sh && source /opt/xilinx/xrt/setup.sh\n"
                     "vitis_hls -f run_hls.tcl                     # C synthesis, report in *.prj/solution1/syn/report\n"
                     "export XDEVICE=<platform>                    # e.g. xilinx_u250_gen3x16_xdma_4_1_202210_1\n"
                     "make run TARGET=sw_emu                       # or hw_emu, hw\n```\n\n"
                     f"Part {proj.part}, clock {proj.clock_ns} ns (override with $XPART).\n\n"
                     + _hls_build_text(proj.top))
            title = f"allo-ext Vitis project (vitis_hls, mode={mode})"
    else:  # rtl, once the backend exists
        result = from_pytorch(model, _example(bundle), target="rtl", mode=mode or "sim", schedule=schedule)
        if not hasattr(result, "write"):
            raise TargetUnavailableError(f"the rtl backend returned a {type(result).__name__} without .write(dir); "
                                         "cannot write its project")
        written.update(result.write(out) or {})
        build = "See the rtl backend's documentation (allo_ext.backends.rtl)."
        title = "allo-ext RTL"
    written["bundle.json"] = write_bundle_json(bundle, out / "bundle.json")
    about["bundle.json"] = "model class, config, input features, particle count and normalisation statistics"
    readme = out / "README.md"
    readme.write_text(_readme(title, bundle, {k: about.get(k, "") for k in sorted(set(about) | set(written))
                                              if not k.startswith("data/")}, build, checkpoint))
    written["README.md"] = readme
    return written


def _hls_files(hls) -> dict[str, str]:
    top = hls.functions[hls.top].cpp_name
    files = {"kernel.cpp": f"the HLS C++: one function per library kernel and the top function `{top}` "
                           "(one jet per call), with the schedules' pragmas",
             "kernel.h": f"the interface of `{top}`"}
    if hls.weights:
        files["kernel_weights.h"] = "the trained weights as constant arrays"
    return files


def _hls_build_text(top: str) -> str:
    return (f"Vitis HLS: `add_files kernel.cpp`, `set_top {top}`, then `csynth_design` (or `allo-ext compile "
            f"<checkpoint> --target vitis_hls --out DIR` for a complete project with a tcl script, host and "
            f"Makefile). Plain g++ (C simulation) needs the Xilinx ap_types headers, which ship in "
            f"`pip install hls4ml==1.3.0`: `g++ -std=c++17 -isystem {_copy_ap_types_hint()} -c kernel.cpp`.")


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return path
