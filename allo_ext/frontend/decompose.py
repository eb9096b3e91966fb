"""Bring an exported graph to ops that have lowerings, with torch's own decompositions, one op at a time.

The default export keeps high-level ops (linear, batch_norm, softmax, ...) that line up with the
kernels; the whole core-ATen table would undo that (BatchNorm folding stops matching, layer_norm
becomes native_layer_norm with statistics outputs). So only the ops that have no lowering are
decomposed, with the entry torch itself has for that op, and the result is looked at again (a
decomposition may produce another op without a lowering, e.g. selu -> elu). ``run_decompositions``
also functionalises in-place ops and inlines ``wrap_with_autocast`` regions; it turns
``batch_norm`` into ``_native_batch_norm_legit_no_training`` + ``getitem``, which is rewritten
back so the BatchNorm fusion and folding rewrites keep matching.
"""
from __future__ import annotations

import functools
import operator

import torch

aten = torch.ops.aten

MAX_ROUNDS = 8


def _call_nodes(ep):
    for m in ep.graph_module.modules():
        if isinstance(m, torch.fx.GraphModule):
            yield from (n for n in m.graph.nodes if n.op == "call_function")


def needs_functionalisation(ep) -> bool:
    """True if the graph has in-place ops or higher-order ops (autocast regions, wrap, ...)."""
    for n in _call_nodes(ep):
        t = n.target
        if isinstance(t, torch._ops.HigherOrderOperator):
            return True
        if isinstance(t, torch._ops.OpOverload) and t._schema.is_mutable:
            return True
    return False


def canonicalise_batch_norm(graph: torch.fx.Graph) -> int:
    """``getitem(_native_batch_norm_legit_no_training(x, w, b, mean, var, momentum, eps), 0)`` ->
    ``batch_norm(x, w, b, mean, var, False, momentum, eps, False)``, the form the rewrites match."""
    count = 0
    for n in list(graph.nodes):
        if n.op != "call_function" or n.target != aten._native_batch_norm_legit_no_training.default:
            continue
        users = list(n.users)
        if not all(u.target is operator.getitem and u.args[1] == 0 for u in users):
            continue
        x, w, b, mean, var, momentum, eps = n.args[:7]
        with graph.inserting_before(n):
            bn = graph.call_function(aten.batch_norm.default, (x, w, b, mean, var, False, momentum, eps, False))
        bn.meta = dict(users[0].meta) if users else {}
        bn.meta.setdefault("stack_trace", n.meta.get("stack_trace"))
        for u in users:
            u.replace_all_uses_with(bn)
            graph.erase_node(u)
        graph.erase_node(n)
        count += 1
    return count


def _functionalise(ep, table):
    ep = ep.run_decompositions(table)
    canonicalise_batch_norm(ep.graph)
    ep.graph_module.recompile()
    return ep


def inline_higher_order(ep):
    """Functionalise in-place ops and inline autocast regions (nothing else is decomposed)."""
    if needs_functionalisation(ep):
        ep = _functionalise(ep, {})
    return ep


@functools.lru_cache(maxsize=1)
def _export_table():
    return torch.export.default_decompositions()


def decomposition_of(op):
    """torch's decomposition of one op overload, or None."""
    from torch._decomp import decomposition_table

    if op in decomposition_table:
        return decomposition_table[op]
    table = _export_table()
    return table[op] if op in table else None


def decompose_missing(ep, has_lowering, ignored=()):
    """Decompose, round by round, every op without a lowering that torch can decompose.

    Returns the new program and ``roots``: for each decomposed op, the op of the user's model it
    came from (``prims.iota`` <- ``aten.arange`` <- ``aten.cumsum``), so an error can name that."""
    ep = inline_higher_order(ep)
    roots: dict[str, str] = {}
    for _ in range(MAX_ROUNDS):
        table = {}
        for n in _call_nodes(ep):
            t = n.target
            if not isinstance(t, torch._ops.OpOverload) or t in table or has_lowering(t) or str(t) in ignored:
                continue
            fn = decomposition_of(t)
            if fn is not None:
                table[t] = fn
                roots.setdefault(str(t), root_op(n, roots) or str(t))
        if not table:
            break
        ep = _functionalise(ep, table)
    return ep, roots


def root_op(node, roots: dict) -> str | None:
    """The user's op whose decomposition produced ``node``, or None if the user wrote it."""
    orig = node.meta.get("original_aten")
    if orig is None or orig == node.target:
        return None
    return roots.get(str(orig), str(orig))
