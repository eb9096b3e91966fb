"""Facts about ``affine.for`` loops: names, bounds and trip counts."""
from __future__ import annotations

from torch_mlir import ir


def loop_name(op) -> str:
    return ir.StringAttr(op.attributes["loop_name"]).value if "loop_name" in op.attributes else "?"


def _const(expr):
    try:
        return ir.AffineConstantExpr(expr).value
    except (ValueError, TypeError):
        return None


def span(op) -> int | None:
    """Upper minus lower bound of an ``affine.for``, when it does not depend on run-time values.

    Handles constant bounds and the ``(d0) -> (d0)`` to ``(d0) -> (d0 + c)`` bounds that ``split``
    gives an inner loop (same operands on both sides, constant difference). A ``min`` upper bound
    (a split with a remainder) has no single span: None.
    """
    lbm = ir.AffineMapAttr(op.attributes["lowerBoundMap"]).value
    ubm = ir.AffineMapAttr(op.attributes["upperBoundMap"]).value
    if len(lbm.results) != 1 or len(ubm.results) != 1:
        return None
    lb, ub = lbm.results[0], ubm.results[0]
    if lbm.n_dims == 0 and ubm.n_dims == 0 and lbm.n_symbols == 0 and ubm.n_symbols == 0:
        lo, hi = _const(lb), _const(ub)
        return None if lo is None or hi is None else hi - lo
    fop = op.opview
    lops, uops = list(fop.lowerBoundOperands), list(fop.upperBoundOperands)
    if len(lops) != len(uops) or any(not (a == b) for a, b in zip(lops, uops)) or lbm.n_dims != ubm.n_dims:
        return None
    diff = ir.AffineAddExpr.get(ub, ir.AffineMulExpr.get(lb, ir.AffineConstantExpr.get(-1)))
    return _const(ir.AffineExpr.simplify_affine_expr(diff, lbm.n_dims, lbm.n_symbols))


def trip_count(op) -> int | None:
    """Iterations of an ``affine.for``, when they do not depend on run-time values (see ``span``)."""
    d = span(op)
    return None if d is None else max(0, -(-d // ir.IntegerAttr(op.attributes["step"]).value))
