"""Outputs of a search: hypervolume history, Pareto-front plot, best-trials CSV, sampler comparison.

Hypervolume is measured on the feasible completed trials, in trial order, with every objective
turned into a loss scaled to [0, 1]: ``1 - accuracy`` against the reference ``1 - min_accuracy``,
and FLOPs (or cycles, DSPs) divided by a reference: for FLOPs the largest model of the search
space (the FLOPs of (C, H) do not depend on H), for the hardware metrics 1.1 x the largest value
seen. A trial below the accuracy threshold adds nothing, as the constraint says.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .hpo import HPOConfig, trial_rows


def flops_reference(cfg: HPOConfig, n_particles: int, n_features: int) -> float:
    from ..models import JetFormer, count

    dim = max(c for c, _ in cfg.search_space["dim_heads"])
    heads = min(h for c, h in cfg.search_space["dim_heads"] if c == dim)
    m = JetFormer.tiny(n_particles=n_particles, n_features=n_features,
                       n_blocks=max(cfg.search_space["n_blocks"]), dim=dim, n_heads=heads)
    return float(count(m, n_particles, n_features)["flops"])


def _losses(rows: list[dict], cfg: HPOConfig, refs: dict[str, float]) -> np.ndarray:
    cols = [np.array([1.0 - r["accuracy"] for r in rows])]
    for m in cfg.metric_names[1:]:
        cols.append(np.array([r[m] for r in rows], dtype=float) / refs[m])
    return np.stack(cols, axis=1) if rows else np.zeros((0, len(cfg.metric_names)))


def references(rows: list[dict], cfg: HPOConfig, n_particles: int, n_features: int) -> dict[str, float]:
    if cfg.objective == "flops":
        return {"flops": flops_reference(cfg, n_particles, n_features)}
    return {m: 1.1 * max([r[m] for r in rows] or [1]) for m in ("cycles", "dsp")}


def hypervolume_history(rows: list[dict], cfg: HPOConfig, refs: dict[str, float],
                        checkpoints: list[int] | None = None) -> dict[int, float]:
    """Hypervolume after the first n completed trials, for each n in ``checkpoints``
    (default: every trial)."""
    from optuna._hypervolume import compute_hypervolume

    rows = sorted(rows, key=lambda r: r["number"])
    loss = _losses(rows, cfg, refs)
    feasible = np.array([r["accuracy"] >= cfg.min_accuracy for r in rows], dtype=bool)
    ref = np.array([1.0 - cfg.min_accuracy] + [1.0] * (len(cfg.metric_names) - 1))
    out = {}
    for n in checkpoints or range(1, len(rows) + 1):
        if n > len(rows):
            continue
        pts = loss[:n][feasible[:n]]
        pts = pts[np.all(pts <= ref, axis=1)]
        out[n] = float(compute_hypervolume(pts, ref)) if len(pts) else 0.0
    return out


def unique_configs(rows: list[dict]) -> list[dict]:
    """The first trial of each configuration (samplers re-propose configurations; training is
    seeded, so repeats carry identical numbers)."""
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: r["number"]):
        key = (r.get("n_blocks"), r.get("dim"), r.get("n_heads"), r.get("dropout"))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def write_csv(rows: list[dict], path: str | Path, only_pareto: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = unique_configs([r for r in rows if r["pareto"] or not only_pareto])
    keep.sort(key=lambda r: (-r["accuracy"], r["flops"]))
    cols = ["number", "n_blocks", "dim", "n_heads", "dropout", "accuracy", "flops", "params",
            "cycles", "dsp", "epochs_run", "feasible", "pareto"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in keep:
            w.writerow(r)
    return path


def plot_pareto(rows: list[dict], cfg: HPOConfig, path: str | Path, title: str = "",
                paper: list[tuple[float, float, str]] | None = None) -> Path:
    """Accuracy against FLOPs (or cycles): all trials, infeasible greyed, the front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_name = "flops" if cfg.objective == "flops" else "cycles"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    feas = [r for r in rows if r["accuracy"] >= cfg.min_accuracy]
    infeas = [r for r in rows if r["accuracy"] < cfg.min_accuracy]
    ax.scatter([r[x_name] for r in infeas], [r["accuracy"] for r in infeas], c="lightgrey", s=18,
               label=f"infeasible (acc < {cfg.min_accuracy})")
    ax.scatter([r[x_name] for r in feas], [r["accuracy"] for r in feas], c="tab:blue", s=18, label="feasible")
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r[x_name])
    if front:
        ax.plot([r[x_name] for r in front], [r["accuracy"] for r in front], "o-", c="tab:red", label="Pareto front")
        for r in front:
            ax.annotate(f"({r['n_blocks']},{r['dim']},{r['n_heads']})", (r[x_name], r["accuracy"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
    for fx, acc, label in paper or []:
        ax.scatter([fx], [acc], marker="*", s=120, c="tab:green")
        ax.annotate(label, (fx, acc), fontsize=7, xytext=(3, -10), textcoords="offset points")
    ax.axhline(cfg.min_accuracy, ls=":", c="grey")
    ax.set_xscale("log")
    ax.set_xlabel(f"{x_name} per jet" + (" (count(), fvcore convention)" if x_name == "flops" else
                                         " (estimate(), latency schedule)"))
    ax.set_ylabel("validation accuracy")
    ax.set_title(title or f"HPO {cfg.study_name}: {cfg.sampler}, {len(rows)} trials")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_hypervolume(curves: dict[str, dict[int, float]], path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hv in curves.items():
        ax.plot(list(hv), list(hv.values()), label=name)
    ax.set_xlabel("completed trials")
    ax.set_ylabel("hypervolume (normalised objectives)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def study_rows(cfg: HPOConfig) -> list[dict]:
    import optuna

    from .hpo import make_storage

    try:
        study = optuna.load_study(study_name=cfg.study_name, storage=make_storage(cfg.storage))
    except KeyError as e:
        raise ValueError(f"no study {cfg.study_name!r} in {cfg.storage}") from e
    return trial_rows(study)
