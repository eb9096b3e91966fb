"""The compiler's static estimate of a model: cycles and DSPs of the latency schedule.

``precision`` is what ``from_pytorch(precision=)`` takes (a type such as ``"ap_fixed<16,6>"`` or a
per-layer dict); the estimate then costs the fixed-point operations (``passes.estimate.costs``:
a DSP per product up to 18 bits, one-cycle adds) instead of float32's.
"""
from __future__ import annotations

import inspect

import torch


def fixed_point_available() -> bool:
    from ..frontend.compile import trace

    return "precision" in inspect.signature(trace).parameters


def hardware_cost(model: torch.nn.Module, n_particles: int, n_features: int,
                  precision=None, schedule: str = "latency") -> dict:
    """``{"cycles", "dsp", "lut", "ff", "bram", "precision"}`` of one jet (batch 1) through the
    HLS build of ``model`` under the ``schedule`` profile (the model is traced in eval mode)."""
    from ..frontend.compile import trace
    from ..kernels import apply_schedules
    from ..passes.estimate import estimate

    kwargs = {}
    if precision not in (None, "float32"):
        if not fixed_point_available():
            raise ValueError(
                f"precision {precision!r} needs the fixed-point frontend (from_pytorch(..., precision=)), "
                "which this allo_ext does not have yet; use precision float32")
        kwargs["precision"] = precision
    was = model.training
    model.eval()
    try:
        s = trace(model, torch.zeros(1, n_particles, n_features), target="vhls", **kwargs)
    finally:
        model.train(was)
    apply_schedules(s, schedule)
    e = estimate(s)
    return {"cycles": int(e.cycles), "dsp": int(e.dsp), "lut": int(e.lut), "ff": int(e.ff),
            "bram": int(e.bram), "precision": precision or "float32"}
