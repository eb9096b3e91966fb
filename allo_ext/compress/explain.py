"""Interpretability: per-head attention matrices and class-token embeddings of a trained model.

- ``attention_by_class``: the attention probabilities of every block and head, averaged over the
  jets of each true class: (blocks, classes, heads, L, L_k), token 0 the class token;
- ``class_embeddings``: the class token's output of the last block (the input of the head's
  norm), one C-vector per jet;
- ``plot_attention`` / ``plot_embeddings``: heat-maps (classes x heads per block) and a 2-D PCA
  of the embeddings coloured by class, as PNGs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..train.inputs import JET_CLASSES


@torch.no_grad()
def attention_by_class(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, n_classes: int = 5,
                       batch_size: int = 1024) -> np.ndarray:
    if not hasattr(model, "attention_maps"):
        raise TypeError(f"{type(model).__name__} has no attention maps; explain takes JetFormer-style models")
    model.eval()
    sums = counts = None
    for i in range(0, len(x), batch_size):
        xb = torch.as_tensor(np.ascontiguousarray(x[i:i + batch_size]))
        yb = np.asarray(y[i:i + batch_size])
        maps = torch.stack(model.attention_maps(xb), dim=1).numpy()  # (B, blocks, H, L, Lk)
        if sums is None:
            sums = np.zeros((maps.shape[1], n_classes) + maps.shape[2:])
            counts = np.zeros(n_classes)
        for c in range(n_classes):
            sel = yb == c
            if sel.any():
                sums[:, c] += maps[sel].sum(axis=0)
                counts[c] += sel.sum()
    if sums is None:
        raise ValueError("explain: no jets given")
    with np.errstate(invalid="ignore"):
        return sums / counts[None, :, None, None, None]


@torch.no_grad()
def class_embeddings(model: torch.nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    if not hasattr(model, "head_norm"):
        raise TypeError(f"{type(model).__name__} has no class-token head (head_norm)")
    model.eval()
    captured = []
    hook = model.head_norm.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].clone()))
    try:
        for i in range(0, len(x), batch_size):
            model(torch.as_tensor(np.ascontiguousarray(x[i:i + batch_size])))
    finally:
        hook.remove()
    return torch.cat(captured).numpy()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_attention(maps: np.ndarray, out_dir: str | Path, class_names=JET_CLASSES,
                   prefix: str = "attention") -> list[Path]:
    """One PNG per block: rows are classes, columns heads; axes are query and key tokens."""
    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    n_blocks, n_classes, n_heads = maps.shape[:3]
    for b in range(n_blocks):
        fig, axes = plt.subplots(n_classes, n_heads, figsize=(2.2 * n_heads + 1, 2.0 * n_classes),
                                 squeeze=False)
        vmin, vmax = np.nanmin(maps[b]), np.nanmax(maps[b])  # contrast: uniform attention is 1/L
        for c in range(n_classes):
            for h in range(n_heads):
                ax = axes[c, h]
                im = ax.imshow(maps[b, c, h], vmin=vmin, vmax=vmax, cmap="viridis")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_title(f"head {h}", fontsize=9)
                if h == 0:
                    ax.set_ylabel(class_names[c] if c < len(class_names) else str(c))
        fig.suptitle(f"block {b}: mean attention by class (token 0 = class token; rows query, cols key)",
                     fontsize=9)
        fig.colorbar(im, ax=axes, shrink=0.6)
        p = out_dir / f"{prefix}_block{b}.png"
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def plot_embeddings(emb: np.ndarray, y: np.ndarray, path: str | Path, class_names=JET_CLASSES) -> Path:
    from sklearn.decomposition import PCA

    plt = _plt()
    pca = PCA(n_components=2, random_state=0)
    z = pca.fit_transform(emb)
    fig, ax = plt.subplots(figsize=(6, 5))
    for c in np.unique(y):
        sel = y == c
        ax.scatter(z[sel, 0], z[sel, 1], s=4, alpha=0.5,
                   label=class_names[c] if c < len(class_names) else str(c))
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%} of variance)")
    ax.set_title("class-token embeddings (last block), PCA")
    ax.legend(markerscale=4)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def explain(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, out_dir: str | Path,
            class_names=JET_CLASSES) -> dict:
    """Write the heat-maps and the PCA plot; returns the file paths and per-class summaries."""
    out_dir = Path(out_dir)
    maps = attention_by_class(model, x, y, n_classes=len(class_names))
    paths = plot_attention(maps, out_dir, class_names)
    emb = class_embeddings(model, x)
    pca = plot_embeddings(emb, np.asarray(y), out_dir / "embeddings_pca.png", class_names)
    np.savez_compressed(out_dir / "explain.npz", attention=maps, embeddings=emb, labels=np.asarray(y))
    # How much the class token attends to itself versus to particles, per block and class.
    cls_self = maps[:, :, :, 0, 0].mean(axis=2)
    return {"attention_pngs": [str(p) for p in paths], "embeddings_png": str(pca),
            "arrays": str(out_dir / "explain.npz"), "n_jets": int(len(y)),
            "class_token_self_attention": {class_names[c]: [float(v) for v in cls_self[:, c]]
                                           for c in range(len(class_names))}}
