"""Parameter and FLOP counts with the JetFormer paper's (fvcore) conventions."""
from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

aten = torch.ops.aten


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# Custom formulas return the final count in our convention (they are not halved below).
# Shapes arrive instead of tensors (FlopCounterMode's shape_wrapper); None stays None.
def _batch_norm_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    # fvcore, eval mode: one multiply and one add per element with affine, else one op.
    return _numel(x_shape) * (2 if w_shape is not None else 1)


def _layer_norm_flops(x_shape, normalized_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    # fvcore's "rough estimate" for LayerNorm: 5 per element with affine, 4 without.
    return _numel(x_shape) * (5 if w_shape is not None else 4)


def _sdpa_cpu_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    # Q K^T and A V, one MAC each: B*H*Lq*Lk*D + B*H*Lq*Lk*Dv.
    *bh, lq, d = q_shape
    lk, dv = k_shape[-2], v_shape[-1]
    return _numel(bh) * lq * lk * (d + dv)


_CUSTOM = {
    aten.native_batch_norm: _batch_norm_flops,
    aten._native_batch_norm_legit: _batch_norm_flops,
    aten._native_batch_norm_legit_no_training: _batch_norm_flops,
    aten.native_layer_norm: _layer_norm_flops,
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops,
}

# Ops that do multiply-accumulate or normalisation work. If one of these reaches the dispatcher
# without a formula, the count would silently be too low, so count() raises instead.
_COSTLY_OP = re.compile(
    r"(^|_)[a-z]*(mm|mv)($|_)|dot|matmul|einsum|conv|linear|norm|attention|lstm|gru|rnn"
)


class _OpRecorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[Any] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(func.overloadpacket)
        return func(*args, **(kwargs or {}))


def count(model: nn.Module, n_particles: int, n_features: int) -> dict[str, Any]:
    """Trainable parameters and FLOPs per jet (batch 1) of ``model`` on (1, N, F) input.

    Conventions (those of fvcore, which the JetFormer paper used):

    - one FLOP per multiply-accumulate in linear layers and matmuls, including the two
      attention products Q K^T and A V; biases are not counted;
    - eval BatchNorm: 2 per element (1 without affine); LayerNorm: 5 per element (4 without
      affine), fvcore's estimate for mean, variance, normalise and affine;
    - nothing for softmax, log_softmax, add, ReLU/SiLU, cat, view, slice, mean/sum pooling or
      BitLinear's weight and activation quantisers (a BitLinear counts as a linear).

    FLOPs are found by running the model in eval mode on a real batch-1 input under
    ``torch.utils.flop_counter.FlopCounterMode`` (which counts 2 per MAC; we halve), with extra
    formulas for norms. Any op that looks costly but has no formula raises
    NotImplementedError rather than being skipped. Training flags are restored afterwards.

    Returns a dict with ``params``, ``flops``, ``paper_params`` and ``flops_by_op`` (op name ->
    FLOPs).

    ``paper_params``: the JetFormer paper's parameter counts are higher than ours by
    2 (N + 1)^2 per attention block. The reference code creates a ``BatchNorm1d((N + 1)^2)``
    (sized for a flattened L x L attention map) in every attention block and never calls it;
    its weight and bias are the difference. Our models carry no dead parameters, so
    ``paper_params = params + 2 (N + 1)^2 x (number of full-attention blocks)`` for JetFormer
    and BitJetFormer; for Linformer (L x k maps) and the baselines it equals ``params``.

    Exactness: for C >= 64 the paper's FLOPs differ from ours by a few units because fvcore
    counts einsum through ``numpy.einsum_path``, whose FLOP figure is printed to 4 significant
    figures (e.g. 10,368 -> 1.037e4, i.e. 5,185 MACs instead of 5,184 per attention product).
    So 3 blocks, C = 64, 8 particles x 3 features is 931,654 in the paper and 931,648 here
    (6 einsums, +1 each). We count exactly.
    """
    try:
        param = next(model.parameters())
        dtype, device = param.dtype, param.device
    except StopIteration:
        dtype, device = torch.float32, torch.device("cpu")
    x = torch.zeros(1, n_particles, n_features, dtype=dtype, device=device)

    modes = {m: m.training for m in model.modules()}
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=_CUSTOM)
    recorder = _OpRecorder()
    try:
        with counter, recorder:
            model(x)
    finally:
        for m, training in modes.items():
            m.training = training

    known = set(flop_registry) | set(_CUSTOM)
    missing = sorted(str(op) for op in recorder.seen - known if _COSTLY_OP.search(op.__name__))
    if missing:
        raise NotImplementedError(
            f"count() has no FLOP formula for {missing} reached by {type(model).__name__}; "
            "add one to _CUSTOM in allo_ext/models/counting.py"
        )

    by_op: dict[str, int] = {}
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        # torch's own formulas count 2 FLOPs per MAC; ours are already in final units.
        by_op[str(op)] = by_op.get(str(op), 0) + (flops if op in _CUSTOM else flops // 2)

    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    dead = sum(
        2 * (n_particles + 1) ** 2
        for m in model.modules()
        if getattr(m, "reference_dead_bn", False)
    )
    return {
        "params": params,
        "flops": sum(by_op.values()),
        "paper_params": params + dead,
        "flops_by_op": by_op,
    }
