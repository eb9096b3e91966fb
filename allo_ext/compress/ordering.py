"""Particle orderings for the input, and fixed (physics-motivated) Linformer projections.

Orderings act on the particles kept per jet (the first N of the pT-sorted file), real particles
first and zero padding last in every ordering:

- ``pt``: decreasing pT (the files' own order; the default);
- ``kt``: decreasing kT distance to the jet axis, ``pT_rel * dR`` with
  ``dR = sqrt(eta_rel^2 + phi_rel^2)``. This is the kT algorithm's beam distance measured from
  the jet axis: hard wide-angle particles (the ones kT clustering merges last) come first;
- ``random``: a fresh random order of the real particles of every jet (seeded).

Fixed projections (``E = F``, shape (k, L) with L = N + 1 tokens, token 0 the class token), set
on a LinformerJetFormer with :func:`set_fixed_projections`:

- ``leading``: rows 0..k-2 pick the class token and the k-2 hardest particles one to one; the
  last row averages all the other particles (soft radiation is pooled, hard prongs kept);
- ``pool``: the class token alone, then k-1 contiguous blocks of particles averaged (coarse-
  graining in pT order).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data.normalise import padding_mask

ORDERINGS = ("pt", "kt", "random")
PROJECTIONS = ("learned", "leading", "pool")


def _keys(x: np.ndarray, features: Sequence[str], ordering: str, seed: int) -> np.ndarray:
    if ordering == "random":
        return np.random.default_rng(seed).random(x.shape[:2])
    need = ("pT_rel", "eta_rel", "phi_rel")
    missing = [f for f in need if f not in features]
    if missing:
        raise ValueError(f"ordering 'kt' needs the features {need}; {missing} not loaded")
    pt, eta, phi = (x[..., list(features).index(f)] for f in need)
    return pt * np.sqrt(eta**2 + phi**2)


def order_particles(x: np.ndarray, features: Sequence[str], ordering: str = "pt",
                    seed: int = 0) -> np.ndarray:
    """``x`` (B, N, F) raw (unnormalised) features in pT order -> the same jets reordered."""
    if ordering == "pt":
        return x
    if ordering not in ORDERINGS:
        raise ValueError(f"unknown particle ordering {ordering!r}; choose one of {', '.join(ORDERINGS)}")
    key = _keys(x, features, ordering, seed).astype(np.float64)
    # Padding sorts last: lexsort's last key is primary (real first), then decreasing key.
    real = padding_mask(x)
    idx = np.lexsort((-key, ~real), axis=-1)
    return np.take_along_axis(x, idx[..., None], axis=1)


def fixed_projection(kind: str, n_tokens: int, k: int) -> torch.Tensor:
    """The (k, n_tokens) matrix of a fixed projection (see the module doc)."""
    if kind not in PROJECTIONS[1:]:
        raise ValueError(f"unknown fixed projection {kind!r}; choose one of {', '.join(PROJECTIONS[1:])}")
    if not 2 <= k <= n_tokens:
        raise ValueError(f"projection size k={k} must be in [2, {n_tokens}] for {n_tokens} tokens")
    p = torch.zeros(k, n_tokens)
    p[0, 0] = 1.0  # the class token keeps its own row
    if kind == "leading":
        for r in range(1, k - 1):
            p[r, r] = 1.0
        rest = n_tokens - (k - 1)
        p[k - 1, k - 1:] = 1.0 / rest
    else:
        blocks = np.array_split(np.arange(1, n_tokens), k - 1)
        for r, cols in enumerate(blocks, 1):
            p[r, cols] = 1.0 / len(cols)
    return p


def set_fixed_projections(model: torch.nn.Module, kind: str) -> int:
    """Set every Linformer attention's E and F to ``fixed_projection(kind)`` and freeze them;
    returns the number of attention blocks changed. ``learned`` leaves the model alone."""
    from ..models.layers import LinformerSelfAttention

    if kind == "learned":
        return 0
    n = 0
    for m in model.modules():
        if isinstance(m, LinformerSelfAttention):
            p = fixed_projection(kind, m.seq_len, m.k_proj_len)
            for proj in (m.e_proj, m.f_proj):
                with torch.no_grad():
                    proj.weight.copy_(p)
                proj.weight.requires_grad_(False)
            n += 1
    if n == 0:
        raise ValueError(f"fixed projections need a LinformerJetFormer, got {type(model).__name__}")
    return n
