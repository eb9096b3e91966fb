"""Refuse models whose output for one jet depends on the other jets of the batch.

A compiled model runs the batch in chunks (256 jets on the CPU, one jet in the C simulation), so
an op that reduces, normalises, sorts or contracts over the batch would give numbers that depend
on the chunk a jet lands in. To find such ops the model is exported once more with a symbolic
batch size: every tensor dimension that carries the batch then has a size that mentions the batch
symbol (``s0``, ``4*s0`` after a reshape, ...), and an op that reduces over such a dimension mixes
jets. The rules below say, per op, which dimensions of which operand it reduces over.
"""
from __future__ import annotations

import re
import string
import warnings

import torch

from .errors import BatchMixingError, user_frame


def _carries_batch(d) -> bool:
    return isinstance(d, torch.SymInt) and bool(d.node.expr.free_symbols)


def _val(a):
    return a.meta.get("val") if isinstance(a, torch.fx.Node) else None


def _dims(dims, rank):
    if dims is None or dims == [] or dims == ():
        return list(range(rank))
    if isinstance(dims, int):
        dims = [dims]
    return [d % rank for d in dims if rank]


def _arg(node, i, name, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _reduce(node):  # op(x, dim(s), ...)
    v = _val(node.args[0])
    return [(0, _dims(_arg(node, 1, "dim"), v.dim()))]


def _last(node):  # reduces over x's last dim (softmax, linear, layer_norm's trailing dims...)
    return [(0, [_val(node.args[0]).dim() - 1])]


def _softmax(node):
    v = _val(node.args[0])
    return [(0, _dims(node.args[1], v.dim()))]


def _layer_norm(node):
    v = _val(node.args[0])
    n = len(node.args[1])
    return [(0, list(range(v.dim() - n, v.dim())))]


def _mm(node):  # a @ b: a's last dim with b's second-to-last
    a, b = _val(node.args[0]), _val(node.args[1])
    out = [(0, [a.dim() - 1])]
    if b.dim() >= 2:
        out.append((1, [b.dim() - 2]))
    return out


def _baddbmm(node):
    return [(1, [2]), (2, [1])]


def _einsum(node):
    eq = node.args[0].replace(" ", "")
    ins, out = eq.split("->") if "->" in eq else (eq, None)
    terms = ins.split(",")
    if out is None:  # implicit form: letters that appear once, sorted
        out = "".join(sorted(c for c in set(ins) if c in string.ascii_letters and ins.count(c) == 1))
    res = []
    for k, t in enumerate(terms):
        res.append(((1, k), [i for i, c in enumerate(t) if c not in out]))
    return res


def _conv(node):  # convolution mixes channels and positions, never the batch of dim 0
    v = _val(node.args[0])
    return [(0, list(range(1, v.dim())))]


def _sdpa(node):
    q = _val(node.args[0])
    return [(0, [q.dim() - 1]), (1, [q.dim() - 2, q.dim() - 1])]


def _all_dims(node):
    return [(0, list(range(_val(node.args[0]).dim())))]


RULES = {
    "aten.sum": _reduce, "aten.mean": _reduce, "aten.amax": _reduce, "aten.amin": _reduce,
    "aten.prod": _reduce, "aten.var": _reduce, "aten.std": _reduce, "aten.var_mean": _reduce,
    "aten.std_mean": _reduce, "aten.logsumexp": _reduce, "aten.norm": lambda n: [(0, _dims(_arg(n, 2, "dim"),
                                                                                            _val(n.args[0]).dim()))],
    "aten.linalg_vector_norm": lambda n: [(0, _dims(_arg(n, 2, "dim"), _val(n.args[0]).dim()))],
    "aten.max": _reduce, "aten.min": _reduce, "aten.argmax": _reduce, "aten.argmin": _reduce,
    "aten.any": _reduce, "aten.all": _reduce, "aten.cumsum": _reduce, "aten.cumprod": _reduce,
    "aten.sort": lambda n: [(0, _dims(_arg(n, 1, "dim", -1) if not isinstance(_arg(n, 1, "dim", -1), bool)
                                      else n.kwargs.get("dim", -1), _val(n.args[0]).dim()))],
    "aten.argsort": lambda n: [(0, _dims(_arg(n, 1, "dim", -1), _val(n.args[0]).dim()))], "aten.median": _reduce,
    "aten.topk": lambda n: [(0, _dims(_arg(n, 2, "dim", -1), _val(n.args[0]).dim()))],
    "aten.softmax": _softmax, "aten._softmax": _softmax, "aten.log_softmax": _softmax,
    "aten._log_softmax": _softmax,
    "aten.layer_norm": _layer_norm, "aten.native_layer_norm": _layer_norm,
    "aten.linear": _last, "aten.matmul": _mm, "aten.mm": _mm, "aten.bmm": _mm, "aten.addmm":
        lambda n: [(1, [1]), (2, [0])], "aten.baddbmm": _baddbmm, "aten.einsum": _einsum,
    "aten.conv1d": _conv, "aten.conv2d": _conv, "aten.convolution": _conv,
    "aten.scaled_dot_product_attention": _sdpa,
    "aten.batch_norm": lambda n: [(0, [0])] if _arg(n, 5, "training") else [],
    "aten.group_norm": lambda n: [(0, list(range(1, _val(n.args[0]).dim())))],
    "aten.instance_norm": lambda n: [(0, list(range(2, _val(n.args[0]).dim())))],
}


def _operand(node, ref):
    if isinstance(ref, tuple):  # (arg position of a list, index in it), e.g. einsum's operands
        return node.args[ref[0]][ref[1]]
    return node.args[ref]


def find_batch_mixing(graph: torch.fx.Graph):
    """(node, operand shape, dim) of the first op that reduces over a dimension carrying the batch, or None."""
    from .importer import op_name

    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = op_name(node.target)
        rule = RULES.get(name.rsplit(".", 1)[0])
        if rule is None:
            continue
        try:
            uses = rule(node)
        except (AttributeError, IndexError, TypeError, ValueError):
            continue
        for ref, dims in uses:
            v = _val(_operand(node, ref))
            if v is None:
                continue
            for d in dims:
                if d < v.dim() and _carries_batch(v.shape[d]):
                    return node, name, tuple(v.shape), d
    return None


def check_batch_independence(model: torch.nn.Module, examples: tuple) -> None:
    """Raise BatchMixingError naming the op, the dim and the model's source line if ``model`` mixes
    the jets of a batch. Warns (and checks nothing) if the model cannot be exported with a
    symbolic batch size."""
    from .decompose import inline_higher_order

    from .compile import _batch_of

    # 3 jets: sizes 0 and 1 would be specialised by the export, and a small batch traces fast.
    examples = tuple(_batch_of(e, 3) for e in examples)
    batch = torch.export.Dim("batch", min=2)
    dyn = tuple({0: batch} for _ in examples)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(model, tuple(examples), dynamic_shapes=dyn)
    except Exception as e:  # noqa: BLE001 (any export failure: report it, never hide it)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        warnings.warn(f"could not export {type(model).__name__} with a symbolic batch size, so whether an op "
                      f"mixes the jets of a batch was not checked ({first[:200]})", stacklevel=4)
        return
    ep = inline_higher_order(ep)
    hit = find_batch_mixing(ep.graph)
    if hit is None:
        return
    node, name, shape, dim = hit
    where = user_frame(node)
    shown = tuple(re.sub(r"\bs\d+\b", "B", str(d)) for d in shape)
    raise BatchMixingError(
        f"op '{name}' reduces over dim {dim} of a tensor of shape ({', '.join(shown)}), and that dim carries the "
        f"batch (size {shown[dim]}, B being the batch size): each jet's result would depend on the other "
        "jets of its chunk (256 on the CPU, 1 in the C simulation)"
        + (f"\n  at {where}" if where else "")
        + "\n  reduce over the particle or feature dims instead, or compute the batch statistic outside the model")
