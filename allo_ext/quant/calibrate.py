"""``calibrate(model, sample)``: integer bits per tensor so that the sample never overflows.

The model is exported as ``from_pytorch`` exports it, the importer's rewrites applied (BatchNorms folded
into linears, channels-last BatchNorms fused: ``lowered_graph``), and that graph, the one compiled, run
on the sample node by node (``torch.fx.Interpreter``), recording each node's largest magnitude. Each
node then gets ``Fixed(bits, frac)`` with just enough integer bits (sign included) for that magnitude and the
magnitudes of the tensors it reads (a kernel computes its inputs and weights in its one type), plus
``margin`` bits, and the remaining bits as fraction. Keys are the node names ``from_pytorch``'s
``precision=`` dict accepts (``Calibration.precision()`` builds that dict).

The report counts, per tensor, the sample values that would overflow a reference type (by default
hls4ml's ``ap_fixed<16,6>``) and the calibrated type (0 by construction).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..lang.types import DType, Fixed, parse_precision


@dataclass
class Calibration:
    types: dict = field(default_factory=dict)        # node name -> Fixed
    max_abs: dict = field(default_factory=dict)      # node name -> float: its own values and what it reads
    own_max: dict = field(default_factory=dict)      # node name -> float: its own values only
    overflows: dict = field(default_factory=dict)    # node name -> (count at the reference type, count at ours, size)
    reference: DType | None = None
    accum: DType | None = None

    def precision(self, default=None, accum=None) -> dict:
        """A ``precision=`` dict for ``from_pytorch``: the calibrated type of every node."""
        out = dict(self.types)
        if default is not None:
            out["default"] = default
        elif self.reference is not None:
            out["default"] = self.reference
        acc = accum if accum is not None else self.accum
        if acc is not None:
            out["accum"] = acc
        return out

    def report(self) -> str:
        lines = [f"{'tensor':32s} {'max|x|':>10s} {'type':>24s} {'overflow@ref':>13s} {'overflow':>9s} {'size':>8s}"]
        for n, t in self.types.items():
            ref, ours, size = self.overflows[n]
            lines.append(f"{n:32s} {self.max_abs[n]:10.4g} {t.ap_type():>24s} {ref:13d} {ours:9d} {size:8d}")
        return "\n".join(lines)


def int_bits_for(max_abs: float, signed: bool = True) -> int:
    """Integer bits (sign included) so that every |x| <= max_abs is inside the range."""
    if max_abs <= 0:
        return 1
    i = math.floor(math.log2(max_abs)) + 1  # 2**(i-1) <= max_abs < 2**i ... needs i magnitude bits
    return i + (1 if signed else 0)


def calibrate(model: torch.nn.Module, sample, bits: int = 16, margin: int = 0, reference="ap_fixed<16,6>",
              accum="ap_fixed<32,12>", q: str = "TRN", o: str = "WRAP") -> Calibration:
    """Per-node fixed-point types of ``bits`` bits for ``model`` on ``sample`` (a batch of inputs), with
    quantisation mode ``q`` and overflow mode ``o`` (ap_fixed's, e.g. ``q="RND"``: see ``Fixed``).

    ``q="RND"`` matters more than any integer bit: TRN rounds every stored value toward minus
    infinity, a bias of half a last bit that linears sum over their inputs and BatchNorms (folded
    into the linears) amplify. ``o="SAT"`` bounds the damage of a value beyond the sample's range."""
    sample = torch.as_tensor(sample)
    seen: dict = {}

    class Rec(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                v = out.detach()
                seen.setdefault(n.name, []).append(v.abs().max().item() if v.numel() else 0.0)
                seen.setdefault("__vals__" + n.name, []).append(v)
            return out

    # the exported graph is specialised to its batch size: one export for full chunks, one for the rest
    inputs: dict = {}  # node -> names of the nodes it reads
    n = sample.shape[0]
    chunk = min(n, 512)
    whole = n - n % chunk
    with torch.no_grad():
        for lo, hi, size in ((0, whole, chunk), (whole, n, n - whole)):
            if hi <= lo:
                continue
            graph, consts = lowered_graph(model, sample[lo:lo + size])
            for node in graph.nodes:
                inputs[node.name] = [a.name for a in node.all_input_nodes]
            places = [p.name for p in graph.nodes if p.op == "placeholder"]
            for i in range(lo, hi, size):
                feed = iter([sample[i:i + size]])
                args = [torch.from_numpy(np.asarray(consts[p])) if p in consts else next(feed) for p in places]
                Rec(torch.nn.Module(), graph=graph).run(*args)
    ref = parse_precision(reference) if reference is not None else None
    cal = Calibration(reference=ref, accum=parse_precision(accum) if accum is not None else None)
    for name, vals in seen.items():
        if name.startswith("__vals__"):
            continue
        # a kernel computes its inputs, weights and output in the node's one type: cover them all
        m = max([float(max(vals))] + [float(max(seen[a])) for a in inputs.get(name, ()) if a in seen])
        ib = min(bits - 1, int_bits_for(m) + margin)
        t = Fixed(bits, bits - ib, q=q, o=o)
        allv = torch.cat([v.reshape(-1) for v in seen["__vals__" + name]]).numpy().astype(np.float64)
        over_ours = int(((allv > t.max) | (allv < t.min)).sum())
        over_ref = int(((allv > ref.max) | (allv < ref.min)).sum()) if ref is not None else 0
        cal.types[name] = t
        cal.max_abs[name] = m
        cal.own_max[name] = float(max(vals))
        cal.overflows[name] = (over_ref, over_ours, allv.size)
    return cal


def lowered_graph(model: torch.nn.Module, example):
    """The graph ``from_pytorch`` lowers for ``example`` (exported, then the importer's rewrites:
    channels-last BatchNorm fused, BatchNorms folded into their linears) and its constants
    (placeholder name -> array). Recording the exported graph instead would miss what the rewrites
    change: a linear with a BatchNorm folded in outputs the norm's values, not its own."""
    from ..frontend.compile import export
    from ..frontend.importer import graph_constants, rewrite_graph

    ep = export(model, example, _stacklevel=3)
    consts = graph_constants(ep)
    rewrite_graph(ep.graph, consts)
    return ep.graph, consts
