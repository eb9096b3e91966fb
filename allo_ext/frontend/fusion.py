"""Graph rewrites on the exported FX graph, before lowering.

``transpose(1, 2) -> batch_norm -> transpose(1, 2)`` is how a (B, L, C) token tensor is batch-
normalised over its channels; JetFormer does it for every norm. Lowered op by op that is two
full copies around a cheap kernel, so the three nodes become one ``allo_ext::batch_norm_channels_last``
call (a custom op whose eager implementation is exactly the original three ops).
"""
from __future__ import annotations

import torch

aten = torch.ops.aten


@torch.library.custom_op("allo_ext::batch_norm_channels_last", mutates_args=())
def batch_norm_channels_last(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                             mean: torch.Tensor, var: torch.Tensor, eps: float) -> torch.Tensor:
    y = torch.nn.functional.batch_norm(x.transpose(1, 2), mean, var, weight, bias, False, 0.0, eps)
    return y.transpose(1, 2).contiguous()


@batch_norm_channels_last.register_fake
def _(x, weight, bias, mean, var, eps):
    return torch.empty_like(x)


def _is_transpose_12(node) -> bool:
    if node.op != "call_function" or node.target != aten.transpose.int:
        return False
    val = node.args[0].meta.get("val") if hasattr(node.args[0], "meta") else None
    if val is None or val.dim() != 3:
        return False
    dims = sorted(d % 3 for d in node.args[1:3])
    return dims == [1, 2]


def fuse_channels_last_batchnorm(graph: torch.fx.Graph) -> int:
    """Rewrite the pattern in place; returns how many were fused."""
    count = 0
    for bn in list(graph.nodes):
        if bn.op != "call_function" or bn.target != aten.batch_norm.default:
            continue
        t1 = bn.args[0]
        if not (isinstance(t1, torch.fx.Node) and _is_transpose_12(t1) and len(t1.users) == 1):
            continue
        users = list(bn.users)
        if len(users) != 1 or not _is_transpose_12(users[0]):
            continue
        t2 = users[0]
        _, w, b, mean, var, training, _momentum, eps = bn.args[:8]
        x = t1.args[0]
        if training:
            continue
        with graph.inserting_before(t2):
            fused = graph.call_function(torch.ops.allo_ext.batch_norm_channels_last.default,
                                        (x, w, b, mean, var, float(eps)))
        fused.meta = dict(t2.meta)
        t2.replace_all_uses_with(fused)
        for n in (t2, bn, t1):
            graph.erase_node(n)
        count += 1
    return count
