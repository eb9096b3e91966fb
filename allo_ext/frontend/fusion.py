"""Graph rewrites on the exported FX graph, before lowering.

Both rewrites keep the graph a valid torch program, so they compose with any lowering.

``transpose(1, 2) -> batch_norm -> transpose(1, 2)`` is how a (B, L, C) token tensor is batch-
normalised over its channels; JetFormer does it for every norm. Lowered op by op that is two
full copies around a cheap kernel, so the three nodes become one ``allo_ext::batch_norm_channels_last``
call (a custom op whose eager implementation is exactly the original three ops).
"""
from __future__ import annotations

import numpy as np
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


# ---------------------------------------------------------------------------- BatchNorm folding
def _bn_params(node, consts):
    """(scale, shift) of an eval BatchNorm node whose parameters are all constants, else None:
    ``bn(x) = x * scale + shift`` per channel."""
    if node.op != "call_function":
        return None
    if node.target == torch.ops.allo_ext.batch_norm_channels_last.default:
        x, w, b, mean, var, eps = node.args
    elif node.target == aten.batch_norm.default and node.args[0].meta["val"].dim() == 2 and not node.args[5]:
        x, w, b, mean, var, _training, _momentum, eps = node.args[:8]
    else:
        return None
    names = [a.name if isinstance(a, torch.fx.Node) else None for a in (w, b, mean, var)]
    if any(n is not None and n not in consts for n in names) or names[2] is None or names[3] is None:
        return None
    c = consts[names[2]].shape[0]
    w = consts[names[0]].astype(np.float64) if names[0] else np.ones(c)
    b = consts[names[1]].astype(np.float64) if names[1] else np.zeros(c)
    scale = w / np.sqrt(consts[names[3]].astype(np.float64) + eps)
    return scale, b - consts[names[2]].astype(np.float64) * scale


def _const_linear(node, consts):
    """(weight, bias or None) of a linear whose weight and bias are constants, else None."""
    if node.op != "call_function" or node.target != aten.linear.default:
        return None
    w = node.args[1]
    b = node.args[2] if len(node.args) > 2 else None
    if not isinstance(w, torch.fx.Node) or w.name not in consts:
        return None
    if b is not None and (not isinstance(b, torch.fx.Node) or b.name not in consts):
        return None
    return consts[w.name].astype(np.float64), None if b is None else consts[b.name].astype(np.float64)


def _new_const(graph, consts, base: str, value: np.ndarray):
    name = base
    k = 1
    while name in consts:
        name = f"{base}_{k}"
        k += 1
    first = next(iter(graph.nodes))
    with graph.inserting_before(first):
        node = graph.placeholder(name)
    node.meta["val"] = torch.from_numpy(value)
    consts[node.name] = value
    return node


def fold_batchnorm_into_linear(graph: torch.fx.Graph, consts: dict) -> int:
    """Fold eval BatchNorms with constant statistics into neighbouring linears with constant weights.

    - ``linear -> bn`` (the linear's only user is the norm): ``W' = scale[:, None] * W``,
      ``b' = scale * b + shift``; the norm disappears.
    - ``bn -> linear, linear, ...`` (every user of the norm is such a linear, e.g. JetFormer's
      q/k/v): ``W' = W * scale[None, :]``, ``b' = W @ shift + b``.

    A norm costs a full pass over its tensor on the CPU and a kernel with its own latency in
    hardware; folded, it costs nothing. Folding is done in float64 and rounded once, so results
    move by float32 rounding only. ``consts`` (placeholder name -> array) gains the new weights.
    """
    count = 0
    for bn in list(graph.nodes):
        params = _bn_params(bn, consts)
        if params is None:
            continue
        scale, shift = params
        src = bn.args[0]
        lin = _const_linear(src, consts) if isinstance(src, torch.fx.Node) else None
        if lin is not None and len(src.users) == 1:
            w, b = lin
            b = np.zeros(w.shape[0]) if b is None else b
            wn = _new_const(graph, consts, f"{src.name}_bn_w", (scale[:, None] * w).astype(np.float32))
            bnode = _new_const(graph, consts, f"{src.name}_bn_b", (scale * b + shift).astype(np.float32))
            src.args = (src.args[0], wn, bnode)
            bn.replace_all_uses_with(src)
            graph.erase_node(bn)
            count += 1
            continue
        users = list(bn.users)
        lins = [_const_linear(u, consts) for u in users]
        if users and all(lin is not None for lin in lins):
            for u, (w, b) in zip(users, lins):
                b = np.zeros(w.shape[0]) if b is None else b
                wn = _new_const(graph, consts, f"{u.name}_bn_w", (w * scale[None, :]).astype(np.float32))
                bnode = _new_const(graph, consts, f"{u.name}_bn_b", (w @ shift + b).astype(np.float32))
                u.args = (bn.args[0], wn, bnode)
            graph.erase_node(bn)
            count += 1
    return count


# ---------------------------------------------------------------------------- attention heads (CPU)
@torch.library.custom_op("allo_ext::attention_heads_lanes", mutates_args=())
def attention_heads_lanes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                          scale: float) -> torch.Tensor:
    b, lq, c = q.shape
    split = [t.view(b, t.shape[1], heads, c // heads).transpose(1, 2) for t in (q, k, v)]
    p = torch.softmax(split[0] @ split[1].transpose(-2, -1) * scale, dim=-1)
    return (p @ split[2]).transpose(1, 2).reshape(b, lq, c)


@attention_heads_lanes.register_fake
def _(q, k, v, heads, scale):
    return torch.empty_like(q)


_VIEWS = (aten.view.default, aten.reshape.default, aten._unsafe_view.default)
_SOFTMAX = (aten.softmax.int, aten._softmax.default)


def _call(node, targets) -> bool:
    return isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target in targets


def _shape_of(node) -> tuple | None:
    val = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return tuple(int(d) for d in val.shape) if val is not None and hasattr(val, "shape") else None


def _swaps(node, a: int, b: int) -> bool:
    """``node`` is transpose(x, a, b) (either order, dims normalised to x's rank)."""
    if not _call(node, (aten.transpose.int,)):
        return False
    rank = len(_shape_of(node) or ())
    return rank > 0 and sorted(d % rank for d in node.args[1:3]) == sorted((a % rank, b % rank))


def _heads_of(node, heads: int | None):
    """(x, H) for node = view(x: (B, L, C), [B, L, H, C/H]).transpose(1, 2), else None."""
    if not _swaps(node, 1, 2):
        return None
    view = node.args[0]
    if not _call(view, _VIEWS) or len(view.users) != 1:
        return None
    x, vs = view.args[0], _shape_of(view)
    xs = _shape_of(x)
    if xs is None or vs is None or len(xs) != 3 or len(vs) != 4 or vs[:2] != xs[:2] or vs[2] * vs[3] != xs[2]:
        return None
    if heads is not None and vs[2] != heads:
        return None
    return x, vs[2]


def fuse_attention_heads(graph: torch.fx.Graph, lanes: int = 8) -> int:
    """The CPU's attention rewrite: ``q, k, v`` of shape (B, L, C) split into heads
    (``view(B, L, H, D).transpose(1, 2)``), ``softmax(q @ k^T [/ c | * c]) @ v`` and merged back
    (``transpose(1, 2)`` and a view to (B, L, C)) become one ``allo_ext::attention_heads_lanes``
    node (its eager form is the same ops), lowered to ``attention_lanes``: one vectorised kernel in
    place of five transposes, two bmm, a scale and a softmax. Only where B is a multiple of
    ``lanes`` and every intermediate has no other user (a model returning its attention weights
    keeps the unfused chain). Rewrites in place; returns how many were fused."""
    count = 0
    for out in list(graph.nodes):
        if not _call(out, _VIEWS):
            continue
        ot = out.args[0]
        if not _swaps(ot, 1, 2) or len(ot.users) != 1:
            continue
        o = ot.args[0]
        if not _call(o, (aten.matmul.default,)) or len(o.users) != 1:
            continue
        p, vh = o.args[:2]
        if not _call(p, _SOFTMAX) or len(p.users) != 1 or p.args[1] % 4 != 3:
            continue
        s, scale = p.args[0], 1.0
        chain = [out, ot, o, p]
        if _call(s, (aten.div.Tensor, aten.div.Scalar, aten.mul.Tensor, aten.mul.Scalar)) \
                and isinstance(s.args[1], (int, float)) and len(s.users) == 1:
            c = float(s.args[1])
            if c == 0.0:
                continue
            scale = 1.0 / c if s.target in (aten.div.Tensor, aten.div.Scalar) else c
            chain.append(s)
            s = s.args[0]
        if not _call(s, (aten.matmul.default,)) or len(s.users) != 1:
            continue
        qh, kt = s.args[:2]
        chain.append(s)
        if not _swaps(kt, -2, -1) or len(kt.users) != 1:
            continue
        q, k, v = _heads_of(qh, None), _heads_of(kt.args[0], None), _heads_of(vh, None)
        if q is None or k is None or v is None or not q[1] == k[1] == v[1]:
            continue
        if any(len(n.users) != 1 for n in (qh, kt.args[0], vh)):
            continue
        qs, ks, vs, outs = _shape_of(q[0]), _shape_of(k[0]), _shape_of(v[0]), _shape_of(out)
        if outs != qs or ks != vs or qs[0] != ks[0] or qs[2] != ks[2] or qs[0] % lanes:
            continue
        if any(n.meta["val"].dtype != torch.float32 for n in (q[0], k[0], v[0])):
            continue
        with graph.inserting_before(out):
            fused = graph.call_function(torch.ops.allo_ext.attention_heads_lanes.default,
                                        (q[0], k[0], v[0], q[1], float(scale)))
        fused.meta = dict(out.meta)
        out.replace_all_uses_with(fused)
        views = [n.args[0] for n in (qh, kt.args[0], vh)]
        for n in chain + [kt, kt.args[0], qh, vh] + views:
            if not n.users:
                graph.erase_node(n)
        count += 1
    return count
