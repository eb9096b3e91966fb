"""Benchmark: wall time of `allo_ext.data.generate.generate` (target: 5,000 jets < 60 s on 2 cores,
MPI off). Writes bench/results/generate.json and bench/results/generate.md.

    python -m bench.generate [--n-jets 5000] [--workers 2] [--mpi] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from allo_ext.data import CLASS_NAMES, load
from allo_ext.data.generate import _installed_versions, generate

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 60.0


def _cpu_seconds() -> float:
    """User + system time of this process and its reaped workers: on a shared machine the wall
    time depends on other load, the CPU time much less."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def run(n_jets: int, workers: int, mpi: bool, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "jets.h5"
        cpu0 = _cpu_seconds()
        start = time.perf_counter()
        generate(n_jets, out, seed=seed, mpi=mpi, workers=workers, use_cache=False)
        wall = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu0
        size_mb = out.stat().st_size / 1e6
        _, y = load(out, n_particles=1)
    per_class = np.bincount(y, minlength=len(CLASS_NAMES)).tolist()
    return {
        "n_jets": n_jets, "workers": workers, "mpi": mpi, "seed": seed,
        "wall_s": round(wall, 2), "jets_per_s": round(n_jets / wall, 1),
        "cpu_s": round(cpu, 2), "cpu_utilisation": round(cpu / wall / workers, 2),
        "target_s": TARGET_S if (n_jets == 5000 and workers == 2 and not mpi) else None,
        "file_mb": round(size_mb, 1), "jets_per_class": dict(zip(CLASS_NAMES, per_class)),
        "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(), **_installed_versions(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(result: dict) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    js = RESULTS / "generate.json"
    js.write_text(json.dumps(result, indent=2) + "\n")
    verdict = ("" if result["target_s"] is None else
               (" (target < 60 s: met)" if result["wall_s"] < TARGET_S else
                " (target < 60 s: MISSED)"))
    md = RESULTS / "generate.md"
    md.write_text(
        "# Jet generation (Pythia8 + FastJet)\n\n"
        "| jets | workers | MPI | wall (s) | jets/s | CPU (s) | CPU use per worker | file (MB) "
        "| load avg |\n"
        "|---:|---:|:---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {result['n_jets']} | {result['workers']} | {'on' if result['mpi'] else 'off'} "
        f"| {result['wall_s']}{verdict} | {result['jets_per_s']} | {result['cpu_s']} "
        f"| {result['cpu_utilisation']:.0%} | {result['file_mb']} "
        f"| {result['load_avg_1min']} |\n\n"
        f"pythia8mc {result['pythia8mc']}, fastjet {result['fastjet']}, "
        f"{result['cpu_count']} CPUs, {result['date']}. Jets per class: "
        + ", ".join(f"{k} {v}" for k, v in result["jets_per_class"].items()) + ".\n")
    return js, md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-jets", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mpi", action="store_true", help="multi-parton interactions on (slower)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    result = run(args.n_jets, args.workers, args.mpi, args.seed)
    js, md = write_results(result)
    print(md.read_text())
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
