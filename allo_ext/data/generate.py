"""Generate hls4ml-format jets (g, q, W, Z, t) with Pythia8 and FastJet.

Events: pp at 13 TeV, pTHatMin 950 GeV, one process set per class (see PROCESS_SETTINGS).
Jets: anti-kT R = 0.8 on visible final-state particles (no neutrinos, E > 1 MeV); the leading
jet, else the sub-leading one, with pT in [800, 1200] GeV, |eta| < 2 and matched to the truth
particle of its class (truth.py). Up to 150 particles per jet, 16 features (jet_features.py).

`jets` columns filled (the rest are zero): j_pt, j_eta, j_mass (ungroomed, GeV),
j_multiplicity (all constituents, also beyond 150), the one-hot label j_g..j_t; j_undef = 0.
Jet phi has no column in the layout and is not stored.

Reproducibility: work is cut into shards of at most SHARD_SIZE jets of one class, each with its
own Pythia seed derived from (seed, class, shard). The output therefore depends on
(n_jets, classes, seed, mpi) and the generator versions, never on the number of workers.

pythia8mc and fastjet are GPL and optional: `pip install 'allo-ext[generate]'`.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import multiprocessing as mp
import os
import queue as queue_mod
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ..cache import cache_root
from .hls4ml_format import CLASS_NAMES, N_PARTICLES, make_jets_array, write
from .jet_features import constituent_features
from .truth import is_matched, truth_objects

GENERATOR_VERSION = "1"
PINNED = {"pythia8mc": "8.317.2", "fastjet": "3.5.2.0"}
SHARD_SIZE = 250

JET_R = 0.8
JET_PT_RANGE = (800.0, 1200.0)
JET_ABS_ETA_MAX = 2.0
MIN_PARTICLE_E = 1e-3  # GeV
_NEUTRINOS = (12, 14, 16)
# Jets below this pT can be neither of the two hardest candidates that pass the cuts.
_CLUSTER_MIN_PT = 100.0

COMMON_SETTINGS = ("Beams:eCM = 13000", "PhaseSpace:pTHatMin = 950", "Print:quiet = on",
                   "Next:numberCount = 0", "Random:setSeed = on")
_W_TO_QUARKS = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5", "24:mMin = 60", "24:mMax = 100")
PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    "g": ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"),
    "q": ("HardQCD:qg2qg = on", "HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on",
          "HardQCD:gg2qqbar = on"),
    "W": ("WeakDoubleBoson:ffbar2WW = on",) + _W_TO_QUARKS,
    # Without the mass window, off-shell Z bosons reach ~600 GeV.
    "Z": ("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2", "23:onMode = off",
          "23:onIfAny = 1 2 3 4 5", "23:mMin = 70", "23:mMax = 110"),
    "t": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on") + _W_TO_QUARKS,
}


class GeneratorsMissingError(ImportError):
    """pythia8mc or fastjet is not installed."""


def _require_generators():
    try:
        import awkward
        import fastjet
        import pythia8mc
    except ImportError as err:
        raise GeneratorsMissingError(
            f"jet generation needs the optional extra 'generate' ({err.name or err} is missing): "
            f"pip install 'allo-ext[generate]'  (pins pythia8mc=={PINNED['pythia8mc']} and "
            f"fastjet=={PINNED['fastjet']}; never leave pythia8mc unpinned, 8.318.0 builds from "
            f"source for over an hour)") from err
    return pythia8mc, fastjet, awkward


def _installed_versions() -> dict[str, str]:
    out = {}
    for name, pin in PINNED.items():
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = pin
    return out


def shard_seed(seed: int, class_index: int, shard_index: int) -> int:
    """Pythia seed for one shard, in Pythia's allowed range [1, 900000000]."""
    state = np.random.SeedSequence([seed, class_index, shard_index]).generate_state(1)[0]
    return int(state) % 900_000_000 + 1


@dataclass(frozen=True)
class _Task:
    cls: str
    n_jets: int
    pythia_seed: int
    mpi: bool
    key: tuple[int, int]  # (class index, shard index): the output order


_banner_shown = False  # FastJet prints its banner once per process (a C++ static flag)


@contextlib.contextmanager
def _first_clustering_silenced():
    """FastJet's C++ banner goes to fd 1 on the first clustering; keep it off the console.
    Later calls do not touch fd 1, so other threads' output is never swallowed."""
    global _banner_shown
    if _banner_shown:
        yield
        return
    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
        _banner_shown = True
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _make_pythia(pythia8mc, cls: str, seed: int, mpi: bool):
    pythia = pythia8mc.Pythia("", False)
    settings = COMMON_SETTINGS + (f"Random:seed = {seed}",
                                  f"PartonLevel:MPI = {'on' if mpi else 'off'}")
    for line in settings + PROCESS_SETTINGS[cls]:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r} (class {cls})")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise for class {cls} (seed {seed})")
    return pythia


def _flat(ak, array) -> np.ndarray:
    return ak.to_numpy(ak.flatten(array, axis=None))


def _select_jets(batch, cls: str, jetdef, fastjet, ak) -> list[tuple[np.ndarray, dict, int]]:
    """(features, jet kinematics, multiplicity) of the selected jet of each event that has one."""
    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rec_all = {"id": _flat(ak, prt.id), "status": _flat(ak, prt.status),
               "d1": _flat(ak, prt.daughter1), "d2": _flat(ak, prt.daughter2),
               "px": _flat(ak, prt.p.px), "py": _flat(ak, prt.p.py),
               "pz": _flat(ak, prt.p.pz), "e": _flat(ak, prt.p.e)}
    visible = ((rec_all["status"] > 0) & ~np.isin(np.abs(rec_all["id"]), _NEUTRINOS)
               & (rec_all["e"] > MIN_PARTICLE_E))
    event_of = np.repeat(np.arange(counts.size), counts)
    vis_counts = np.bincount(event_of[visible], minlength=counts.size)
    vis_offsets = np.concatenate([[0], np.cumsum(vis_counts)])
    p4 = np.stack([rec_all[k][visible] for k in ("px", "py", "pz", "e")], axis=1)
    events = ak.unflatten(ak.zip({"px": p4[:, 0], "py": p4[:, 1], "pz": p4[:, 2], "E": p4[:, 3]}),
                          vis_counts)
    with _first_clustering_silenced():
        seq = fastjet.ClusterSequence(events, jetdef)
        jets = seq.inclusive_jets(min_pt=_CLUSTER_MIN_PT)
        cons = seq.constituent_index(min_pt=_CLUSTER_MIN_PT)
    n_jets = ak.to_numpy(ak.num(jets))
    jet_offsets = np.concatenate([[0], np.cumsum(n_jets)])
    jpx, jpy, jpz = _flat(ak, jets.px), _flat(ak, jets.py), _flat(ak, jets.pz)
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / np.maximum(jpt, 1e-12))
    jphi = np.arctan2(jpy, jpx)
    n_cons = _flat(ak, ak.num(cons, axis=2))
    cons_offsets = np.concatenate([[0], np.cumsum(n_cons)])
    cons_flat = _flat(ak, cons)

    selected = []
    for ev in range(counts.size):
        first = jet_offsets[ev]
        ranked = first + np.argsort(-jpt[first:jet_offsets[ev + 1]], kind="stable")[:2]
        candidates = None
        for j in ranked:
            if not (JET_PT_RANGE[0] <= jpt[j] <= JET_PT_RANGE[1]
                    and abs(jeta[j]) < JET_ABS_ETA_MAX):
                continue
            if candidates is None:
                lo, hi = offsets[ev], offsets[ev + 1]
                candidates = truth_objects(cls, {k: v[lo:hi] for k, v in rec_all.items()})
            if not is_matched(jeta[j], jphi[j], candidates):
                continue
            members = cons_flat[cons_offsets[j]:cons_offsets[j + 1]] + vis_offsets[ev]
            feats, kin = constituent_features(p4[members], N_PARTICLES)
            selected.append((feats, kin, int(members.size)))
            break
    return selected


_progress_queue = None


def _init_worker(q) -> None:
    global _progress_queue
    _progress_queue = q


def _report_to_queue(task_key, n: int) -> None:
    if _progress_queue is not None:
        _progress_queue.put((task_key, n))


def _run_task(task: _Task, report: Callable[[tuple[int, int], int], None] | None = None
              ) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Generate one shard: (key, constituents (n, 150, 16), jets (n, 59))."""
    report = report or _report_to_queue
    pythia8mc, fastjet, ak = _require_generators()
    pythia = _make_pythia(pythia8mc, task.cls, task.pythia_seed, task.mpi)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    found: list[tuple[np.ndarray, dict, int]] = []
    n_events = 0
    max_events = 100 * task.n_jets + 2000
    while len(found) < task.n_jets:
        missing = task.n_jets - len(found)
        efficiency = (len(found) + 1) / (n_events + 2)
        size = int(np.clip(missing / efficiency * 1.1 + 5, 10, 200))
        batch = pythia.nextBatch(size)
        n_events += size
        new = _select_jets(batch, task.cls, jetdef, fastjet, ak)[:missing]
        found.extend(new)
        if new:
            report(task.key, len(new))
        if n_events > max_events and len(found) < task.n_jets:
            raise RuntimeError(
                f"class {task.cls}: only {len(found)} of {task.n_jets} jets passed the selection "
                f"after {n_events} events (Pythia seed {task.pythia_seed}); check the settings")
    label = np.full(task.n_jets, CLASS_NAMES.index(task.cls))
    constituents = np.stack([f for f, _, _ in found])
    jets = make_jets_array(
        label,
        j_pt=np.array([k["pt"] for _, k, _ in found]),
        j_eta=np.array([k["eta"] for _, k, _ in found]),
        j_mass=np.array([k["mass"] for _, k, _ in found]),
        j_multiplicity=np.array([m for _, _, m in found]),
    )
    return task.key, constituents, jets


def _canonical_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str):
        classes = (classes,)
    unknown = [c for c in classes if c not in CLASS_NAMES]
    if unknown or not classes:
        raise ValueError(f"unknown or no classes {list(classes)}; choose from {CLASS_NAMES}")
    return tuple(c for c in CLASS_NAMES if c in classes)


def _tasks(n_jets: int, classes: tuple[str, ...], seed: int, mpi: bool) -> list[_Task]:
    tasks = []
    for i, cls in enumerate(classes):
        n_cls = n_jets // len(classes) + (i < n_jets % len(classes))
        ci = CLASS_NAMES.index(cls)
        for s, start in enumerate(range(0, n_cls, SHARD_SIZE)):
            tasks.append(_Task(cls, min(SHARD_SIZE, n_cls - start), shard_seed(seed, ci, s),
                               mpi, (ci, s)))
    return tasks


def cache_key(n_jets: int, classes: Sequence[str], seed: int, mpi: bool) -> str:
    payload = {"n_jets": int(n_jets), "classes": list(_canonical_classes(classes)),
               "seed": int(seed), "mpi": bool(mpi), "version": GENERATOR_VERSION,
               "shard_size": SHARD_SIZE, **_installed_versions()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    return cache_root("jets")


def _run_all(tasks: list[_Task], workers: int, progress: bool, description: str
             ) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    total = sum(t.n_jets for t in tasks)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("jets"), TimeElapsedColumn(), TimeRemainingColumn(),
                   disable=not progress, transient=False)
    results = {}
    with bar:
        task_id = bar.add_task(description, total=total)
        if workers <= 1:
            for t in tasks:
                key, cons, jets = _run_task(t, lambda _k, n: bar.advance(task_id, n))
                results[key] = (cons, jets)
            return results
        # fork where it exists: spawn would re-run the caller's script in every worker and break
        # scripts without a __main__ guard. The workers use only Pythia, FastJet and numpy, never
        # the parent's torch/OpenMP thread pools, so forking a threaded parent is safe here.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        q = ctx.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_init_worker, initargs=(q,)) as pool:
            pending = {pool.submit(_run_task, t) for t in tasks}
            try:
                while pending:
                    try:
                        _, n = q.get(timeout=0.1)
                        bar.advance(task_id, n)
                    except queue_mod.Empty:
                        pass
                    for fut in [f for f in pending if f.done()]:
                        pending.discard(fut)
                        key, cons, jets = fut.result()
                        results[key] = (cons, jets)
            except BaseException:
                # Do not wait for the remaining shards once one failed or the user interrupted.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            bar.update(task_id, completed=total)
    return results


# ------------------------------------------------------------------------------ verified cache
def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_digest(path: Path, digest: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".sha256.part", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(digest + "\n")
    os.replace(tmp, _digest_path(path))


def _discard(path: Path) -> None:
    for p in (path, _digest_path(path)):
        p.unlink(missing_ok=True)


def _verified_cache_entry(path: Path, n_jets: int, seed: int) -> bool:
    """A cache entry is used only if its bytes hash to the digest written with it. An entry from
    before digests were kept is adopted if it opens as a complete file of the right request."""
    digest = _digest_path(path)
    if digest.is_file():
        try:
            return digest.read_text().strip() == _sha256_file(path)
        except OSError:
            return False
    try:
        import h5py

        from .hls4ml_format import JetFiles

        files = JetFiles.open(path)
        with h5py.File(path, "r") as f:
            ok = (len(files) == n_jets and int(f.attrs.get("n_jets", -1)) == n_jets
                  and int(f.attrs.get("seed", -1)) == int(seed))
            for key in f:
                f[key][-1]  # the last rows: a truncated file fails here
    except Exception:  # noqa: BLE001 - any failure to read means "not usable"
        return False
    if ok:
        _write_digest(path, _sha256_file(path))
    return ok


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def generate(n_jets: int, out_path: str | os.PathLike | None = None, *,
             classes: Sequence[str] = CLASS_NAMES, seed: int = 0, mpi: bool = True,
             workers: int = 2, cache_dir: str | os.PathLike | None = None,
             use_cache: bool = True, progress: bool = True) -> Path:
    """Generate `n_jets` jets split evenly over `classes` into an hls4ml-format h5 file.

    Returns `out_path`, or the cached file when `out_path` is None. A request identical in
    (n_jets, classes, seed, mpi, generator versions) is served from `cache_dir` (default
    $ALLO_EXT_CACHE/jets or ~/.cache/allo_ext/jets) without regenerating. Rows are shuffled
    with `seed`. Raises GeneratorsMissingError without the 'generate' extra."""
    if n_jets < 1:
        raise ValueError(f"n_jets must be >= 1, got {n_jets}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    classes = _canonical_classes(classes)
    if out_path is None and not use_cache:
        raise ValueError("give out_path, or keep use_cache=True to get the cached file's path")
    key = cache_key(n_jets, classes, seed, mpi)
    cached = Path(cache_dir or default_cache_dir()) / (
        f"jets_{n_jets}_{''.join(classes)}_seed{seed}_mpi{'on' if mpi else 'off'}_{key}.h5")
    target = Path(out_path) if out_path is not None else cached
    if use_cache and cached.exists():
        if _verified_cache_entry(cached, n_jets, seed):
            if target != cached:
                _copy_atomic(cached, target)
            return target
        _discard(cached)  # damaged: regenerated below

    _require_generators()
    tasks = _tasks(n_jets, classes, seed, mpi)
    workers = max(1, min(int(workers), len(tasks)))
    desc = f"Pythia8 {'/'.join(classes)} (MPI {'on' if mpi else 'off'}, {workers} workers)"
    start = time.perf_counter()
    results = _run_all(tasks, workers, progress, desc)
    ordered = [results[t.key] for t in tasks]
    constituents = np.concatenate([c for c, _ in ordered])
    jets = np.concatenate([j for _, j in ordered])
    perm = np.random.default_rng(seed).permutation(n_jets)
    attrs = {"generator": "allo_ext.data.generate", "generator_version": GENERATOR_VERSION,
             "n_jets": n_jets, "classes": ",".join(classes), "seed": int(seed),
             "mpi": bool(mpi), "jet_columns_filled": "j_pt,j_eta,j_mass,j_multiplicity,labels",
             **{f"{k}_version": v for k, v in _installed_versions().items()}}
    final = cached if use_cache else target
    final.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the destination, then rename: a crash never leaves a truncated cache entry.
    fd, tmp = tempfile.mkstemp(suffix=".h5.part", dir=final.parent)
    os.close(fd)
    try:
        write(tmp, constituents[perm], jets[perm], attrs=attrs)
        digest = _sha256_file(Path(tmp))
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if use_cache:
        _write_digest(final, digest)
    if target != final:
        _copy_atomic(final, target)
    if progress:
        from rich.console import Console
        Console(stderr=True).print(
            f"{n_jets} jets in {time.perf_counter() - start:.1f} s -> {target}")
    return target
