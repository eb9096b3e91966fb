"""Library kernels as da4ml traces: each one computes what its Allo-style body computes, bit for bit.

An implementation gets the kernel's factory parameters (``linear2d(T, M, K, N, bias, ...)``) and its
operands already in the kernel's argument types: numpy object arrays of da4ml values for activations,
float64 arrays of exactly quantised numbers for constants. The fixed-point rules it follows are the
kernels' own (``allo_ext.lang.fixed``): + - * are exact, a value is rounded and wrapped (or saturated)
only where it is stored into a typed variable.

- Products with constant weights are one constant-matrix product (``x @ W``, distributed arithmetic,
  no multipliers) when the accumulator holds every product exactly; with a narrower accumulator each
  product is rounded into it, as the kernel's ``acc += x * w`` does, so the products are shift-adds
  of their own.
- With a WRAP accumulator the order of the sum does not change the result (two's complement sums are
  exact modulo 2**bits and each product's rounding is independent of the running sum), so sums are
  balanced trees; a saturating accumulator is summed in the kernel's order.
"""
from __future__ import annotations

import inspect

import numpy as np

from ...kernels import KERNELS
from . import fixed as F
from .errors import StaticLoweringError
from .kernels_util import act_mul, const_matmul, const_mul, tree_sum
from .softmax import log_softmax_rows, softmax_rows

IMPLS: dict = {}


def impl(*names):
    def deco(fn):
        for n in names:
            IMPLS[n] = fn
        return fn

    return deco


def params_of(kernel_fn) -> dict:
    """The factory arguments a kernel instance was made with, by name (defaults filled in)."""
    name = getattr(kernel_fn, "__allo_kernel__", None)
    recorded = getattr(kernel_fn, "__allo_args__", None)
    if name is None or recorded is None or name not in KERNELS:
        return {}
    args, kwargs = recorded
    bound = inspect.signature(KERNELS[name].factory).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _is_const(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype != object


def _frac(arr) -> int:
    return max((F.frac_of(v) for v in np.asarray(arr, dtype=object).ravel()), default=0)


def _accumulate(products, acc_t, init, where: str):
    """``acc: ACC = init; for p in products: acc += p`` (each sum stored into ACC)."""
    if acc_t.o == "WRAP":
        terms = list(F.round_to(np.array(products, dtype=object), acc_t.frac, acc_t.q)) if products else []
        total = tree_sum(terms + ([init] if init != 0.0 else []))
        if isinstance(total, float):
            return float(F.constant(total, acc_t))
        return F.quantize(np.array([total], dtype=object), acc_t, where)[0]
    acc = init
    for p in products:
        acc = F.quantize(np.array([acc + p], dtype=object), acc_t, where)[0]
    return acc


def dot(x, w, bias, acc_t, out_t, where: str, solver=None):
    """``Z[r, n] = T(ACC(bias[n]) + sum_k ACC(x[r, k] * w[k, n]))``, x (R, K) traced, w (K, N) constant or
    traced, bias (N,) constant or None."""
    R, K = x.shape
    N = w.shape[1]
    init = F.constant(bias, acc_t) if bias is not None else np.zeros(N)
    exact = _is_const(w) and acc_t.frac >= _frac(x) + _frac(w) and acc_t.o == "WRAP"
    out = np.empty((R, N), dtype=object)
    if exact:
        # Every product fits the accumulator exactly: the whole row is one constant-matrix product.
        for r in range(R):
            y = const_matmul(x[r], np.asarray(w, dtype=np.float64), solver)
            for n in range(N):
                v = y[n] + float(init[n]) if init[n] != 0.0 else y[n]
                out[r, n] = v
        out = F.quantize(out, acc_t, where)
        return F.quantize(out, out_t, where)
    for r in range(R):
        if _is_const(w):  # x[r, k] times row k of W: one small constant product per input, shared
            prods = [const_matmul(np.array([x[r, k]], dtype=object), np.asarray(w[k:k + 1], dtype=np.float64),
                                  solver) for k in range(K)]
        for n in range(N):
            if _is_const(w):
                terms = [prods[k][n] for k in range(K) if w[k, n] != 0.0]
            else:
                terms = [act_mul(x[r, k], w[k, n]) for k in range(K)]
            out[r, n] = _accumulate(terms, acc_t, float(init[n]), where)
    return F.quantize(out, out_t, where)


def _acc(p, T):
    return p.get("acc") or T


def _traced_first(a, b, where):
    if _is_const(a) and _is_const(b):
        raise StaticLoweringError(f"{where}: both operands are constants (should have been folded)")


# ---------------------------------------------------------------------------- matrix products
@impl("linear2d")
def _linear2d(p, ins, where, fn=None):
    T = p["T"]
    x, w = ins[0], ins[1]
    b = ins[2] if p["bias"] else None
    return dot(x, np.asarray(w).T, b, _acc(p, T), T, where, p.get("__solver__"))


@impl("linear3d")
def _linear3d(p, ins, where, fn=None):
    T = p["T"]
    x, w = ins[0], ins[1]
    b = ins[2] if p["bias"] else None
    B, L, K = x.shape
    y = dot(x.reshape(B * L, K), np.asarray(w).T, b, _acc(p, T), T, where, p.get("__solver__"))
    return y.reshape(B, L, -1)


@impl("matmul")
def _matmul(p, ins, where, fn=None):
    a, b = ins
    _traced_first(a, b, where)
    T = p["T"]
    if _is_const(a):  # (A @ B) = (B^T @ A^T)^T: the traced operand on the left
        return dot(b.T.copy(), a.T.copy(), None, _acc(p, T), T, where, p.get("__solver__")).T.copy()
    return dot(a, b, None, _acc(p, T), T, where, p.get("__solver__"))


@impl("bmm")
def _bmm(p, ins, where, fn=None):
    a, b = ins
    _traced_first(a, b, where)
    T = p["T"]
    outs = []
    for n in range(a.shape[0]):
        if _is_const(a):
            outs.append(dot(b[n].T.copy(), a[n].T.copy(), None, _acc(p, T), T, where).T)
        else:
            outs.append(dot(a[n], b[n], None, _acc(p, T), T, where))
    return np.stack(outs)


# ---------------------------------------------------------------------------- elementwise
def _binary(op, p, ins, where):
    T = p["T"]
    a, b = ins
    _traced_first(a, b, where)
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    out = op(*np.broadcast_arrays(a, b))
    return F.quantize(np.asarray(out, dtype=object), T, where)


@impl("add")
def _add(p, ins, where, fn=None):
    return _binary(lambda a, b: a + b, p, ins, where)


@impl("sub")
def _sub(p, ins, where, fn=None):
    return _binary(lambda a, b: a - b, p, ins, where)


def _times(a, b):
    if isinstance(a, float) and not isinstance(b, float):
        return const_mul(b, a)
    if isinstance(b, float) and not isinstance(a, float):
        return const_mul(a, b)
    return act_mul(a, b)


@impl("mul")
def _mul(p, ins, where, fn=None):
    return _binary(np.frompyfunc(_times, 2, 1), p, ins, where)


@impl("relu", "relu2d", "relu3d")
def _relu(p, ins, where, fn=None):
    x = ins[0]
    out = F._map(x, lambda v: max(float(v), 0.0) if isinstance(v, float) else v.relu())
    return F.quantize(out, p["T"], where)


# ---------------------------------------------------------------------------- normalisation
def _bn(p, ins, where, axis):
    """``Z = T(x * scale + offset)``, as the kernel computes it. With constant statistics both are inputs
    (``norm.bn_fold``: exact values of their types); with run-time statistics the kernel's ``stat`` loop
    computes the scale in float32 at run time, here at compile time with the same float32 steps, and
    ``(x - mean) * scale + beta == x * scale + (beta - mean * scale)`` exactly (every step of the kernel
    is exact before the final store; the offset is exact in float64, < 53 bits)."""
    from ...kernels.nn.norm import bn_scale_type

    T = p["T"]
    if p.get("const_scale"):
        x, scale, offset = ins
    else:
        x, gamma, beta, mean, var = ins
        eps = np.float32(p.get("eps", 1e-5))
        scale32 = np.float32(gamma).astype(np.float32) / np.sqrt(np.asarray(var, dtype=np.float32) + eps)
        scale = F.constant(scale32.astype(np.float64), bn_scale_type(p.get("acc")))
        offset = np.asarray(beta, dtype=np.float64) - np.asarray(mean, dtype=np.float64) * scale
    out = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        c = idx[axis]
        out[idx] = _plus(const_mul(x[idx], float(scale[c])), float(offset[c]))
    return F.quantize(out, T, where)


def _plus(v, c: float):
    return v + c if c != 0.0 else v


@impl("batchnorm1d_2d")
def _bn2d(p, ins, where, fn=None):
    return _bn(p, ins, where, 1)


@impl("batchnorm1d_3d")
def _bn3d(p, ins, where, fn=None):
    return _bn(p, ins, where, 1)


@impl("batchnorm_channels_last")
def _bn_cl(p, ins, where, fn=None):
    return _bn(p, ins, where, 2)


# ---------------------------------------------------------------------------- softmax
@impl("softmax")
def _softmax(p, ins, where, fn):
    x = ins[0]
    rows = x.reshape(-1, x.shape[-1])
    return softmax_rows(rows, p["T"], where, fn).reshape(x.shape)


@impl("log_softmax")
def _log_softmax(p, ins, where, fn):
    x = ins[0]
    dim = p.get("dim", -1) % x.ndim
    xt = np.moveaxis(x, dim, -1)
    rows = xt.reshape(-1, xt.shape[-1])
    out = log_softmax_rows(rows, p["T"], where, fn).reshape(xt.shape)
    return np.ascontiguousarray(np.moveaxis(out, -1, dim))


# ---------------------------------------------------------------------------- wiring
@impl("reshape")
def _reshape(p, ins, where, fn=None):
    return ins[0].reshape(tuple(p["shape_out"]))


@impl("transpose")
def _transpose(p, ins, where, fn=None):
    rank = ins[0].ndim
    return np.ascontiguousarray(np.transpose(ins[0], tuple(q % rank for q in p["perm"])))


@impl("concat")
def _concat(p, ins, where, fn=None):
    a, b = (np.asarray(v, dtype=object) for v in ins)
    return np.concatenate([a, b], axis=p["dim"] % a.ndim)


@impl("select")
def _select(p, ins, where, fn=None):
    x = ins[0]
    return np.ascontiguousarray(np.take(x, p["index"] % x.shape[p["dim"] % x.ndim], axis=p["dim"] % x.ndim))


@impl("slice")
def _slice(p, ins, where, fn=None):
    x = ins[0]
    dim = p["dim"] % x.ndim
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(*slice(p["start"], p["stop"], p["step"]).indices(x.shape[dim]))
    return np.ascontiguousarray(x[tuple(idx)])


@impl("repeat_cls")
def _repeat_cls(p, ins, where, fn=None):
    cls = np.asarray(ins[0], dtype=object)
    return np.ascontiguousarray(np.broadcast_to(cls, (p["B"], 1, cls.shape[-1])))


@impl("broadcast_to")
def _broadcast_to(p, ins, where, fn=None):
    return np.ascontiguousarray(np.broadcast_to(np.asarray(ins[0], dtype=object), tuple(p["shape_out"])))
