"""Fully unrolled reductions that the HLS C++ sums as a balanced adder tree (and the estimator counts so).

A loop marked for full unrolling whose body does ``acc = ACC(acc + term)`` on a scalar ``acc`` (and
touches ``acc`` nowhere else) is, in the C++, ``terms[0] = acc; terms[1 + k] = ACC(term_k)`` in the loop
and ``acc = allo_tree_sum(terms)`` after it: ceil(log2(n + 1)) adder levels instead of n in a row.
That is the same result bit for bit only where addition in ACC is associative:

- integers: two's complement sums wrap, exact modulo 2**bits;
- fixed point with WRAP overflow, when storing ``acc + term`` into ACC rounds the same as storing
  ``term``: ``acc`` is on ACC's grid, so TRN (floor) and RND (floor of x + half an LSB) of ``acc + term``
  are ``acc`` plus the rounding of ``term``, and no rounding at all happens when the term has no more
  fraction bits than ACC. Modes that round toward zero or to even depend on the running sum.

A saturating accumulator (the order decides where it clips), the other rounding modes, and float sums
(reassociation changes the rounding, and llvm and csim must stay bit-identical) keep the chain, with
the reason (``Reduction.why``) written next to the loop in the C++.

Loops that Vitis unrolls without being told (inside a pipelined loop) keep their chain in the C++, and
Vitis balances integer and fixed-point chains there itself; only an explicit full unroll is rewritten.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from ..lang.fixed import from_spec
from .loop_info import trip_count

_ADDS = ("allo.fixed_add", "arith.addi", "arith.addf")
_LOADS = ("memref.load", "affine.load")
_STORES = ("memref.store", "affine.store")
TREE_ROUNDING = ("TRN", "RND")  # the rounding modes that commute with adding a value on the grid


@dataclass
class Reduction:
    """``acc = [cast](acc + term)`` in a fully unrolled loop of ``trip`` iterations."""

    loop: ir.Operation
    acc: ir.Value          # the scalar memref
    load: ir.Operation     # the loop's only read of acc
    add: ir.Operation
    term: ir.Value         # the add's other operand
    cast: ir.Operation | None  # the store into acc's type (fixed point)
    store: ir.Operation    # the loop's only write of acc
    trip: int
    tree: bool             # summed as a balanced tree (exact); else kept in order
    why: str = ""          # why the chain is kept (for the C++ comment)

    @property
    def ops(self) -> set:
        """The ops the tree replaces (hashes of their Operations)."""
        return {hash(o) for o in (self.load, self.add, self.cast, self.store) if o is not None}


def fully_unrolled(loop) -> int | None:
    """The trip count of an ``affine.for`` marked ``hls.unroll`` 0 (or >= its trip count), else None."""
    if loop.name != "affine.for" or "hls.unroll" not in loop.attributes:
        return None
    trip = trip_count(loop)
    u = ir.IntegerAttr(loop.attributes["hls.unroll"]).value
    if trip is None or not (u == 0 or u >= trip):
        return None
    return trip


def find_reduction(loop) -> Reduction | None:
    """The scalar reduction of a fully unrolled loop (at least 3 terms), or None."""
    trip = fully_unrolled(loop)
    if trip is None or trip < 3:  # two terms and the initial value: a tree is no shorter than the chain
        return None
    block = loop.regions[0].blocks[0]
    ops = [o.operation for o in block.operations]
    pos = {hash(o): k for k, o in enumerate(ops)}
    for load in ops:
        if load.name not in _LOADS or ir.MemRefType(load.operands[0].type).rank != 0:
            continue
        acc = load.operands[0]
        if _inside(acc, loop):
            continue
        r = _chain(load, acc, ops, pos, loop, trip)
        if r is not None:
            return r
    return None


def _chain(load, acc, ops, pos, loop, trip) -> Reduction | None:
    add = _only_user(load.results[0])
    if add is None or add.name not in _ADDS or hash(add) not in pos:
        return None
    term = add.operands[1] if add.operands[0] == load.results[0] else add.operands[0]
    if term == load.results[0]:
        return None
    nxt = _only_user(add.results[0])
    cast = None
    if nxt is not None and nxt.name == "allo.fixed_cast":
        cast, nxt = nxt, _only_user(nxt.results[0])
    store = nxt
    if store is None or store.name not in _STORES or store.operands[1] != acc or hash(store) not in pos:
        return None
    if cast is not None and hash(cast) not in pos:
        return None
    if not pos[hash(load)] < pos[hash(add)] < pos[hash(store)]:
        return None
    users = [u.owner for u in acc.uses if _inside_op(u.owner, loop)]
    if len(users) != 2:  # the load and the store only: no other read or write of acc in the loop
        return None
    tree, why = _associative(add, cast)
    return Reduction(loop, acc, load, add, term, cast, store, trip, tree, why)


def _associative(add, cast) -> tuple[bool, str]:
    if add.name == "arith.addf":
        return False, ("float sum kept in order: reassociating it would change its rounding (llvm and csim "
                       "stay bit-identical)")
    if add.name == "arith.addi":
        return True, ""
    if cast is None:
        return False, "fixed-point sum without a store into the accumulator type: kept in order"
    acc_t, sum_t = from_spec(ir.StringAttr(cast.attributes["type"]).value), \
        from_spec(ir.StringAttr(add.attributes["type"]).value)
    if not acc_t.is_fixed:
        return False, f"sum stored into {acc_t}: kept in order"
    if acc_t.o != "WRAP":
        return False, (f"AP_{acc_t.o} accumulator {acc_t.ap_type()}: summed in order, as saturation depends "
                       "on the running sum (no adder tree)")
    if sum_t.frac > acc_t.frac and acc_t.q not in TREE_ROUNDING:
        return False, (f"AP_{acc_t.q} rounding of {acc_t.ap_type()} depends on the running sum: summed in order "
                       "(no adder tree)")
    return True, ""


def _only_user(v):
    users = [u.owner for u in v.uses]
    if len(users) != 1:
        return None
    o = users[0]
    return getattr(o, "operation", o)


def _inside_op(op, loop) -> bool:
    o = getattr(op, "operation", op)
    while o is not None:
        if o == loop:
            return True
        o = o.parent
        o = getattr(o, "operation", o) if o is not None else None
        if o is not None and o.name == "func.func":
            return False
    return False


def _inside(value, loop) -> bool:
    owner = value.owner
    if isinstance(owner, ir.Block):
        return _inside_op(owner.owner, loop)
    return _inside_op(owner, loop)
