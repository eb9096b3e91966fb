"""Memories in the estimate: BRAM banks from partitioning, ports, registers."""
from __future__ import annotations

import math
from collections import defaultdict

from torch_mlir import ir

from .costs import BRAM18_SHAPES, LUTRAM_MAX_BITS


# ------------------------------------------------------------------------------------------- memories
class Storage:
    """One memref as hardware: its kind (scalar, registers, ram), banks and ports."""

    def __init__(self, name: str, shape: tuple, bits: int, spec: list, const: bool = False):
        self.name, self.shape, self.bits, self.const = name, tuple(shape), bits, const
        self.spec = spec  # per dim: (kind, factor)
        self.nbanks = [_banks(n, k, f) for n, (k, f) in zip(self.shape, spec)]
        if not self.shape:
            self.kind = "scalar"
        elif all(b == n for b, n in zip(self.nbanks, self.shape)):
            self.kind = "regs"
        else:
            self.kind = "ram"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def banks(self, addr) -> list:
        """Every bank an access to ``addr`` (a tuple, None for an unknown index) may touch."""
        per_dim = []
        for x, n, (k, f), nb in zip(addr, self.shape, self.spec, self.nbanks):
            if nb == 1:
                per_dim.append((0,))
            elif x is None:
                per_dim.append(tuple(range(nb)))
            elif k == "block":
                per_dim.append((x // -(-n // nb),))
            else:  # cyclic, complete
                per_dim.append((x % nb,))
        out = [()]
        for opts in per_dim:
            out = [b + (o,) for b in out for o in opts]
        return out

    def resources(self) -> tuple[int, int, int]:
        """(BRAM18K, LUT, FF) of this buffer."""
        if self.kind == "scalar":
            return 0, 0, 0 if self.const else self.bits
        if self.kind == "regs":
            return (0, 0, 0) if self.const else (0, 0, self.numel * self.bits)
        banks = math.prod(self.nbanks)
        words = -(-self.numel // banks)
        if words * self.bits <= LUTRAM_MAX_BITS:
            return 0, banks * 2 * -(-words // 64) * self.bits, 0
        per_bank = min(-(-self.bits // w) * -(-words // d) for w, d in BRAM18_SHAPES)
        return banks * per_bank, 0, 0


def _banks(n: int, kind: str, factor: int) -> int:
    if kind == "complete":
        return n
    if kind in ("cyclic", "block"):
        return max(1, min(int(factor), n))
    return 1


def _partition_specs(func_op) -> dict[str, dict[int, tuple]]:
    """buffer name -> {dim (1-based, 0 = all): (kind, factor)} from the function's ``hls.partition``."""
    out: dict = defaultdict(dict)
    if "hls.partition" not in func_op.attributes:
        return out
    for entry in ir.ArrayAttr(func_op.attributes["hls.partition"]):
        d = ir.DictAttr(entry)
        name = ir.StringAttr(d["name"]).value
        out[name][ir.IntegerAttr(d["dim"]).value] = (ir.StringAttr(d["kind"]).value, ir.IntegerAttr(d["factor"]).value)
    return out


def _spec_for(rank: int, entries: dict) -> list:
    spec = [("none", 1)] * rank
    for dim, kf in entries.items():  # insertion order: later entries override earlier ones
        for d in (range(rank) if dim == 0 else [dim - 1]):
            spec[d] = kf
    return spec


def _elem_bits(t) -> int:
    if isinstance(t, ir.FloatType):
        return ir.FloatType(t).width
    if isinstance(t, ir.IntegerType):
        return ir.IntegerType(t).width
    return 64  # index
