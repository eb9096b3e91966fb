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
  each giving the type of that node's output (and weights). A node name wins over an op kind.

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


def make_precision(p, node_names=()) -> Precision:
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
            out.by_kind[k] = t
    return out


def _read(v, what):
    try:
        return parse_precision(v)
    except (ValueError, TypeError) as e:
        raise AlloError(f"{what}: {e}") from None
