"""Reductions as balanced trees (log depth): what a fully unrolled kernel loop becomes."""
from __future__ import annotations


def _tree(values: list, op):
    vals = list(values)
    while len(vals) > 1:
        nxt = [op(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def tree_sum(values: list):
    vals = [v for v in values if not (isinstance(v, float) and v == 0.0)]
    return _tree(vals, lambda a, b: a + b) if vals else 0.0


def _max(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return max(a, b)
    if isinstance(a, float):
        a, b = b, a
    return a.max_of(b)


def tree_max(values: list):
    """max is associative and exact: the kernel's running max equals the tree's."""
    return _tree(values, _max)
