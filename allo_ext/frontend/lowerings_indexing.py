"""Lowerings of convolutions, repeat, topk/sort, gather/index and tensor factories.

Factories (``zeros_like``, ``full``, ``arange``, ...) depend on shapes only, never on values, so
they are evaluated by torch at compile time and become constants.
"""
from __future__ import annotations

import numpy as np
import torch

from ..kernels import nn as K
from ..lang.values import Buffer
from .importer import register_lowering
from .lowerings import _linear, _norm_dim, _permute, _shape, reshape


# ---------------------------------------------------------------------------- factories
def _torch_arg(a):
    if isinstance(a, Buffer):
        return torch.zeros(tuple(a.type.shape))  # only its shape matters to a factory
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    if isinstance(a, (list, tuple)):
        return type(a)(_torch_arg(x) for x in a)
    return a


@register_lowering("aten.zeros_like", "aten.ones_like", "aten.full_like", "aten.empty_like", "aten.zeros",
                   "aten.ones", "aten.full", "aten.empty.memory_format", "aten.arange", "aten.new_zeros",
                   "aten.new_ones", "aten.new_full", "aten.new_empty", "aten.scalar_tensor", "aten.eye",
                   "aten.tril_indices", "aten.triu_indices")
def _factory(ctx, node, *args, **kwargs):
    target = node.target
    name = str(target)
    if "empty" in name:  # any content is valid for empty; zeros keep results reproducible
        target = {"aten.empty_like.default": torch.ops.aten.zeros_like.default,
                  "aten.new_empty.default": torch.ops.aten.new_zeros.default,
                  "aten.empty.memory_format": torch.ops.aten.zeros.default}.get(name, target)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("pin_memory", "memory_format")}
    kwargs["device"] = "cpu"
    with torch.no_grad():
        out = target(*_torch_arg(list(args)), **_torch_arg(kwargs))
    return out.numpy().astype(np.float32) if out.dtype != torch.float32 else out.numpy()


# ---------------------------------------------------------------------------- layout
@register_lowering("aten.repeat")
def _repeat(ctx, node, x, reps):
    reps = tuple(int(r) for r in reps)
    if all(r == 1 for r in reps) and len(reps) == len(_shape(x)):
        return x
    return ctx.call(K.tile(ctx.dtype, _shape(x), reps), x)


def _pieces(ctx, node, x, sizes, dim):
    from .lowerings import _slice

    dim = _norm_dim(dim, len(_shape(x)))
    out, start = [], 0
    for n in sizes:
        out.append(_slice(ctx, node, x, dim, start, start + int(n), 1))
        start += int(n)
    return tuple(out)


@register_lowering("aten.split_with_sizes", "aten.split_with_sizes_copy")
def _split_with_sizes(ctx, node, x, sizes, dim=0):
    return _pieces(ctx, node, x, sizes, dim)


@register_lowering("aten.split.Tensor", "aten.split_copy.Tensor")
def _split(ctx, node, x, size, dim=0):
    total = _shape(x)[_norm_dim(dim, len(_shape(x)))]
    return _pieces(ctx, node, x, [min(size, total - s) for s in range(0, total, size)], dim)


@register_lowering("aten.chunk")
def _chunk(ctx, node, x, chunks, dim=0):
    total = _shape(x)[_norm_dim(dim, len(_shape(x)))]
    size = -(-total // chunks)
    return _split(ctx, node, x, size, dim)


@register_lowering("aten.unbind.int", "aten.unbind_copy.int")
def _unbind(ctx, node, x, dim=0):
    from .lowerings import _select

    dim = _norm_dim(dim, len(_shape(x)))
    return tuple(_select(ctx, node, x, dim, k) for k in range(_shape(x)[dim]))


# ---------------------------------------------------------------------------- convolution
def _pair(v, n):
    v = tuple(int(a) for a in (v if isinstance(v, (list, tuple)) else [v]))
    return v * n if len(v) == 1 else v


def _conv(ctx, node, x, w, b, stride, padding, dilation, groups, nd):
    if isinstance(w, Buffer):
        raise NotImplementedError("a convolution whose weight is computed at run time")
    if int(groups) != 1:
        raise NotImplementedError(f"groups={groups} (only groups=1)")
    if isinstance(padding, str):
        raise NotImplementedError(f"padding='{padding}' (give the padding as numbers)")
    if any(d != 1 for d in _pair(dilation, nd)):
        raise NotImplementedError(f"dilation={dilation} (only 1)")
    stride, padding = _pair(stride, nd), _pair(padding, nd)
    w = np.asarray(w, dtype=np.float32)
    cout = w.shape[0]
    b = np.zeros(cout, np.float32) if b is None else b
    shape = _shape(x)
    if all(k == 1 for k in w.shape[2:]) and all(s == 1 for s in stride) and not any(padding):
        # A pointwise convolution is a linear layer over the channels.
        perm = [0] + list(range(2, len(shape))) + [1]
        xt = _permute(ctx, node, x, perm)
        y = _linear(ctx, node, xt, w.reshape(cout, -1), b)
        inv = [0, len(shape) - 1] + list(range(1, len(shape) - 1))
        return _permute(ctx, node, y, inv)
    if nd == 1:
        bsz, cin, length = shape
        x4 = reshape(ctx, x, (bsz, cin, 1, length))
        w4 = w.reshape(cout, cin, 1, w.shape[2])
        y = ctx.call(K.conv2d(ctx.dtype, bsz, cin, 1, length, cout, 1, w.shape[2], (1, stride[0]),
                              (0, padding[0])), x4, w4, b)
        return reshape(ctx, y, ctx.out_shape)
    bsz, cin, h, wd = shape
    return ctx.call(K.conv2d(ctx.dtype, bsz, cin, h, wd, cout, w.shape[2], w.shape[3], stride, padding), x, w, b)


@register_lowering("aten.conv1d.default")
def _conv1d(ctx, node, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(ctx, node, x, w, b, stride, padding, dilation, groups, 1)


@register_lowering("aten.conv2d.default")
def _conv2d(ctx, node, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(ctx, node, x, w, b, stride, padding, dilation, groups, 2)


# ---------------------------------------------------------------------------- topk, sort, gather, index
def _topk_last(ctx, node, x, dim, k, largest):
    shape = _shape(x)
    rank = len(shape)
    dim = _norm_dim(dim, rank)
    perm = list(range(rank))
    perm[dim], perm[-1] = perm[-1], perm[dim]
    xt = _permute(ctx, node, x, perm)
    v, i = ctx.call(K.topk(ctx.dtype, _shape(xt), int(k), bool(largest)), xt)
    return _permute(ctx, node, v, perm), _permute(ctx, node, i, perm)


@register_lowering("aten.topk")
def _topk(ctx, node, x, k, dim=-1, largest=True, sorted=True):  # noqa: A002 (torch's name)
    return _topk_last(ctx, node, x, dim, k, largest)


@register_lowering("aten.sort.default", "aten.sort.stable")
def _sort(ctx, node, x, *args, **kwargs):
    if "stable" in str(node.target):
        dim, descending = kwargs.get("dim", -1), kwargs.get("descending", False)
    else:
        dim = args[0] if args else kwargs.get("dim", -1)
        descending = args[1] if len(args) > 1 else kwargs.get("descending", False)
    n = _shape(x)[_norm_dim(dim, len(_shape(x)))]
    return _topk_last(ctx, node, x, dim, n, descending)


@register_lowering("aten.argsort")
def _argsort(ctx, node, x, dim=-1, descending=False, *rest, **kwargs):
    return _sort(ctx, node, x, dim, descending)[1]


@register_lowering("aten.gather")
def _gather(ctx, node, x, dim, index, *rest, **kwargs):
    if not isinstance(x, Buffer):
        x = np.asarray(x, dtype=np.float32)
    dim = _norm_dim(dim, len(_shape(x)))
    return ctx.call(K.gather(ctx.dtype, _shape(x), _shape(index), dim), x, np.asarray(index, np.float32)
                    if not isinstance(index, Buffer) else index)


@register_lowering("aten.index.Tensor")
def _index(ctx, node, x, indices):
    used = [k for k, t in enumerate(indices) if t is not None]
    if len(used) != 1:
        raise NotImplementedError(f"indexing with {len(used)} index tensors (only one, e.g. x[:, idx])")
    d = used[0]
    if node.args[1][d].meta["val"].dtype == torch.bool:
        raise NotImplementedError("indexing with a bool mask (its result size depends on the data)")
    return _take(ctx, x, indices[d], d)


def _take(ctx, x, idx, d):
    if not isinstance(x, Buffer) and not isinstance(idx, Buffer):
        return np.ascontiguousarray(np.take(np.asarray(x), np.asarray(idx).astype(np.int64), axis=d))
    if not isinstance(idx, Buffer):
        idx = np.asarray(idx, np.float32)
    if not isinstance(x, Buffer):
        x = np.asarray(x, np.float32)
    return ctx.call(K.index_select_nd(ctx.dtype, _shape(x), _shape(idx), d), x, idx)


@register_lowering("aten.index_select")
def _index_select(ctx, node, x, dim, index):
    return _take(ctx, x, index, _norm_dim(dim, len(_shape(x))))


@register_lowering("aten.index_put.default")
def _index_put(ctx, node, x, indices, values, accumulate=False):
    """``x[..., i, j] = values`` with index tensors known at compile time (e.g. ParT's symmetric pair
    matrix from tril_indices): each destination element is mapped, at compile time, to the source
    element that lands there (the last write wins, as torch on the CPU), then one gather and one where."""
    if accumulate:
        raise NotImplementedError("index_put with accumulate=True")
    if any(isinstance(t, Buffer) for t in indices if t is not None):
        raise NotImplementedError("index_put with index tensors computed at run time")
    shape = _shape(x)
    used = [k for k, t in enumerate(indices) if t is not None]
    if used != list(range(used[0], used[0] + len(used))):
        raise NotImplementedError("index_put with index tensors on non-adjacent dims")
    d0, nd = used[0], len(used)
    idx = np.broadcast_arrays(*[np.asarray(indices[k]).astype(np.int64) for k in used])
    sub = shape[d0:d0 + nd]
    n_src = idx[0].size
    flat_dst = np.ravel_multi_index(tuple(np.mod(i.reshape(-1), s) for i, s in zip(idx, sub)), sub)
    src_of = np.full(int(np.prod(sub)), -1, np.int64)
    src_of[flat_dst] = np.arange(n_src)  # numpy keeps the last of repeated writes, as torch does on the CPU
    lead, tail = shape[:d0], shape[d0 + nd:]
    vshape = lead + tuple(idx[0].shape) + tail
    v = values if isinstance(values, Buffer) else np.asarray(values, np.float32)
    if _shape(v) != vshape:
        v = ctx.call(K.broadcast_to(ctx.dtype, _shape(v), vshape), v)
    v = reshape(ctx, v, lead + (n_src,) + tail)
    gathered = _take(ctx, v, np.maximum(src_of, 0).astype(np.float32), d0)  # lead + (prod(sub),) + tail
    keep = (src_of >= 0).astype(np.float32).reshape((1,) * len(lead) + (-1,) + (1,) * len(tail))
    x2 = reshape(ctx, x, lead + (int(np.prod(sub)),) + tail) if isinstance(x, Buffer) else \
        np.asarray(x, np.float32).reshape(lead + (-1,) + tail)
    y = ctx.call(K.where(ctx.dtype, keep.shape, _shape(gathered), _shape(x2)), keep, gathered, x2)
    return reshape(ctx, y, shape)
