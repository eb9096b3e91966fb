"""Refuse models whose output for one jet depends on the other jets of the batch.

A compiled model runs the batch in chunks (256 jets on the CPU, one jet in the C simulation), so
an op that reduces, normalises, sorts or contracts over the batch would give numbers that depend
on the chunk a jet lands in. To find such ops the model is exported once more with a symbolic
batch size: every tensor dimension that carries the batch then has a size that mentions the batch
symbol (``s0``, ``4*s0`` after a reshape, ...), and an op that reduces over such a dimension mixes
jets. The rules below say, per op, which dimensions of which operand it reduces over.

Picking rows is mixing too: after ``x[0]``, ``x[:1]``, ``index_select(x, 0, t)`` or ``x[:, idx[0]]``
every jet computes with the jet that lands at row 0 of its chunk, and the batch symbol is gone from
the shape, so no later reduction shows it. Any select, narrow/slice (other than the full range),
index, gather or scatter ALONG a dim carrying the batch is therefore refused, with one exception:
an index tensor that carries the batch itself (one set of indices per jet) and is computed from an
``arange`` over the batch, as in ParticleNet/DGCNN's kNN gather
(``x.reshape(B*P, C)[idx + arange(B)[:, None] * P]``) or ``x[arange(B), idx]``. Whether such
indices stay inside their own jet's rows depends on values, which a shape check cannot see.
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


_FULL_END = 2 ** 62  # torch writes an open slice end as 2**63 - 1


def _same_size(a, b) -> bool:
    a = _val(a) if isinstance(a, torch.fx.Node) else a
    if isinstance(a, torch.SymInt) and isinstance(b, torch.SymInt):
        return a.node.expr == b.node.expr
    return a == b


def _slice_is_full(node, first, size) -> bool:  # slice's (dim, start, end, step) from args[first]
    start, end, step = _arg(node, first + 1, "start"), _arg(node, first + 2, "end"), _arg(node, first + 3, "step", 1)
    return (start in (None, 0) and step in (None, 1)
            and (end is None or (isinstance(end, int) and end >= _FULL_END) or _same_size(end, size)))


def _from_batch_arange(index) -> bool:
    """Whether ``index`` is computed from an ``arange`` over the batch (``arange(B)[:, None] * P + idx``,
    ``x[arange(B), idx]``): that offsets each jet's indices into its own rows."""
    from .importer import op_name

    seen, todo = set(), [index]
    while todo and len(seen) < 200:  # the offset sits a few ops above the index, never far
        n = todo.pop()
        if not isinstance(n, torch.fx.Node) or n in seen or n.op != "call_function":
            continue
        seen.add(n)
        v = _val(n)
        if op_name(n.target).startswith("aten.arange") and isinstance(v, torch.Tensor) \
                and _carries_batch(v.shape[0]):
            return True
        for a in list(n.args) + list(n.kwargs.values()):
            todo.extend(a if isinstance(a, (list, tuple)) else [a])
    return False


def _per_jet_index(size, index) -> bool:
    """An index along a dim carrying the batch keeps the jets apart when it holds one set of indices
    per jet (its shape carries the batch) offset by an arange over the batch. A permutation of that
    arange (``x[arange(B).flip(0)]``) would pass too: telling those apart needs values, not shapes."""
    v = _val(index)
    return v is not None and any(_carries_batch(d) for d in v.shape) and _from_batch_arange(index)


def _picks(node, name):
    """(operand value, dim, verb) if ``node`` picks particular rows along a dim carrying the batch."""
    x = _val(node.args[0]) if node.args else None
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return None
    packet = name.rsplit(".", 1)[0]

    def along(d):
        return d % x.dim() if isinstance(d, int) else None

    if packet in ("aten.select", "aten.select_scatter", "aten.unbind"):
        d = along(_arg(node, 2 if packet == "aten.select_scatter" else 1, "dim", 0))
        return (x, d, "selects one row along") if d is not None and _carries_batch(x.shape[d]) else None
    if packet in ("aten.slice", "aten.slice_scatter", "aten.narrow", "aten.split_with_sizes", "aten.split"):
        if packet in ("aten.slice", "aten.slice_scatter"):  # slice_scatter(x, src, dim, start, end, step)
            first = 2 if packet == "aten.slice_scatter" else 1
            d = along(_arg(node, first, "dim", 0))
            full = d is not None and _slice_is_full(node, first, x.shape[d])
        elif packet == "aten.narrow":
            d = along(_arg(node, 1, "dim"))
            full = d is not None and _arg(node, 2, "start") == 0 and _same_size(_arg(node, 3, "length"), x.shape[d])
        else:
            d = along(_arg(node, 2, "dim", 0))
            full = False
        return (x, d, "slices part of") if d is not None and not full and _carries_batch(x.shape[d]) else None
    if packet in ("aten.index_select", "aten.gather", "aten.scatter", "aten.scatter_add", "aten.scatter_reduce",
                  "aten.index_add", "aten.index_copy", "aten.index_fill"):
        d = along(_arg(node, 1, "dim"))
        if d is None or not _carries_batch(x.shape[d]):
            return None
        index = _arg(node, 2, "index")
        return None if _per_jet_index(x.shape[d], index) else (x, d, "indexes along")
    if packet in ("aten.index", "aten.index_put", "aten._unsafe_index", "aten._unsafe_index_put"):
        for d, index in enumerate(_arg(node, 1, "indices") or []):
            if index is not None and d < x.dim() and _carries_batch(x.shape[d]) \
                    and not _per_jet_index(x.shape[d], index):
                return x, d, "indexes along"
    return None


def _operand(node, ref):
    if isinstance(ref, tuple):  # (arg position of a list, index in it), e.g. einsum's operands
        return node.args[ref[0]][ref[1]]
    return node.args[ref]


def find_batch_mixing(graph: torch.fx.Graph):
    """(node, op name, operand shape, dim, verb) of the first op that reduces over (or picks rows along) a
    dimension carrying the batch, or None."""
    from .importer import op_name

    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = op_name(node.target)
        try:
            picked = _picks(node, name)
        except (AttributeError, IndexError, TypeError, ValueError):
            picked = None
        if picked is not None:
            x, d, verb = picked
            return node, name, tuple(x.shape), d, verb
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
                    return node, name, tuple(v.shape), d, "reduces over"
    return None


def check_batch_independence(model: torch.nn.Module, examples: tuple) -> None:
    """Raise BatchMixingError naming the op, the dim and the model's source line if ``model`` mixes
    the jets of a batch. Warns (and checks nothing) if the model cannot be exported with a
    symbolic batch size."""
    from .decompose import inline_higher_order

    from .compile import _batch_of

    # 17 jets, at least 16: the export specialises sizes 0 and 1, also of slices such as x[2:] or
    # x[::2] (guard B - 2 != 1), which would end the check before it sees them. Fake tensors trace, so
    # the size costs no time.
    examples = tuple(_batch_of(e, 17) for e in examples)
    batch = torch.export.Dim("batch", min=16)
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
    node, name, shape, dim, verb = hit
    where = user_frame(node)
    shown = tuple(re.sub(r"\bs\d+\b", "B", str(d)) for d in shape)
    raise BatchMixingError(
        f"op '{name}' {verb} dim {dim} of a tensor of shape ({', '.join(shown)}), and that dim carries the "
        f"batch (size {shown[dim]}, B being the batch size): each jet's result would depend on the other "
        "jets of its chunk (256 on the CPU, 1 in the C simulation)"
        + ("" if verb == "reduces over" else
           ", as every jet would use the jets at those rows of its chunk")
        + (f"\n  at {where}" if where else "")
        + ("\n  reduce over the particle or feature dims instead, or compute the batch statistic outside the model"
           if verb == "reduces over" else
           "\n  keep every jet's row (x[:, ...]) and pick along the particle or feature dims, e.g. x[:, 0] or "
           "torch.gather(x, 1, idx) with one idx row per jet; pass per-jet constants as a model input"))
