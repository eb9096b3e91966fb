"""``precision=`` of ``from_pytorch``: which type each node of the graph computes in.

- ``None`` (default): float32 everywhere, as before.
- one type: a DType (``Fixed(16, 10)``) or hls4ml's spelling (``"ap_fixed<16,6>"``): activations and
  weights of every node, inputs and outputs.
- a dict: ``"default"`` (as above; float32 if absent), ``"accum"`` (the accumulator of linear, matmul,
  bmm and the batchnorm scale: wider than the activations, e.g. ``"ap_fixed<32,12>"``), and any number
  of node names (``"linear_1"``, as torch.export names them, after the importer's rewrites: a fused
  channels-last BatchNorm is ``batch_norm_channels_last_default*``, a BatchNorm folded into a linear
  is gone; ``allo_ext.quant.calibrate`` reports them)
  or op kinds (``"linear"``, ``"softmax"``, ``"bmm"``: the aten op without namespace and overload),
  each giving the type of that node's output (and weights). A node name wins over an op kind. A key
  that is neither (a typo, or the name of a node the rewrites removed) is an error naming the nodes
  that exist: it would otherwise type nothing, silently. Every importer (llvm/csim/handshake rtl and
  the latency route's da4ml tracer) resolves the dict in ``importer.resolve_precision``, after the rewrites.

Where a node reads a tensor of another type, a conversion (quantised with the destination's modes)
is inserted in front of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..lang.errors import AlloError
from ..lang.types import DType, float32, parse_precision


@dataclass
class Precision:
    default: DType = float32
    accum: DType | None = None
    by_node: dict = field(default_factory=dict)
    by_kind: dict = field(default_factory=dict)

    @property
    def is_fixed(self) -> bool:
        return self.default.is_fixed or any(t.is_fixed for t in [*self.by_node.values(), *self.by_kind.values()])

    def for_node(self, node) -> DType:
        if node is None:
            return self.default
        if node.name in self.by_node:
            return self.by_node[node.name]
        kind = op_kind(node.target)
        return self.by_kind.get(kind, self.default)

    def acc_for(self, t: DType):
        return self.accum if (t.is_fixed and self.accum is not None) else None


def op_kind(target) -> str:
    """``aten.linear.default`` -> ``linear``; ``aten._softmax.default`` -> ``softmax``."""
    import torch

    if isinstance(target, torch._ops.OpOverload):
        return target._opname.lstrip("_")
    return str(getattr(target, "__name__", target)).lstrip("_")


def make_precision(p, node_names=(), graph=None, removed=()) -> Precision:
    """``node_names``: the names a key may give. With ``graph`` (the graph after the importer's rewrites)
    the keys are checked: a key that is neither a node of ``graph`` nor an op kind (of a node in it, or of
    an aten/allo_ext op) is refused, naming the nodes that exist; ``removed`` are the names the rewrites
    took away (folded or fused nodes), which get their own message."""
    if p is None:
        return Precision()
    if isinstance(p, Precision):
        return p
    if isinstance(p, (str, DType)):
        return Precision(default=_read(p, "precision"))
    if not isinstance(p, dict):
        raise AlloError(f"precision= takes a type (Fixed(16, 10) or 'ap_fixed<16,6>'), or a dict of them keyed by "
                        f"'default', 'accum', node names or op kinds; got {p!r}")
    out = Precision()
    names = set(node_names)
    for k, v in p.items():
        t = _read(v, f"precision[{k!r}]")
        if k == "default":
            out.default = t
        elif k in ("accum", "acc", "accumulator"):
            out.accum = t
        elif k in names:
            out.by_node[k] = t
        else:
            if graph is not None:
                _check_kind(k, graph, set(removed))
            out.by_kind[k] = t
    return out


def _check_kind(k, graph, removed: set):
    """A dict key that names no node must be an op kind; else it is a typo or a node the rewrites took away,
    and treating it as an op kind would silently type nothing."""
    import torch

    computed = [n for n in graph.nodes if n.op == "call_function"]
    kinds = {op_kind(n.target) for n in computed}
    if k in kinds:
        return
    if k not in removed:
        for ns in (torch.ops.aten, torch.ops.allo_ext):
            try:
                getattr(ns, k)
                return  # an op kind this graph does not use (one dict for several models)
            except (AttributeError, RuntimeError):
                pass
    import difflib

    names = [n.name for n in graph.nodes if n.op in ("call_function", "placeholder")]
    close = difflib.get_close_matches(k, names, n=4, cutoff=0.6)
    why = ("names a node the importer's rewrites removed (a BatchNorm folded into a neighbouring linear, whose "
           "node then carries the norm's output, or a transpose-BatchNorm-transpose fused into one "
           "'batch_norm_channels_last_default*' node)" if k in removed else
           "is neither a node of the compiled graph nor an op kind")
    raise AlloError(f"precision[{k!r}] {why}; "
                    + (f"closest nodes: {', '.join(close)}; " if close else "")
                    + f"nodes that exist: {', '.join(names)}; op kinds: {', '.join(sorted(kinds))}. "
                    "allo_ext.quant.calibrate(model, x).types lists the nodes as compiled")


def _read(v, what):
    try:
        return parse_precision(v)
    except (ValueError, TypeError) as e:
        raise AlloError(f"{what}: {e}") from None
