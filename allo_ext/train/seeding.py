"""Seeds, RNG state capture/restore and CPU thread settings for reproducible training."""
from __future__ import annotations

import contextlib
import os
import random
from typing import Any, Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch's global RNG."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state a training epoch may consume, in types ``torch.load(weights_only=True)``
    accepts (numpy's key array becomes a list of ints)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    py = state["python"]
    # weights_only unpickling returns lists where tuples were saved; random needs tuples.
    random.setstate((py[0], tuple(py[1]), py[2]))
    if loader_generator is not None:
        if "loader" not in state:
            raise KeyError("checkpoint RNG state has no 'loader' generator state; it cannot resume")
        loader_generator.set_state(state["loader"])


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Half the usable cores: small models gain little from intra-op threads, and threads that
    spin-wait for a core held by another process slow training down several times."""
    return max(1, available_cores() // 2)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run with ``n`` intra-op threads, then restore the previous count.

    Inter-op threads are left alone: torch allows setting them only once per process.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
