"""Quantisation-aware training to fixed point, bit-exact with what ``from_pytorch(precision=)`` compiles.

``FixedFakeQuant(model, precision)`` runs the graph the compiler lowers (the same ``torch.export``,
the same channels-last BatchNorm fusion and the same BatchNorm-into-linear folding) node by node in
torch float64, quantising exactly where the compiler's fixed-point kernels do and with the type's own
rounding and overflow modes (TRN/WRAP unless the type says otherwise):

- user inputs: float32, then into their node's type;
- constants (weights, biases, BatchNorm parameters, the folded linear weights, the class token, the
  reciprocal that replaces a division by a constant): rounded to float32 as the compiler holds them,
  then into the type of the node that reads them;
- a node reading a tensor of another type converts it first (mixed precision);
- ``linear``/``matmul``/``bmm``: the accumulator (``precision["accum"]``, else the node's own type)
  starts at the bias and takes every product in order, each sum stored into the accumulator type;
  the result is stored into the node's type;
- ``add``/``sub``/``mul``: exact, then stored; ``relu`` and layout ops: no rounding;
- BatchNorm left unfolded (not next to a linear), constant statistics: per-channel
  ``scale = gamma / sqrt(var + eps)`` and ``offset = beta - mean * scale`` computed in float64 and
  rounded to nearest into the accumulator type and the offset's type (``kernels.nn.norm.bn_fold``, the
  compiler's own function), then ``x * scale + offset`` stored (run-time statistics: the scale in
  float32 into the accumulator type, then ``(x - mean) * scale + beta`` stored);
- ``softmax``/``log_softmax``: the kernels' own lookup tables (``kernels.nn.fixed_softmax.Plan``),
  indexed exactly as the kernels index them.

Gradients use the straight-through estimator: every rounding passes the gradient unchanged, a
kernel whose value comes from integer arithmetic or tables (accumulations, softmax) takes the gradient
of its float counterpart on the quantised inputs. float64 holds every intermediate value exactly
while it has at most 53 significant bits (16-bit types with 32-bit accumulators use under 50);
wider types are refused with an error rather than approximated.

The graph is exported for one batch size (``batch_size``, as the compiler does); other batches are
padded and split. BatchNorm uses its running statistics (the QAT fine-tune freezes them: the
compiler folds them into constants).
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..lang.errors import AlloError
from ..lang.fixed import round_scaled
from ..lang.types import DType, Fixed

aten = torch.ops.aten
EXACT_BITS = 53  # float64's significand


# ---------------------------------------------------------------------------------------- rounding
def quantize_value(x: torch.Tensor, t: Fixed) -> torch.Tensor:
    """``x`` (float64) converted to ``t`` with its quantisation and overflow modes, as a float64 value.

    The rules of ``allo_ext.lang.fixed.quantize`` (ap_fixed's double constructor), the same code
    (``round_scaled``) run on torch tensors: torch's own fake_quantize ops round half to even, clamp
    instead of wrapping and compute in float32, none of which is what the compiler does."""
    x = torch.nan_to_num(x.to(torch.float64), nan=0.0)
    y = torch.ldexp(x, torch.tensor(float(t.frac), dtype=torch.float64))
    r = round_scaled(y, t, xp=torch)
    return torch.ldexp(r, torch.tensor(float(-t.frac), dtype=torch.float64))


def fake_quant(x: torch.Tensor, t: Fixed) -> torch.Tensor:
    """``quantize_value`` forward, identity gradient (straight-through estimator)."""
    return _ste(x, quantize_value(x.detach(), t))


def _ste(grad_path: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass, the gradient of ``grad_path`` in the backward pass."""
    if not grad_path.requires_grad:
        return value
    return grad_path + (value - grad_path).detach()


def _check_exact(bits: int, what: str):
    if bits > EXACT_BITS:
        raise AlloError(f"fixed-point QAT: {what} needs {bits} significant bits, more than float64's {EXACT_BITS}; "
                        "the fake-quantised forward could not be bit-exact (use types of at most ~24 bits with "
                        "accumulators of at most ~48)")


# ---------------------------------------------------------------------------------------- values
@dataclass
class Val:
    """A tensor computed at run time, holding values of ``dtype`` exactly (float64)."""
    t: torch.Tensor
    dtype: DType


@dataclass
class Const:
    """A compile-time constant (parameter, buffer or folded value) as the compiler holds it: float32."""
    t: torch.Tensor


def _const32(t: torch.Tensor) -> Const:
    return Const(t.to(torch.float32))


# ---------------------------------------------------------------------------------------- the graph
VIEW_OPS = {"view", "reshape", "unsafe_view", "view_copy", "unflatten", "flatten", "squeeze", "unsqueeze"}
IDENTITY_OPS = {"contiguous", "clone", "alias", "detach", "lift_fresh_copy", "dropout", "to_copy", "to"}
COPY_OPS = {"transpose", "permute", "t", "expand", "cat", "select", "slice"}


def _name(target) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return target._opname
    return getattr(target, "__name__", str(target))


class FixedFakeQuant(torch.nn.Module):
    """``model`` as ``from_pytorch(model, x, target="llvm", precision=precision)`` computes it, in torch,
    differentiable (STE) with respect to ``model``'s parameters. ``n_particles``/``n_features`` (or
    ``example``) give the per-jet input shape. Calling it returns the compiled model's outputs
    (float64) for any batch size."""

    def __init__(self, model: torch.nn.Module, precision, example: torch.Tensor | None = None,
                 batch_size: int = 256):
        super().__init__()
        from ..frontend.compile import export
        from ..frontend.fusion import fuse_channels_last_batchnorm
        from ..frontend.precision import make_precision

        if example is None:
            cfg = getattr(model, "config", None)
            if cfg is None:
                raise AlloError("FixedFakeQuant needs example= (a (B, ...) input) for a model without .config")
            example = torch.zeros(1, cfg.n_particles, cfg.n_features)
        example = torch.as_tensor(example)
        self.model = model
        self.batch_size = int(batch_size)
        self.item_shape = tuple(example.shape[1:])
        xs = torch.zeros((self.batch_size,) + self.item_shape, dtype=example.dtype)
        was = model.training
        model.eval()
        try:
            self.ep = export(model, (xs,), _stacklevel=2)
        finally:
            model.train(was)
        self.graph = self.ep.graph
        fuse_channels_last_batchnorm(self.graph)
        names = [n.name for n in self.graph.nodes]
        self.precision = make_precision(precision, names)
        if not self.precision.is_fixed:
            raise AlloError(f"FixedFakeQuant: precision {precision!r} has no fixed-point type; nothing to quantise")
        params = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        self.sources = {}  # placeholder -> (kind, model attribute name)
        self.user_inputs = []
        consts = getattr(self.ep, "constants", {})
        for spec in self.ep.graph_signature.input_specs:
            if spec.target is None:
                self.user_inputs.append(spec.arg.name)
            elif spec.target in params:
                self.sources[spec.arg.name] = ("param", spec.target)
            elif spec.target in buffers:
                self.sources[spec.arg.name] = ("buffer", spec.target)
            elif spec.target in consts:
                self.sources[spec.arg.name] = ("const", spec.target)
            else:
                raise AlloError(f"FixedFakeQuant: exported input {spec.arg.name} ({spec.target}) is not a parameter "
                                "or buffer of the model")
        self.folds = self._plan_folds()

    # ------------------------------------------------------------------------------ BatchNorm folding
    def _plan_folds(self) -> list:
        """The compiler's ``fold_batchnorm_into_linear`` rewrite applied to the graph (the same pattern
        tests and names), recording how to compute each new constant from live parameters."""
        from ..frontend import fusion

        shapes = {}
        for n in self.graph.nodes:
            if n.op == "placeholder" and n.name in self.sources:
                shapes[n.name] = np.zeros(tuple(n.meta["val"].shape), np.float32)
        consts = dict(shapes)  # the compiler's helpers only read names and shapes for the pattern
        folds = []
        graph = self.graph
        for bn in list(graph.nodes):
            if fusion._bn_params(bn, consts) is None:
                continue
            src = bn.args[0]
            lin = fusion._const_linear(src, consts) if isinstance(src, torch.fx.Node) else None
            bn_args = self._bn_arg_names(bn)
            if lin is not None and len(src.users) == 1:
                w, b = src.args[1].name, (src.args[2].name if len(src.args) > 2 and src.args[2] is not None else None)
                wn = fusion._new_const(graph, consts, f"{src.name}_bn_w", np.zeros(consts[w].shape, np.float32))
                bnode = fusion._new_const(graph, consts, f"{src.name}_bn_b",
                                          np.zeros(consts[w].shape[:1], np.float32))
                folds.append(("after", wn.name, bnode.name, w, b, bn_args))
                src.args = (src.args[0], wn, bnode)
                bn.replace_all_uses_with(src)
                graph.erase_node(bn)
                continue
            users = list(bn.users)
            lins = [fusion._const_linear(u, consts) for u in users]
            if users and all(x is not None for x in lins):
                for u in users:
                    w = u.args[1].name
                    b = u.args[2].name if len(u.args) > 2 and u.args[2] is not None else None
                    wn = fusion._new_const(graph, consts, f"{u.name}_bn_w", np.zeros(consts[w].shape, np.float32))
                    bnode = fusion._new_const(graph, consts, f"{u.name}_bn_b",
                                              np.zeros(consts[w].shape[:1], np.float32))
                    folds.append(("before", wn.name, bnode.name, w, b, bn_args))
                    u.args = (bn.args[0], wn, bnode)
                graph.erase_node(bn)
        return folds

    @staticmethod
    def _bn_arg_names(bn):
        if bn.target == torch.ops.allo_ext.batch_norm_channels_last.default:
            _x, w, b, mean, var, eps = bn.args
        else:
            _x, w, b, mean, var, _training, _momentum, eps = bn.args[:8]
        nm = [a.name if isinstance(a, torch.fx.Node) else None for a in (w, b, mean, var)]
        return (*nm, float(eps))

    def _folded(self, env: dict):
        """The folded constants as the compiler computes them (float64, rounded once to float32), from
        the live parameters so that gradients reach the linear and the norm."""
        for kind, wn, bnn, w, b, (g, beta, mean, var, eps) in self.folds:
            W = env[w].t.double()
            c = env[mean].t.shape[0]
            gam = env[g].t.double() if g else torch.ones(c, dtype=torch.float64)
            bet = env[beta].t.double() if beta else torch.zeros(c, dtype=torch.float64)
            scale = gam / torch.sqrt(env[var].t.double() + eps)
            shift = bet - env[mean].t.double() * scale
            bias = env[b].t.double() if b else torch.zeros(W.shape[0], dtype=torch.float64)
            if kind == "after":
                env[wn] = _const32(scale[:, None] * W)
                env[bnn] = _const32(scale * bias + shift)
            else:
                env[wn] = _const32(W * scale[None, :])
                env[bnn] = _const32(W @ shift + bias)

    # ------------------------------------------------------------------------------ forward
    def _live(self, name: str) -> torch.Tensor:
        kind, target = self.sources[name]
        if kind == "param":
            return self.model.get_parameter(target)
        if kind == "buffer":
            return self.model.get_buffer(target)
        return self.ep.constants[target]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x)
        if tuple(x.shape[1:]) != self.item_shape:
            raise AlloError(f"FixedFakeQuant: expected input of shape (B, {', '.join(map(str, self.item_shape))}), "
                            f"got {tuple(x.shape)}")
        n = x.shape[0]
        outs = []
        for start in range(0, n, self.batch_size):
            part = x[start:start + self.batch_size].to(torch.float32)
            m = part.shape[0]
            if m < self.batch_size:
                part = torch.cat([part, part.new_zeros((self.batch_size - m,) + self.item_shape)])
            outs.append(self._run(part)[:m])
        return torch.cat(outs) if outs else torch.zeros((0,))

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        env: dict = {}
        for name in self.sources:
            env[name] = _const32(self._live(name))
        self._folded(env)
        result = None
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if node.name in self.user_inputs:
                    t = self.precision.for_node(node)
                    env[node.name] = Val(fake_quant(x.double(), t), t) if t.is_fixed else Val(x.double(), t)
                continue
            if node.op == "output":
                out = node.args[0]
                if isinstance(out, (tuple, list)):
                    if len(out) != 1:
                        raise AlloError(f"FixedFakeQuant: the model returns {len(out)} tensors; fixed-point QAT "
                                        "trains through one output (e.g. log-probabilities)")
                    out = out[0]
                result = env[out.name]
                continue
            if node.op != "call_function":
                continue
            env[node.name] = self._node(node, env)
        if isinstance(result, Const):
            return result.t.double()
        return result.t

    def _node(self, node, env):
        def arg(a):
            if isinstance(a, torch.fx.Node):
                return env[a.name]
            if isinstance(a, (list, tuple)):
                return type(a)(arg(v) for v in a)
            return a

        args = [arg(a) for a in node.args]
        kwargs = {k: arg(v) for k, v in node.kwargs.items()}
        name = _name(node.target).lstrip("_") if node.target is not operator.getitem else "getitem"
        if name in ("assert_tensor_metadata", "assert_scalar", "sym_constrain_range_for_size", "assert_async"):
            return None
        if name == "getitem":
            return args[0][args[1]]
        if not _has_val((args, kwargs)) and name not in ("expand", "repeat"):
            # the compiler evaluates ops on constants only with torch at compile time, in float32
            return _const32(node.target(*_unwrap(args), **_unwrap(kwargs)))
        T = self.precision.for_node(node)
        if not T.is_fixed:
            raise AlloError(f"fixed-point QAT: node {node.name} ({_name(node.target)}) computes in {T}; mixed float "
                            "and fixed graphs are not emulated")
        rule = RULES.get(name)
        if rule is None:
            raise AlloError(f"fixed-point QAT has no rule for {_name(node.target)} (node {node.name}); the ops it "
                            f"emulates are {', '.join(sorted(RULES))} and layout ops")
        return rule(self, node, T, *args, **kwargs)

    def acc_type(self, T):
        return self.precision.acc_for(T) or T


def _has_val(x) -> bool:
    if isinstance(x, Val):
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_val(a) for a in x)
    if isinstance(x, dict):
        return any(_has_val(a) for a in x.values())
    return False


def _unwrap(x):
    if isinstance(x, (Val, Const)):
        return x.t
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(a) for a in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def to_type(v, T) -> torch.Tensor:
    """A kernel argument of type ``T``: a run-time value of another type converted (quantised with T's
    modes), a constant quantised from its float32 value."""
    if isinstance(v, Const):
        return fake_quant(v.t.double(), T)
    if v.dtype != T:
        return fake_quant(v.t, T)
    return v.t


# ---------------------------------------------------------------------------------------- rules
RULES: dict = {}


def rule(*names):
    def deco(fn):
        for n in names:
            RULES[n] = fn
        return fn
    return deco


@rule(*IDENTITY_OPS)
def _identity(self, node, T, x, *args, **kwargs):
    if isinstance(x, Val):
        return x
    return Val(to_type(x, T), T)


@rule(*VIEW_OPS)
def _view(self, node, T, x, *args, **kwargs):
    # On the CPU a reshape of a buffer is an alias: it keeps its type (see lowerings._alias_reshape).
    shape = tuple(int(d) for d in node.meta["val"].shape)
    if isinstance(x, Const):
        return _const32(x.t.reshape(shape))
    if not shape or x.t.dim() == 0:
        return Val(to_type(x, T).reshape(shape), T)
    return Val(x.t.reshape(shape), x.dtype)


@rule(*COPY_OPS)
def _copy(self, node, T, *args, **kwargs):
    name = _name(node.target).lstrip("_")
    if name in ("transpose", "permute", "t"):
        x = args[0]
        shape = tuple(x.t.shape)
        if name == "transpose":
            d0, d1 = (d % len(shape) for d in args[1:3])
            perm = list(range(len(shape)))
            perm[d0], perm[d1] = perm[d1], perm[d0]
        elif name == "permute":
            perm = [d % len(shape) for d in args[1]]
        else:
            perm = list(reversed(range(len(shape))))
        moved = [d for d in perm if shape[d] != 1]
        if moved == sorted(moved) and isinstance(x, Val):  # lowered as a reshape: an alias on the CPU
            return Val(x.t.permute(perm), x.dtype)
        return Val(to_type(x, T).permute(perm), T)
    conv = [to_type(a, T) if isinstance(a, (Val, Const)) else
            [to_type(b, T) for b in a] if isinstance(a, (list, tuple)) and a and isinstance(a[0], (Val, Const))
            else a for a in args]
    if name == "expand":
        return Val(conv[0].expand(tuple(int(d) for d in node.meta["val"].shape)), T)
    return Val(node.target(*conv, **kwargs), T)


def _round_only(x: torch.Tensor, t: Fixed) -> torch.Tensor:
    """``x`` rounded to ``t``'s grid with its quantisation mode, no overflow handling."""
    wide = Fixed(min(t.bits + 40, 64), t.frac, t.q, "SAT")
    return quantize_value(x, wide)


def _accumulate(self, T, prods, bias, k_in: int, what: str, total=None) -> torch.Tensor:
    """The fixed-point dot product: ``acc = bias`` (or 0) in the accumulator type, ``acc += p`` for every
    product in order (each sum stored into the accumulator type), the result stored into T.
    ``prods()`` gives the products with the reduction axis last; ``total`` (optional) is their exact
    sum plus the bias, when the caller has it."""
    A = self.acc_type(T)
    _check_exact(max(A.bits, 2 * T.bits) + math.ceil(math.log2(max(k_in, 1))) + 2, f"{what} accumulating {T} in {A}")
    exact_bias = bias is None or (A.frac >= T.frac and A.int_bits >= T.int_bits)
    if A.o == "WRAP" and A.frac >= 2 * T.frac and exact_bias:
        # every partial sum is on A's grid and wrapping is modular: one sum, one wrap
        if total is None:
            p = prods()
            total = p.sum(-1) if bias is None else bias + p.sum(-1)
        return quantize_value(quantize_value(total, A), T)
    p = prods()
    acc = torch.zeros(p.shape[:-1], dtype=torch.float64) if bias is None else \
        quantize_value(bias.expand(p.shape[:-1]), A)
    if A.o == "WRAP" and A.q in ("TRN", "RND"):
        # floor(a + p) = a + floor(p) for a on the grid (also for floor(. + 1/2)): each product rounds
        # on its own and the wrap, being modular, can wait until the end
        return quantize_value(quantize_value(acc + _round_only(p, A).sum(-1), A), T)
    for k in range(p.shape[-1]):
        acc = quantize_value(acc + p[..., k], A)
    return quantize_value(acc, T)


@rule("linear")
def _linear(self, node, T, x, w, b=None):
    xq, wq = to_type(x, T), to_type(w, T)
    bq = to_type(b, T) if b is not None else None
    y = F.linear(xq, wq, bq)  # float64: exact while the bit budget holds (checked in _accumulate)
    with torch.no_grad():
        exact = _accumulate(self, T, lambda: xq.detach().unsqueeze(-2) * wq.detach(),
                            None if bq is None else bq.detach(), wq.shape[-1], node.name, total=y.detach())
    return Val(_ste(y, exact), T)


@rule("matmul", "bmm", "mm")
def _matmul(self, node, T, a, b):
    aq, bq = to_type(a, T), to_type(b, T)
    y = torch.matmul(aq, bq)
    with torch.no_grad():
        exact = _accumulate(self, T, lambda: aq.detach().unsqueeze(-2) * bq.detach().transpose(-1, -2).unsqueeze(-3),
                            None, aq.shape[-1], node.name, total=y.detach())
    return Val(_ste(y, exact), T)


def _ew(self, node, T, a, b, op):
    aq = to_type(a if isinstance(a, (Val, Const)) else _const32(torch.as_tensor(a, dtype=torch.float64)), T)
    bq = to_type(b if isinstance(b, (Val, Const)) else _const32(torch.as_tensor(b, dtype=torch.float64)), T)
    _check_exact(2 * T.bits + 1, f"{node.name}")
    return Val(fake_quant(op(aq, bq), T), T)


@rule("add")
def _add(self, node, T, a, b, alpha=1):
    if alpha != 1:
        b = _mul(self, node, T, b, alpha)
    return _ew(self, node, T, a, b, torch.add)


@rule("sub", "rsub")
def _sub(self, node, T, a, b, alpha=1):
    if "rsub" in str(node.target):
        a, b = b, a
    if alpha != 1:
        b = _mul(self, node, T, b, alpha)
    return _ew(self, node, T, a, b, torch.sub)


@rule("mul")
def _mul(self, node, T, a, b):
    return _ew(self, node, T, a, b, torch.mul)


@rule("div")
def _div(self, node, T, a, b):
    if isinstance(b, Val):
        raise AlloError(f"fixed-point QAT: division by a tensor ({node.name}) has no fixed-point kernel")
    # the compiler multiplies by the reciprocal, computed in float64 and held as float32
    recip = 1.0 / torch.as_tensor(b.t if isinstance(b, Const) else b, dtype=torch.float64)
    return _ew(self, node, T, a, _const32(recip), torch.mul)


@rule("relu")
def _relu(self, node, T, x):
    return Val(torch.relu(to_type(x, T)), T)


def _bn(self, T, x, w, b, mean, var, eps, axis):
    """The fixed BatchNorm kernel. Constant statistics (the compiler's case): ``norm.bn_fold``'s scale and
    offset, computed in float64 from the float32 statistics and rounded to nearest into their types, then
    ``x * scale + offset`` stored into T. Run-time statistics: the scale in float32 into S, then
    ``(x - mean) * scale + beta`` into T."""
    from ..kernels.nn.norm import bn_fold, bn_scale_type

    acc = self.precision.acc_for(T)
    S = bn_scale_type(acc)
    c = mean.t.shape[0]
    w = w if w is not None else Const(torch.ones(c))
    b = b if b is not None else Const(torch.zeros(c))
    xq = to_type(x, T)
    shape = [1] * xq.dim()
    shape[axis] = c
    if all(isinstance(v, Const) for v in (w, b, mean, var)):
        g, bt, mu, vr = (v.t.to(torch.float32).double() for v in (w, b, mean, var))
        fold = bn_fold(T, acc, *(v.detach().numpy() for v in (g, bt, mu, vr)), eps)
        # the values are the compiler's (one function); the gradients flow through the float64 expressions
        scale = _ste(g / torch.sqrt(vr + eps), torch.from_numpy(fold.scale))
        offset = _ste(bt - mu * scale, torch.from_numpy(fold.offset))
        _check_exact(max(T.bits - T.frac + S.bits - S.frac, fold.offset_t.bits - fold.offset_t.frac) + 1
                     + T.frac + S.frac, f"BatchNorm at {T} with its scale in {S}")
        y = xq * scale.view(shape) + offset.view(shape)
        return Val(fake_quant(y, T), T)
    g, bt, mu, vr = (to_type(v, T) for v in (w, b, mean, var))
    _check_exact(T.bits + 1 + S.bits + 2, f"BatchNorm at {T} with its scale in {S}")
    scale32 = g.float() / torch.sqrt(vr.float() + torch.tensor(eps, dtype=torch.float32))
    scale = fake_quant(scale32.double(), S)
    y = (xq - mu.view(shape)) * scale.view(shape) + bt.view(shape)
    return Val(fake_quant(y, T), T)


@rule("batch_norm_channels_last")
def _bn_cl(self, node, T, x, w, b, mean, var, eps):
    return _bn(self, T, x, w, b, mean, var, eps, axis=x.t.dim() - 1)


@rule("batch_norm", "native_batch_norm_legit_no_training")
def _bn_plain(self, node, T, x, w, b, mean, var, *rest):
    if "legit" in str(node.target):
        eps = rest[1]
    else:
        if rest[0]:
            raise AlloError(f"fixed-point QAT: {node.name} is a BatchNorm in training mode")
        eps = rest[2]
    out = _bn(self, T, x, w, b, mean, var, eps, axis=1)
    return (out, None, None) if "legit" in str(node.target) else out


def _table(tbl) -> torch.Tensor:
    """A kernel's lookup table as the compiled module holds it: its values quantised to its type."""
    from ..lang import fixed as fx

    return torch.from_numpy(fx.dequantize(fx.quantize(np.asarray(tbl.values, dtype=np.float64), tbl.dtype),
                                          tbl.dtype))


def _softmax_exact(T, xq: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    """The fixed softmax / log_softmax kernel along ``dim`` (``kernels.nn.fixed_softmax``), exactly."""
    from ..kernels.nn.fixed_softmax import Plan

    C = xq.shape[dim]
    p = Plan(T, C, log=log)
    EXP, EXPLO, ROW = _table(p.EXP), _table(p.EXPLO), _table(p.ROW)
    m = xq.amax(dim, keepdim=True)
    d = m - xq  # exact in D
    if p.CLAMP:
        d = torch.clamp(d, max=p.DMAX)
    dk = d * 2.0 ** p.k
    i = torch.floor(dk)
    jl = torch.floor((dk - i) * 2.0 ** p.kl).long()
    i = torch.clamp(i, max=p.n - 1).long()
    e = quantize_value(EXP[i] * EXPLO[jl], p.S)
    total = quantize_value(e.sum(dim, keepdim=True), p.S)  # same grid, modular wrap: the in-order sum
    j = torch.floor((total - 1.0) * 2.0 ** p.kr).long().clamp(0, p.nr - 1)
    r = ROW[j]
    if log:  # held in a wider type at T's fraction, then saturated at T's minimum (never wrapped)
        return torch.clamp(quantize_value(xq - m - r, p.Zw), min=p.ZMIN)
    return quantize_value(e * r, T)


@rule("softmax")
def _softmax(self, node, T, x, dim, *rest):
    xq = to_type(x, T)
    dim = dim % xq.dim()
    with torch.no_grad():
        exact = _softmax_exact(T, xq.detach(), dim, log=False)
    return Val(_ste(torch.softmax(xq, dim), exact), T)


@rule("log_softmax")
def _log_softmax(self, node, T, x, dim, *rest):
    xq = to_type(x, T)
    dim = dim % xq.dim()
    with torch.no_grad():
        exact = _softmax_exact(T, xq.detach(), dim, log=True)
    return Val(_ste(torch.log_softmax(xq, dim), exact), T)
