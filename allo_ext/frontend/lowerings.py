"""Lowerings from the default (high-level) ATen that ``torch.export`` gives to library kernels.

Arguments arrive with tensors replaced by ``Buffer`` (computed at run time) or numpy arrays
(parameters and constants). Pure layout ops (contiguous, clone, eval dropout, alias) pass the
buffer through; view-like ops become the ``reshape``/``transpose`` copy kernels.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..kernels import nn as K
from ..lang.values import Buffer
from .importer import register_lowering


def _shape(x) -> tuple:
    return tuple(x.type.shape) if isinstance(x, Buffer) else tuple(np.shape(x))


def _norm_dim(d: int, rank: int) -> int:
    if not -rank <= d < max(rank, 1):
        raise NotImplementedError(f"dim {d} out of range for rank {rank}")
    return d % rank if rank else 0


def _const_fold(x):
    """True when every input is a constant: then the op is evaluated in numpy at compile time."""
    return not isinstance(x, Buffer)


def reshape(ctx, x, shape):
    shape = tuple(int(d) for d in shape)
    if _shape(x) == shape:
        return x
    if _const_fold(x):
        return np.reshape(x, shape)
    if ctx.target == "llvm" and shape and _shape(x):
        return _alias_reshape(x, shape)
    return ctx.call(K.reshape(ctx.dtype, _shape(x), shape), x)


def _alias_reshape(x: Buffer, shape: tuple) -> Buffer:
    """A reshape of a contiguous buffer as a view (collapse to 1-D, expand to the new shape): no copy.

    Only on the CPU: HLS tools want every array to have one shape, so there the copy kernel stays.
    """
    from torch_mlir import ir
    from torch_mlir.dialects import memref

    t = x.type
    elem = t.dtype.mlir()
    v = x.value
    n = int(np.prod(t.shape))
    if len(t.shape) != 1:
        v = memref.collapse_shape(ir.MemRefType.get([n], elem), v, [list(range(len(t.shape)))])
    if len(shape) != 1:
        v = memref.expand_shape(ir.MemRefType.get(list(shape), elem), v, [list(range(len(shape)))], [], list(shape))
    return Buffer(v, t.dtype[shape], x.name)


# ---------------------------------------------------------------------------- identity
@register_lowering("aten.contiguous", "aten.clone", "aten.alias", "aten.detach", "aten.lift_fresh_copy")
def _identity(ctx, node, x, *args, **kwargs):
    return x


@register_lowering("aten._to_copy", "aten.to.dtype", "aten.to.dtype_layout")
def _to_copy(ctx, node, x, *args, **kwargs):
    src = node.args[0].meta["val"].dtype
    dst = node.meta["val"].dtype
    if src != dst:
        raise NotImplementedError(f"conversion from {src} to {dst}; the compiled model computes in {ctx.dtype}")
    return x


@register_lowering("aten.dropout")
def _dropout(ctx, node, x, p=0.5, train=False):
    if train:
        raise NotImplementedError("dropout in training mode; compile the model in eval mode")
    return x


@register_lowering("getitem")
def _getitem(ctx, node, x, i):
    return x[i]


# ---------------------------------------------------------------------------- layout
@register_lowering("aten.view", "aten.reshape", "aten._unsafe_view", "aten.view_copy", "aten.unflatten",
                   "aten.flatten", "aten.squeeze", "aten.unsqueeze")
def _reshape(ctx, node, x, *args, **kwargs):
    return reshape(ctx, x, ctx.out_shape)


@register_lowering("aten.transpose.int")
def _transpose(ctx, node, x, d0, d1):
    rank = len(_shape(x))
    d0, d1 = _norm_dim(d0, rank), _norm_dim(d1, rank)
    perm = list(range(rank))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return _permute(ctx, node, x, perm)


@register_lowering("aten.permute", "aten.t")
def _permute(ctx, node, x, perm=None):
    rank = len(_shape(x))
    perm = tuple(_norm_dim(p, rank) for p in (perm if perm is not None else reversed(range(rank))))
    if perm == tuple(range(rank)):
        return x
    if _const_fold(x):
        return np.ascontiguousarray(np.transpose(x, perm))
    # A permutation that only moves size-1 dims keeps the memory order: a reshape suffices.
    moved = [d for d in perm if _shape(x)[d] != 1]
    if moved == sorted(moved):
        return reshape(ctx, x, tuple(_shape(x)[p] for p in perm))
    return ctx.call(K.transpose(ctx.dtype, _shape(x), perm), x)


@register_lowering("aten.expand")
def _expand(ctx, node, x, size, *args, **kwargs):
    out = ctx.out_shape
    if _shape(x) == out:
        return x
    if _const_fold(x):
        src = np.asarray(x)
        if src.ndim == 3 and src.shape[:2] == (1, 1) and out[1:] == (1, src.shape[2]):
            return ctx.call(K.repeat_cls(ctx.dtype, out[0], src.shape[2]), src)
    return ctx.call(K.broadcast_to(ctx.dtype, _shape(x), out), x)


@register_lowering("aten.cat")
def _cat(ctx, node, tensors, dim=0):
    tensors = [t for t in tensors if np.prod(_shape(t)) != 0]
    acc = tensors[0]
    rank = len(_shape(acc))
    dim = _norm_dim(dim, rank)
    for t in tensors[1:]:
        acc = ctx.call(K.concat(ctx.dtype, _shape(acc), _shape(t), dim), acc, t)
    return acc


@register_lowering("aten.select.int")
def _select(ctx, node, x, dim, index):
    if _const_fold(x):
        return np.take(x, index, axis=dim)
    return ctx.call(K.select(ctx.dtype, _shape(x), dim, index), x)


@register_lowering("aten.slice.Tensor")
def _slice(ctx, node, x, dim=0, start=None, end=None, step=1):
    shape = _shape(x)
    dim = _norm_dim(dim, len(shape))
    s = slice(start, end, step).indices(shape[dim])
    if s == (0, shape[dim], 1):
        return x
    if _const_fold(x):
        idx = [slice(None)] * len(shape)
        idx[dim] = slice(*s)
        return np.ascontiguousarray(np.asarray(x)[tuple(idx)])
    return ctx.call(K.slice(ctx.dtype, shape, dim, s[0], s[1], s[2]), x)


# ---------------------------------------------------------------------------- linear algebra
@register_lowering("aten.linear")
def _linear(ctx, node, x, w, b=None):
    shape = _shape(x)
    n, k = _shape(w)
    lead = shape[:-1]
    order = ctx.loop_order if not isinstance(w, Buffer) else "ijk"
    if order == "ikj":
        w = np.ascontiguousarray(np.asarray(w).T)  # the ikj kernels take weights as [in, out]
    args = (x, w) if b is None else (x, w, b)
    if len(shape) == 2:
        return ctx.call(K.linear2d(ctx.dtype, shape[0], k, n, bias=b is not None, loop_order=order, acc=ctx.acc), *args)
    if len(shape) == 3 and order == "ijk":
        return ctx.call(K.linear3d(ctx.dtype, shape[0], shape[1], k, n, bias=b is not None, loop_order=order, acc=ctx.acc),
                        *args)
    m = int(np.prod(lead))
    x2 = reshape(ctx, x, (m, k))
    y = ctx.call(K.linear2d(ctx.dtype, m, k, n, bias=b is not None, loop_order=order, acc=ctx.acc), x2, *args[1:])
    return reshape(ctx, y, lead + (n,))


@register_lowering("aten.addmm")
def _addmm(ctx, node, bias, a, b, beta=1, alpha=1):
    if beta != 1 or alpha != 1:
        raise NotImplementedError("addmm with beta/alpha != 1")
    m, k = _shape(a)
    n = _shape(b)[1]
    if _const_fold(b):
        return _linear(ctx, node, a, np.ascontiguousarray(np.asarray(b).T), bias)
    return _add(ctx, node, _mm(ctx, node, a, b), bias)


@register_lowering("aten.mm")
def _mm(ctx, node, a, b):
    m, k = _shape(a)
    return ctx.call(K.matmul(ctx.dtype, m, k, _shape(b)[1], loop_order=ctx.loop_order, acc=ctx.acc), a, b)


@register_lowering("aten.bmm")
def _bmm(ctx, node, a, b):
    bsz, m, k = _shape(a)
    return _bmm_call(ctx, a, b)


def _bmm_call(ctx, a, b):
    """bmm of (B, M, K) and (B, K, N) buffers. On the CPU (float) with B a multiple of 8 and a
    small, narrow product (N not a multiple of 8, so its own rows do not vectorise), the ``lanes``
    form runs 8 products side by side."""
    bsz, m, k = _shape(a)
    n = _shape(b)[2]
    order = ctx.loop_order
    # The lane form copies each group's operands to scratch of 8 x (MK + KN + MN) floats: for small
    # matrices only (attention-sized), where the copies are cheap next to scalar products.
    if order == "ikj" and bsz % 8 == 0 and n % 8 and m * k + k * n + m * n <= 4096:
        order = "lanes"
    return ctx.call(K.bmm(ctx.dtype, bsz, m, k, n, loop_order=order, acc=ctx.acc), a, b)


@register_lowering("aten.matmul")
def _matmul(ctx, node, a, b):
    sa, sb = _shape(a), _shape(b)
    if len(sa) == 2 and len(sb) == 2:
        return _mm(ctx, node, a, b)
    if len(sa) >= 3 and len(sb) == 2 and _const_fold(b):  # activations @ weight
        return _linear(ctx, node, a, np.ascontiguousarray(np.asarray(b).T))
    if len(sa) == len(sb) >= 3 and sa[:-2] == sb[:-2]:
        lead = sa[:-2]
        nb = int(np.prod(lead))
        a3 = reshape(ctx, a, (nb,) + sa[-2:])
        b3 = reshape(ctx, b, (nb,) + sb[-2:])
        y = _bmm_call(ctx, a3, b3)
        return reshape(ctx, y, lead + (sa[-2], sb[-1]))
    raise NotImplementedError(f"matmul of shapes {sa} and {sb} (broadcasting matmul)")


# ---------------------------------------------------------------------------- elementwise
def _binary(kernel, ctx, node, a, b):
    if not isinstance(a, Buffer) and not isinstance(b, Buffer):
        return {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[kernel.__name__](a, b)
    a = np.asarray(a, dtype=np.float32) if not isinstance(a, Buffer) else a
    b = np.asarray(b, dtype=np.float32) if not isinstance(b, Buffer) else b
    sa, sb = _shape(a), _shape(b)
    out = sa or sb
    if ctx.target == "llvm" and not ctx.dtype.is_fixed and len(out) > 1 and sa in (out, ()) and sb in (out, ()):
        # On the CPU a same-shape (or tensor-and-scalar) op runs as one flat loop over views: the
        # vectoriser needs a loop whose length is a multiple of 8, which attention's 9x9 rows are
        # not, while their product over the batch is. HLS keeps the shaped loops.
        n = int(np.prod(out))
        a, b = (reshape(ctx, v, (n,)) if s else v for v, s in ((a, sa), (b, sb)))
        return reshape(ctx, ctx.call(kernel(ctx.dtype, _shape(a), _shape(b)), a, b), out)
    return ctx.call(kernel(ctx.dtype, sa, sb), a, b)


@register_lowering("aten.add.Tensor", "aten.add.Scalar")
def _add(ctx, node, a, b, alpha=1):
    if alpha != 1:
        b = _mul(ctx, node, b, alpha)
    return _binary(K.add, ctx, node, a, b)


@register_lowering("aten.sub.Tensor", "aten.sub.Scalar", "aten.rsub.Scalar", "aten.rsub.Tensor")
def _sub(ctx, node, a, b, alpha=1):
    if "rsub" in str(node.target):  # rsub(x, c, alpha) = c - alpha * x: alpha scales x, not c
        a, b = b, a
    if alpha != 1:
        b = _mul(ctx, node, b, alpha)
    return _binary(K.sub, ctx, node, a, b)


@register_lowering("aten.mul.Tensor", "aten.mul.Scalar")
def _mul(ctx, node, a, b):
    return _binary(K.mul, ctx, node, a, b)


def _exact_reciprocal(b) -> bool:
    """Every divisor is a finite, normal power of two (so its float32 reciprocal is exact)."""
    v = np.asarray(b, dtype=np.float32)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v == 0):
        return False
    mant, exp = np.frexp(v)
    return bool(np.all(np.abs(mant) == 0.5) and np.all(np.abs(exp) < 120))


@register_lowering("aten.div.Tensor", "aten.div.Scalar")
def _div(ctx, node, a, b):
    if ctx.dtype.is_fixed and not isinstance(b, Buffer) and isinstance(a, Buffer):
        # fixed point has no divider: a constant divisor becomes a multiplication by its reciprocal
        return _binary(K.mul, ctx, node, a, 1.0 / np.asarray(b, dtype=np.float64))
    if not isinstance(b, Buffer) and isinstance(a, Buffer) and _exact_reciprocal(b):
        # Dividing by a power of two is multiplying by its reciprocal, bit for bit in IEEE arithmetic
        # (both round the same real number), and saves hardware a divider: attention's 1/sqrt(d), d = 4.
        return _binary(K.mul, ctx, node, a, np.float32(1.0) / np.asarray(b, dtype=np.float32))
    if ctx.dtype.is_fixed:
        raise NotImplementedError(f"division by a tensor in fixed point ({ctx.dtype}); compute this node in "
                                  f"float32 with precision={{'{node.name}': 'float32', ...}}")
    return _binary(K.div, ctx, node, a, b)


@register_lowering("aten.relu")
def _relu(ctx, node, x):
    return ctx.call(K.relu(ctx.dtype, _shape(x)), x)


@register_lowering("aten.silu")
def _silu(ctx, node, x):
    return ctx.call(K.silu(ctx.dtype, _shape(x)), x)


@register_lowering("aten.gelu")
def _gelu(ctx, node, x, approximate="none"):
    return ctx.call(K.gelu(ctx.dtype, _shape(x), approximate=approximate), x)


# ---------------------------------------------------------------------------- normalisation, softmax
@register_lowering("aten.batch_norm", "aten._native_batch_norm_legit_no_training")
def _batch_norm(ctx, node, x, w, b, mean, var, *rest):
    if "legit" in str(node.target):
        momentum, eps = rest[0], rest[1]
    else:
        training, momentum, eps = rest[0], rest[1], rest[2]
        if training:
            raise NotImplementedError("batch_norm in training mode; compile the model in eval mode")
    shape = _shape(x)
    c = shape[1]
    w = np.ones(c, np.float32) if w is None else w
    b = np.zeros(c, np.float32) if b is None else b
    kw, stats = _bn_stats(ctx, node, w, b, mean, var, eps)
    if len(shape) == 2:
        y = ctx.call(K.batchnorm1d_2d(ctx.dtype, shape[0], c, **kw), x, *stats)
    elif len(shape) >= 3:  # BatchNorm2d/3d: the spatial dims merged into one
        n = int(np.prod(shape[2:]))
        x3 = reshape(ctx, x, shape[:2] + (n,))
        y = ctx.call(K.batchnorm1d_3d(ctx.dtype, shape[0], c, n, **kw), x3, *stats)
        y = reshape(ctx, y, shape)
    else:
        raise NotImplementedError(f"batch_norm on a rank-{len(shape)} tensor")
    return (y, None, None) if "legit" in str(node.target) else y


@register_lowering("allo_ext.batch_norm_channels_last.default")
def _batch_norm_channels_last(ctx, node, x, w, b, mean, var, eps):
    bsz, length, c = _shape(x)
    w = np.ones(c, np.float32) if w is None else w
    b = np.zeros(c, np.float32) if b is None else b
    kw, stats = _bn_stats(ctx, node, w, b, mean, var, eps)
    return ctx.call(K.batchnorm_channels_last(ctx.dtype, bsz, length, c, **kw), x, *stats)


def _bn_stats(ctx, node, w, b, mean, var, eps):
    """(the kernel's keyword arguments, its arguments after x). Fixed point with constant statistics:
    scale and offset are folded here from the full-precision statistics (``norm.bn_fold``), so the kernel
    is one multiply-add per element with no float loop, and the model has an integer-only form
    (target="rtl" builds no float hardware)."""
    kw = dict(eps=eps, acc=ctx.acc)
    if ctx.dtype.is_fixed and all(isinstance(a, np.ndarray) for a in (w, b, mean, var)):
        from ..kernels.nn.norm import bn_fold

        fold = bn_fold(ctx.dtype, ctx.acc, w, b, mean, var, eps, where=f"{node.name} ({ctx.where()})")
        return dict(kw, const_scale=True, offset_t=fold.offset_t), (fold.scale, fold.offset)
    return kw, (w, b, mean, var)


@register_lowering("aten.layer_norm")
def _layer_norm(ctx, node, x, normalized_shape, w=None, b=None, eps=1e-5, *rest):
    if len(normalized_shape) != 1:
        raise NotImplementedError("layer_norm over more than the last dim")
    c = normalized_shape[0]
    w = np.ones(c, np.float32) if w is None else w
    b = np.zeros(c, np.float32) if b is None else b
    return ctx.call(K.layernorm(ctx.dtype, _shape(x), eps=eps), x, w, b)


@register_lowering("aten.softmax.int", "aten._softmax")
def _softmax(ctx, node, x, dim, *rest):
    shape = _shape(x)
    dim = _norm_dim(dim, len(shape))
    if dim != len(shape) - 1:
        perm = list(range(len(shape)))
        perm[dim], perm[-1] = perm[-1], perm[dim]
        xt = _permute(ctx, node, x, perm)
        return _permute(ctx, node, _softmax_last(ctx, xt), perm)
    return _softmax_last(ctx, x)


SOFTMAX_LANES = 8  # the CPU's vector width in float32 lanes (VECTORIZE in backends/llvm.py)


def _softmax_last(ctx, x):
    """softmax over the last dim. On the CPU (float, a multiple of 8 rows) the rows are flattened
    and run 8 side by side (``softmax_lanes``): short rows vectorise across rows. HLS keeps
    ``softmax``, one row at a time."""
    shape = _shape(x)
    rows = int(np.prod(shape[:-1]))
    if ctx.target == "llvm" and not ctx.dtype.is_fixed and rows % SOFTMAX_LANES == 0:
        y = ctx.call(K.softmax_lanes(ctx.dtype, rows, shape[-1], lanes=SOFTMAX_LANES), reshape(ctx, x, (rows, shape[-1])))
        return reshape(ctx, y, shape)
    return ctx.call(K.softmax(ctx.dtype, shape), x)


@register_lowering("aten.log_softmax.int", "aten._log_softmax")
def _log_softmax(ctx, node, x, dim, *rest):
    return ctx.call(K.log_softmax(ctx.dtype, _shape(x), dim), x)


def _reduce(ctx, factory, x, dims, keepdim):
    """One reduction kernel per reduced dim, innermost first (a mean of means is the mean here:
    every slice has the same size)."""
    rank = len(_shape(x))
    dims = range(rank) if dims is None else [dims] if isinstance(dims, int) else dims
    y = x
    for d in sorted({_norm_dim(d, rank) for d in dims}, reverse=True):
        y = ctx.call(factory(ctx.dtype, _shape(y), d), y)
    return reshape(ctx, y, ctx.out_shape) if keepdim else y


@register_lowering("aten.mean.dim")
def _mean(ctx, node, x, dims=None, keepdim=False, *rest):
    return _reduce(ctx, K.mean_pool, x, dims, keepdim)


@register_lowering("aten.sum.dim_IntList")
def _sum(ctx, node, x, dims=None, keepdim=False, *rest):
    return _reduce(ctx, K.reduce_sum, x, dims, keepdim)


# ---------------------------------------------------------------------------- attention
@register_lowering("aten.scaled_dot_product_attention")
def _sdpa(ctx, node, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if is_causal or dropout_p or enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention with causal masking, dropout or grouped queries")
    sq, sk = _shape(q), _shape(k)
    lead, lq, d = sq[:-2], sq[-2], sq[-1]
    lk = sk[-2]
    nb = int(np.prod(lead))
    q3, k3, v3 = (reshape(ctx, t, (nb,) + _shape(t)[-2:]) for t in (q, k, v))
    kt = ctx.call(K.transpose(ctx.dtype, (nb, lk, d), (0, 2, 1)), k3)
    s = _bmm_call(ctx, q3, kt)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    s = ctx.call(K.mul(ctx.dtype, (nb, lq, lk), ()), s, np.array(scale, dtype=np.float32))
    if attn_mask is not None:  # a bool mask keeps True entries; a float mask is added to the scores
        s4 = reshape(ctx, s, lead + (lq, lk))
        if node.args[3].meta["val"].dtype == torch.bool:
            s4 = ctx.call(K.where(ctx.dtype, _shape(attn_mask), _shape(s4), ()), attn_mask, s4,
                          np.array(-np.inf, dtype=np.float32))
        else:
            s4 = _binary(K.add, ctx, node, s4, attn_mask)
        s = reshape(ctx, s4, (nb, lq, lk))
    p = _softmax_last(ctx, s)
    o = _bmm_call(ctx, p, v3)
    return reshape(ctx, o, lead + (lq, _shape(v)[-1]))


@register_lowering("allo_ext.attention_heads_lanes.default")
def _attention_heads_lanes(ctx, node, q, k, v, heads, scale):
    b, lq, c = _shape(q)
    return ctx.call(K.attention_lanes(ctx.dtype, b, lq, _shape(k)[1], c, heads, scale), q, k, v)


# ---------------------------------------------------------------------------- library layers
@register_lowering("allo_ext.bitlinear.default")
def _bitlinear(ctx, node, x, signs, beta, bias=None):
    shape = _shape(x)
    n, k = _shape(signs)
    m = int(np.prod(shape[:-1]))
    x2 = reshape(ctx, x, (m, k))
    args = (x2, np.asarray(signs, dtype=np.int8), np.asarray(beta, dtype=np.float32).reshape(1))
    if bias is not None:
        args += (bias,)
    y = ctx.call(K.bitlinear(ctx.dtype, m, k, n, bias=bias is not None), *args)
    return reshape(ctx, y, shape[:-1] + (n,))
