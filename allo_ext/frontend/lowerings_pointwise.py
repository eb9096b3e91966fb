"""Lowerings of elementwise math, comparisons, masks, casts and reductions (see kernels/nn/pointwise.py).

Every tensor is float32 inside a compiled model (bools 0/1, integers exact), so a cast to float
is free, a cast to bool is ``x != 0`` and one to an integer truncates toward zero.
"""
from __future__ import annotations

import numpy as np
import torch

from ..kernels import nn as K
from ..lang.values import Buffer
from .importer import register_lowering
from .lowerings import _norm_dim, _permute, _reduce, _shape, reshape

INF = float("inf")


def _is_const(x) -> bool:
    return not isinstance(x, Buffer)


def _num(v, what="scalar"):
    if isinstance(v, Buffer) or np.ndim(v) != 0:
        raise NotImplementedError(f"{what} must be a number known at compile time, got a tensor")
    return float(np.asarray(v))


def unary(ctx, x, op, a=0.0, b=0.0, c=1.0):
    return ctx.call(K.unary(ctx.dtype, _shape(x), op, a, b, c), x)


def _tensor(x):
    return x if isinstance(x, Buffer) else np.asarray(x, dtype=np.float32)


def binary(ctx, op, a, b):
    return ctx.call(K.binary(ctx.dtype, _shape(a), _shape(b), op), _tensor(a), _tensor(b))


def _simple(op):
    def lower(ctx, node, x, *args, **kwargs):
        return unary(ctx, x, op)

    return lower


for _op, _targets in {
    "abs": ("aten.abs",), "neg": ("aten.neg",), "exp": ("aten.exp",), "log": ("aten.log",), "sqrt": ("aten.sqrt",),
    "rsqrt": ("aten.rsqrt",), "sigmoid": ("aten.sigmoid",), "tanh": ("aten.tanh",), "sign": ("aten.sign",),
    "square": ("aten.square",), "reciprocal": ("aten.reciprocal",), "atan": ("aten.atan", "aten.arctan"),
    "floor": ("aten.floor",), "ceil": ("aten.ceil",), "round": ("aten.round.default",), "erf": ("aten.erf",),
    "trunc": ("aten.trunc", "aten.fix"), "logical_not": ("aten.logical_not",),
}.items():
    register_lowering(*_targets)(_simple(_op))


@register_lowering("aten.bitwise_not")
def _bitwise_not(ctx, node, x):
    if node.meta["val"].dtype != torch.bool:
        raise NotImplementedError("bitwise_not of an integer tensor (only of bool masks)")
    return unary(ctx, x, "logical_not")


@register_lowering("aten.elu")
def _elu(ctx, node, x, alpha=1.0, scale=1.0, input_scale=1.0):
    return unary(ctx, x, "elu", alpha, scale, input_scale)


@register_lowering("aten.selu")
def _selu(ctx, node, x):
    return unary(ctx, x, "elu", 1.6732632423543772848170429916717, 1.0507009873554804934193349852946, 1.0)


@register_lowering("aten.leaky_relu")
def _leaky_relu(ctx, node, x, slope=0.01):
    return unary(ctx, x, "leaky_relu", slope)


@register_lowering("aten.hardtanh")
def _hardtanh(ctx, node, x, lo=-1.0, hi=1.0):
    return unary(ctx, x, "clamp", lo, hi)


@register_lowering("aten.relu6")
def _relu6(ctx, node, x):
    return unary(ctx, x, "clamp", 0.0, 6.0)


@register_lowering("aten.softplus")
def _softplus(ctx, node, x, beta=1.0, threshold=20.0):
    return unary(ctx, x, "softplus", beta, threshold)


@register_lowering("aten.clamp.default", "aten.clip.default")
def _clamp(ctx, node, x, lo=None, hi=None):
    lo = -INF if lo is None else _num(lo, "clamp's min")
    hi = INF if hi is None else _num(hi, "clamp's max")
    return unary(ctx, x, "clamp", lo, hi)


@register_lowering("aten.clamp_min.default")
def _clamp_min(ctx, node, x, lo):
    return unary(ctx, x, "clamp", _num(lo), INF)


@register_lowering("aten.clamp_max.default")
def _clamp_max(ctx, node, x, hi):
    return unary(ctx, x, "clamp", -INF, _num(hi))


@register_lowering("aten.clamp.Tensor", "aten.clip.Tensor")
def _clamp_t(ctx, node, x, lo=None, hi=None):
    y = x if lo is None else binary(ctx, "maximum", x, lo)
    return y if hi is None else binary(ctx, "minimum", y, hi)


@register_lowering("aten.pow")
def _pow(ctx, node, a, b):
    if _is_const(b) and np.ndim(b) == 0:
        e = float(b)
        if e == 2.0:
            return unary(ctx, a, "square")
        if e == 1.0:
            return a
        if e == 0.5:
            return unary(ctx, a, "sqrt")
        return unary(ctx, a, "pow", e)
    if _is_const(a) and np.ndim(a) == 0:
        return unary(ctx, b, "rpow", float(a))
    return binary(ctx, "pow", a, b)


@register_lowering("aten.remainder")
def _remainder(ctx, node, a, b):
    if _is_const(b) and np.ndim(b) == 0:
        return unary(ctx, a, "remainder", float(b))
    return binary(ctx, "remainder", a, b)


def _binary_op(op):
    def lower(ctx, node, a, b, *rest):
        return binary(ctx, op, a, b)

    return lower


for _op, _targets in {
    "minimum": ("aten.minimum", "aten.fmin"), "maximum": ("aten.maximum", "aten.fmax"),
    "atan2": ("aten.atan2", "aten.arctan2"),
    "eq": ("aten.eq",), "ne": ("aten.ne",), "lt": ("aten.lt",), "le": ("aten.le",), "gt": ("aten.gt",),
    "ge": ("aten.ge",), "logical_and": ("aten.logical_and",), "logical_or": ("aten.logical_or",),
    "logical_xor": ("aten.logical_xor",),
}.items():
    register_lowering(*_targets)(_binary_op(_op))


def _bool_binary(op):
    def lower(ctx, node, a, b):
        if node.meta["val"].dtype != torch.bool:
            raise NotImplementedError(f"{op} of integer tensors (only of bool masks)")
        return binary(ctx, op, a, b)

    return lower


register_lowering("aten.bitwise_and", "aten.__and__")(_bool_binary("logical_and"))
register_lowering("aten.bitwise_or", "aten.__or__")(_bool_binary("logical_or"))
register_lowering("aten.bitwise_xor", "aten.__xor__")(_bool_binary("logical_xor"))


@register_lowering("aten.where.self", "aten.where.ScalarOther", "aten.where.ScalarSelf", "aten.where.Scalar")
def _where(ctx, node, cond, a, b):
    return ctx.call(K.where(ctx.dtype, _shape(cond), _shape(a), _shape(b)), _tensor(cond), _tensor(a), _tensor(b))


@register_lowering("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def _masked_fill(ctx, node, x, mask, value):
    return _where(ctx, node, mask, value, x)


@register_lowering("aten._to_copy", "aten.to.dtype", "aten.to.dtype_layout", "aten.type_as")
def _to_copy(ctx, node, x, *args, **kwargs):
    src = node.args[0].meta["val"].dtype
    dst = node.meta["val"].dtype
    if src == dst or dst == torch.float32:
        return x  # bools and integers are already exact float32 values
    if dst == torch.bool:
        return unary(ctx, x, "to_bool")
    if not dst.is_floating_point and not dst.is_complex:
        return x if not src.is_floating_point else unary(ctx, x, "trunc")
    raise NotImplementedError(f"conversion from {src} to {dst}; the compiled model computes in {ctx.dtype}")


# ---------------------------------------------------------------------------- reductions
def _reduce_with(ctx, node, x, dims, keepdim, op):
    return _reduce(ctx, lambda T, shape, d: K.reduce_op(T, shape, d, op), x, dims, keepdim)


@register_lowering("aten.amax")
def _amax(ctx, node, x, dims=(), keepdim=False):
    return _reduce_with(ctx, node, x, dims or None, keepdim, "max")


@register_lowering("aten.amin")
def _amin(ctx, node, x, dims=(), keepdim=False):
    return _reduce_with(ctx, node, x, dims or None, keepdim, "min")


@register_lowering("aten.max.default")
def _max_all(ctx, node, x):
    return _reduce_with(ctx, node, x, None, False, "max")


@register_lowering("aten.min.default")
def _min_all(ctx, node, x):
    return _reduce_with(ctx, node, x, None, False, "min")


@register_lowering("aten.max.other", "aten.max.Tensor")
def _max_other(ctx, node, a, b):
    return binary(ctx, "maximum", a, b)


@register_lowering("aten.min.other", "aten.min.Tensor")
def _min_other(ctx, node, a, b):
    return binary(ctx, "minimum", a, b)


def _kept(ctx, y, shape, dims):
    """``y`` (reduced over ``dims`` of ``shape``) reshaped as with keepdim=True."""
    return reshape(ctx, y, tuple(1 if d in dims else n for d, n in enumerate(shape)))


def _value_index(ctx, node, x, dim, keepdim, vop, iop):
    dim = _norm_dim(dim, len(_shape(x)))
    outs = (_reduce_with(ctx, node, x, [dim], False, vop), _reduce_with(ctx, node, x, [dim], False, iop))
    return tuple(_kept(ctx, y, _shape(x), [dim]) for y in outs) if keepdim else outs


@register_lowering("aten.max.dim")
def _max_dim(ctx, node, x, dim, keepdim=False):
    return _value_index(ctx, node, x, dim, keepdim, "max", "argmax")


@register_lowering("aten.min.dim")
def _min_dim(ctx, node, x, dim, keepdim=False):
    return _value_index(ctx, node, x, dim, keepdim, "min", "argmin")


@register_lowering("aten.argmax")
def _argmax(ctx, node, x, dim=None, keepdim=False):
    if dim is None:
        x, dim = reshape(ctx, x, (int(np.prod(_shape(x))),)), 0
    return _reduce_with(ctx, node, x, [dim], keepdim, "argmax")


@register_lowering("aten.argmin")
def _argmin(ctx, node, x, dim=None, keepdim=False):
    if dim is None:
        x, dim = reshape(ctx, x, (int(np.prod(_shape(x))),)), 0
    return _reduce_with(ctx, node, x, [dim], keepdim, "argmin")


@register_lowering("aten.prod")
def _prod(ctx, node, x, dim=None, keepdim=False, *rest, **kwargs):
    return _reduce_with(ctx, node, x, None if dim is None else [dim], keepdim, "prod")


def _correction(node, unbiased=None, correction=None):
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def _variance(ctx, node, x, dims, corr):
    """Reduced dims moved last and merged into one, then one two-pass variance kernel."""
    shape = _shape(x)
    rank = len(shape)
    dims = sorted({_norm_dim(d, rank) for d in (range(rank) if dims is None else
                                                 [dims] if isinstance(dims, int) else dims)})
    rest = [d for d in range(rank) if d not in dims]
    xt = _permute(ctx, node, x, rest + dims) if rest + dims != list(range(rank)) else x
    lead = tuple(shape[d] for d in rest)
    n = int(np.prod([shape[d] for d in dims]))
    x2 = reshape(ctx, xt, lead + (n,))
    return ctx.call(K.variance(ctx.dtype, _shape(x2), len(lead), corr), x2)


@register_lowering("aten.var.dim", "aten.var.correction", "aten.var.default")
def _var(ctx, node, x, dims=None, *rest, **kwargs):
    if "correction" in str(node.target):
        corr = _correction(node, correction=kwargs.get("correction", rest[0] if rest else None))
        keepdim = kwargs.get("keepdim", rest[1] if len(rest) > 1 else False)
    elif "default" in str(node.target):
        corr, keepdim, dims = _correction(node, unbiased=dims), False, None
    else:
        corr = _correction(node, unbiased=kwargs.get("unbiased", rest[0] if rest else True))
        keepdim = kwargs.get("keepdim", rest[1] if len(rest) > 1 else False)
    y = _variance(ctx, node, x, dims, corr)
    return reshape(ctx, y, ctx.out_shape) if keepdim else y


@register_lowering("aten.std.dim", "aten.std.correction", "aten.std.default")
def _std(ctx, node, x, dims=None, *rest, **kwargs):
    return unary(ctx, _var(ctx, node, x, dims, *rest, **kwargs), "sqrt")


@register_lowering("aten.logsumexp")
def _logsumexp(ctx, node, x, dims, keepdim=False):
    rank = len(_shape(x))
    dims = sorted({_norm_dim(d, rank) for d in ([dims] if isinstance(dims, int) else dims)})
    m = _kept(ctx, _reduce_with(ctx, node, x, dims, False, "max"), _shape(x), dims)
    e = unary(ctx, ctx.call(K.sub(ctx.dtype, _shape(x), _shape(m)), x, m), "exp")
    s = _kept(ctx, _reduce(ctx, K.reduce_sum, e, dims, False), _shape(x), dims)
    y = ctx.call(K.add(ctx.dtype, _shape(s), _shape(m)), unary(ctx, s, "log"), m)
    return y if keepdim else reshape(ctx, y, ctx.out_shape)
