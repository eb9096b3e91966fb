"""One kernel as one C++ function: signature and interface pragmas, the returned buffers bound to
output parameters, blocks, memory, calls, loops and ifs. Scalar ops are printed by :class:`ScalarOps`."""
from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import numpy as np
from torch_mlir import ir

from ...lang.errors import AlloError
from ...lang.fixed import from_spec
from ...lang.types import DType
from ...passes.reduction_tree import find_reduction
from ...passes.safety import TRAP
from . import cpp
from .common import (DROPPED, EmitError, Mem, Port, attr_int, attr_str, ctype_bytes, is_barrier, is_memref, loc_str,
                     memref_elem, memref_shape, param_decl)
from .cpp import E
from .fixed_ops import FixedOps
from .scalar_ops import ScalarOps

if TYPE_CHECKING:
    from .emit import ModuleEmitter


class FunctionEmitter(FixedOps, ScalarOps):
    def __init__(self, me: "ModuleEmitter", sym: str):
        self.me, self.sym = me, sym
        self.f = me.funcs[sym]
        self.cpp_name = me.cpp_names[sym]
        self.source = me.source_of(sym) or "?"
        self.is_top = sym == me.top
        self.vals: dict = {}       # ir.Value -> E
        self.fx: dict = {}         # ir.Value -> Fixed: raw integers in MLIR that are ap_fixed values here
        self.mems: dict = {}       # ir.Value -> Mem
        self.nonneg: set = set()   # index values known to be >= 0 (loop ivs with non-negative bounds)
        self.names: set = set(me.reserved)  # non-loop names declared so far
        self.ivs_ever: set = set()
        self.ivs_active: list = []
        self.labels: set = set()
        self.ntemp = 0
        self.indent = 1
        self.loc = self.source
        self.ports: list[Port] = []
        self.bound: dict = {}      # returned value -> output Mem (the buffer *is* the parameter)
        self.unbound_out: dict = {}  # result index -> output Mem that the return copies into
        self.block_pos: dict = {}
        self.block_barriers: list = []
        self.partitions = self._partitions()
        self.trees: dict = {}      # op hash -> (Reduction, terms Mem, index text) of the adder trees being emitted

    # -- output and names
    def line(self, text: str):
        self.me.line("  " * self.indent + text, self.sym, self.loc)

    def pragma(self, text: str):
        self.me.line(f"#pragma HLS {text}", self.sym, self.loc)

    def fresh(self, base: str) -> str:
        n = cpp.unique(cpp.sanitize(base), self.names | self.ivs_ever)
        self.names.add(n)
        return n

    def fresh_iv(self, base: str) -> str:
        n = cpp.unique(cpp.sanitize(base), self.names | set(self.ivs_active))
        self.ivs_ever.add(n)
        return n

    def temp(self) -> str:
        while True:
            n = f"v{self.ntemp}"
            self.ntemp += 1
            if n not in self.names and n not in self.ivs_ever:
                self.names.add(n)
                return n

    def err(self, op, msg: str) -> EmitError:
        where = loc_str(op.location) or self.source
        return EmitError(f"{where}: in kernel '{self.sym}': {msg}")

    def ct(self, t, unsigned=False) -> str:
        try:
            return cpp.scalar_ctype(t, self.me.needs, unsigned)
        except AlloError as e:
            raise EmitError(f"{self.loc}: in kernel '{self.sym}': {e}") from None

    # -- schedule attributes
    def _partitions(self) -> dict:
        out = {}
        if "hls.partition" in self.f.attributes:
            for d in ir.ArrayAttr(self.f.attributes["hls.partition"]):
                d = ir.DictAttr(d)
                name = ir.StringAttr(d["name"]).value
                out.setdefault(name, []).append((ir.IntegerAttr(d["dim"]).value, ir.IntegerAttr(d["factor"]).value,
                                                 ir.StringAttr(d["kind"]).value))
        return out

    def partition_pragmas(self, src_name: str, cname: str, port: bool = False):
        for dim, factor, kind in self.partitions.pop(src_name, []):
            if port and self.is_top and self.me.interface == "vitis":
                msg = (f"kernel '{self.sym}': array_partition of '{src_name}' is not emitted: it is an m_axi port of "
                       "the Vitis kernel, which cannot be partitioned (partition a local copy, or use interface='ip')")
                warnings.warn(msg, stacklevel=2)
                self.me.line(f"  // {msg}", self.sym, self.loc)
                continue
            fac = f" factor={factor}" if kind != "complete" else ""
            self.pragma(f"array_partition variable={cname} {kind}{fac} dim={dim}")

    # -- uses and folding
    def nuses(self, v) -> int:
        return sum(1 for u in v.uses if u.owner.operation.name not in DROPPED)

    def set_block(self, ops):
        self.block_pos = {hash(o.operation): k for k, o in enumerate(ops)}
        self.block_barriers = [k for k, o in enumerate(ops) if is_barrier(o.operation)]

    def can_fold(self, op, pos: int) -> bool:
        r = op.results[0]
        uses = [u for u in r.uses if u.owner.operation.name not in DROPPED]
        if len(uses) != 1:
            return False
        user = uses[0].owner.operation
        q = self.block_pos.get(hash(user))
        if q is None or q <= pos or user.name in ("affine.for", "scf.for"):
            return False
        return not any(pos < b < q for b in self.block_barriers)

    def define(self, op, pos: int, expr: E, ctype: str | None = None):
        r = op.results[0]
        if self.nuses(r) == 0:
            return
        if self.can_fold(op, pos):
            self.vals[r] = expr
            return
        name = self.temp()
        ctype = ctype or self.value_ctype(r)
        self.line(f"{ctype} {name} = {expr.text};")
        self.vals[r] = E(name, ctype=ctype)

    def value_ctype(self, r) -> str:
        t = self.fx.get(r)
        return cpp.dtype_ctype(t, self.me.needs) if t is not None else self.ct(r.type)

    def note_fixed(self, r, t):
        if t is not None:
            self.fx[r] = t

    def v(self, value) -> E:
        try:
            return self.vals[value]
        except KeyError:
            raise EmitError(f"{self.loc}: in kernel '{self.sym}': internal error: value {value.get_name()} used "
                            "before it was printed") from None

    def mem(self, value, op) -> Mem:
        m = self.mems.get(value)
        if m is None:
            raise self.err(op, f"memref operand {value.get_name()} comes from an op the HLS emitter does not know")
        return m

    # -- function
    def emit(self):
        names, arg_dtypes, res_dtypes = self.me.signature(self.sym)
        entry = self.f.regions[0].blocks[0]
        args = list(entry.arguments)
        ops = list(entry.operations)
        ret = ops[-1]
        if ret.operation.name != "func.return":
            raise self.err(ret.operation, "a function must end with func.return")
        params = []
        for k, (a, n) in enumerate(zip(args, names)):
            cname = self.fresh(n)
            dt = arg_dtypes[k] if k < len(arg_dtypes) else None
            if is_memref(a.type):
                shape, elem_t = memref_shape(a.type), memref_elem(a.type)
                elem = cpp.dtype_ctype(dt, self.me.needs) if isinstance(dt, DType) else self.ct(elem_t)
                const = k not in self.me.written[self.sym]
                m = Mem(cname, elem, shape, "array" if shape else "cell", elem_t, const=const, fxt=_fx(dt))
                self.mems[a] = m
                p = Port(cname, elem, shape, True, False, dt, const=const)
            else:
                # Only the top keeps the declared scalar type (its callers are the host or the csim wrapper);
                # callees take the signless representation their callers hold.
                canon = self.ct(a.type)
                declared = isinstance(dt, DType) and (self.is_top or dt.is_fixed)
                ctype = cpp.dtype_ctype(dt, self.me.needs) if declared else canon
                if _fx(dt) is not None:
                    self.fx[a] = dt
                    self.vals[a] = E(cname, ctype=ctype)
                else:
                    self.vals[a] = cpp.cast(canon, E(cname, ctype=ctype))
                p = Port(cname, ctype, (), False, False, dt)
            params.append((p, n, a))
        outs = self.bind_results(ret.operation, ops, res_dtypes)
        self.ports = [p for p, _, _ in params] + [p for p, _ in outs]
        sig = ", ".join(param_decl(p) for p in self.ports)
        self.loc = self.source
        ext = 'extern "C" ' if self.is_top and self.me.interface == "vitis" else ""
        self.me.line(f"{ext}void {self.cpp_name}({sig}) {{", self.sym, self.loc)
        self.interface_pragmas()
        if "hls.dataflow" in self.f.attributes:
            self.pragma("dataflow")
        elif not self.is_top and not self.no_inline():
            self.pragma("inline")
        for p, n, a in params:
            if p.is_array and self.copies_ports and p.const and self.mems[a].kind == "array":
                self.local_copy_in(p, n, a)
            elif p.is_array:
                self.partition_pragmas(n, p.name, port=True)
            if self.nuses(a) == 0:
                self.line(f"(void){p.name};")
        for p, src in outs:
            if not self.copies_ports:
                self.partition_pragmas(src, p.name, port=True)
        self.emit_block(ops)
        self.loc = self.source
        for name in self.partitions:
            raise EmitError(f"{self.source}: kernel '{self.sym}': the schedule partitions '{name}', which is not a "
                            "buffer of this kernel after emission")
        self.me.line("}", self.sym, self.loc)
        self.me.line("", self.sym, self.loc)

    @property
    def copies_ports(self) -> bool:
        """The top's array ports are m_axi and get local copies (``allo_ext.passes.interface``)."""
        return self.is_top and self.me.local_ports

    def local_copy_in(self, p: Port, src_name: str, a):
        """Burst-read input port ``p`` into a local array, which the body (and its partitions) then use."""
        port = self.mems[a]
        local = Mem(self.fresh(f"{p.name}_local"), port.elem, port.shape, port.kind, port.elem_t, fxt=port.fxt)
        self.line(local.decl() + ";")
        self.partition_pragmas(src_name, local.name)
        self.copy_nest(port, local, port.elem_t, f"read_{p.name}")
        self.mems[a] = local

    def no_inline(self) -> bool:
        """Callees of a dataflow region stay functions (they are its processes)."""
        return any("hls.dataflow" in self.me.funcs[c].attributes for c in self.me.callers.get(self.sym, ()))

    def interface_pragmas(self):
        if not self.is_top:
            return
        gm = 0
        for p in self.ports:
            if self.me.interface == "vitis":
                if p.is_array:
                    size = int(np.prod(p.shape, dtype=np.int64)) if p.shape else 1
                    self.pragma(f"interface m_axi port={p.name} offset=slave bundle=gmem{gm} depth={size}")
                    gm += 1
                else:
                    self.pragma(f"interface s_axilite port={p.name}")
            else:
                self.pragma(f"interface {'ap_memory' if p.is_array else 'ap_none'} port={p.name}")
        self.pragma("interface s_axilite port=return" if self.me.interface == "vitis"
                    else "interface ap_ctrl_hs port=return")

    def bind_results(self, ret, ops, res_dtypes) -> list:
        """Output parameters. A local buffer or call result that is returned (once) becomes the parameter."""
        outs = []
        operands = list(ret.operands)
        top_level = {hash(o.operation) for o in ops}
        for k, v in enumerate(operands):
            dt = res_dtypes[k] if k < len(res_dtypes) else None
            owner = v.owner
            owner = None if isinstance(owner, ir.Block) else getattr(owner, "operation", owner)
            if not is_memref(v.type):
                name = self.fresh("out" if len(operands) == 1 else f"out{k}")
                elem = cpp.dtype_ctype(dt, self.me.needs) if isinstance(dt, DType) else self.ct(v.type)
                outs.append((Port(name, elem, (), True, True, dt, scalar_result=True), f"<result {k}>"))
                continue
            shape, elem_t = memref_shape(v.type), memref_elem(v.type)
            elem = cpp.dtype_ctype(dt, self.me.needs) if isinstance(dt, DType) else self.ct(elem_t)
            src = f"<result {k}>"
            # With local port copies the result is computed into a local array and copied out on return.
            bindable = (owner is not None and hash(owner) in top_level and sum(1 for o in operands if o == v) == 1
                        and owner.name in ("memref.alloc", "memref.alloca", "func.call") and not self.copies_ports)
            if bindable and owner.name != "func.call":
                src = attr_str(owner, "name", src)
                base = src
            else:
                base = "out" if len(operands) == 1 else f"out{k}"
            name = self.fresh(base)
            m = Mem(name, elem, shape, "array" if shape else "cell", elem_t, fxt=_fx(dt))
            if bindable:
                self.bound[v] = m
            else:
                self.unbound_out[k] = m
            if not self.writes_something(v) and bindable:
                raise EmitError(f"{self.source}: kernel '{self.sym}': result {k} is never written; refusing to emit "
                                "a kernel that returns an unwritten buffer")
            outs.append((Port(name, elem, shape, True, True, dt), src))
        self.out_mems = outs
        return outs

    def writes_something(self, v) -> bool:
        if getattr(v.owner, "name", None) == "func.call":
            return True
        for u in v.uses:
            o = u.owner.operation
            if o.name in ("affine.store", "memref.store", "memref.copy") and o.operands[1] == v:
                return True
            if o.name == "func.call":
                return True
        return False

    # -- blocks
    def emit_block(self, ops):
        saved = (self.block_pos, self.block_barriers)
        self.set_block(ops)
        for pos, o in enumerate(ops):
            op = o.operation
            self.loc = loc_str(op.location) or self.loc
            name = op.name
            h = getattr(self, "op_" + name.replace(".", "_"), None)
            if hash(op) in self.trees:
                self.tree_op(op)
            elif h is not None:
                h(op, pos)
            elif name in DROPPED:
                msg = attr_str(op, "msg", "")
                self.line(f"// dropped host-only check {name}: {msg!r}")
            elif self.emit_scalar_op(op, pos):
                pass
            elif name in ("affine.yield", "scf.yield") and not op.operands:
                pass
            else:
                raise self.err(op, f"the HLS emitter cannot print op '{name}'; supported: func/affine/scf/memref/"
                                   "arith/math ops that the kernel language produces")
        self.block_pos, self.block_barriers = saved

    def load_expr(self, m: Mem, idx: list[str], elem_t) -> E:
        base = E(m.access(idx), ctype=m.elem)
        if m.fxt is not None:
            return base
        canon = self.ct(elem_t)
        if m.elem != canon:
            return cpp.cast(canon, base)
        return base

    def store_line(self, m: Mem, idx: list[str], val: E):
        if m.sink:
            return
        if m.const:
            raise EmitError(f"{self.loc}: in kernel '{self.sym}': writes to '{m.name}', which is a constant "
                            "(a weight array or a read-only input)")
        self.line(f"{m.access(idx)} = {val.text};")

    def op_affine_load(self, op, pos):
        m = self.mem(op.operands[0], op)
        amap = ir.AffineMapAttr(op.attributes["map"]).value
        idx = [e.text for e, _ in self.map_results(amap, list(op.operands)[1:])]
        self.note_fixed(op.results[0], m.fxt)
        self.define(op, pos, self.load_expr(m, idx, memref_elem(op.operands[0].type)))

    def op_memref_load(self, op, pos):
        m = self.mem(op.operands[0], op)
        idx = [self.v(x).text for x in list(op.operands)[1:]]
        self.note_fixed(op.results[0], m.fxt)
        self.define(op, pos, self.load_expr(m, idx, memref_elem(op.operands[0].type)))

    def op_affine_store(self, op, pos):
        m = self.mem(op.operands[1], op)
        amap = ir.AffineMapAttr(op.attributes["map"]).value
        idx = [e.text for e, _ in self.map_results(amap, list(op.operands)[2:])]
        self.store_line(m, idx, self.v(op.operands[0]))

    def op_memref_store(self, op, pos):
        m = self.mem(op.operands[1], op)
        idx = [self.v(x).text for x in list(op.operands)[2:]]
        self.store_line(m, idx, self.v(op.operands[0]))

    def _local(self, op, kind_hint: str):
        r = op.results[0]
        t = r.type
        shape, elem_t = memref_shape(t), memref_elem(t)
        src = attr_str(op, "name", "buf")
        if r in self.bound:
            self.mems[r] = self.bound[r]
            return
        fxt = from_spec(attr_str(op, "allo.elem")) if "allo.elem" in op.attributes else None
        elem = cpp.dtype_ctype(fxt, self.me.needs) if fxt is not None else self.local_elem(r, elem_t)
        if not shape:
            reads = [u for u in r.uses if u.owner.operation.name in ("memref.load", "affine.load", "func.call")]
            m = Mem(self.fresh(src), elem, (), "scalar", elem_t, sink=not reads, fxt=fxt)
            self.mems[r] = m
            if not m.sink:
                self.line(f"{m.decl()};")
            return
        m = Mem(self.fresh(src), elem, shape, "array", elem_t, fxt=fxt)
        self.mems[r] = m
        self.me.local_bytes += int(np.prod(shape, dtype=np.int64)) * ctype_bytes(elem)
        self.line(f"{m.decl()};")
        self.partition_pragmas(src, m.name)

    def local_elem(self, r, elem_t) -> str:
        """A local buffer passed to a callee takes the callee's declared element type (e.g. uint8_t)."""
        found = set()
        for u in r.uses:
            o = u.owner.operation
            if o.name == "func.call":
                callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
                _, ats, _ = self.me.signature(callee)
                k = u.operand_number
                if k < len(ats) and isinstance(ats[k], DType):
                    found.add(cpp.dtype_ctype(ats[k], self.me.needs))
        if len(found) > 1:
            raise EmitError(f"{self.loc}: in kernel '{self.sym}': a local buffer is passed to kernels declaring "
                            f"different element types {sorted(found)}; give it one type")
        return found.pop() if found else self.ct(elem_t)

    def op_memref_alloc(self, op, pos):
        self._local(op, "array")

    def op_memref_alloca(self, op, pos):
        self._local(op, "scalar")

    def op_memref_dealloc(self, op, pos):
        pass  # C++ locals live until the end of their scope

    def op_memref_get_global(self, op, pos):
        sym = ir.FlatSymbolRefAttr(op.attributes["name"]).value
        if sym not in self.me.globals:
            raise self.err(op, f"memref.get_global of unknown global '{sym}'")
        self.mems[op.results[0]] = self.me.globals[sym]

    def op_memref_copy(self, op, pos):
        src, dst = self.mem(op.operands[0], op), self.mem(op.operands[1], op)
        self.copy_nest(src, dst, memref_elem(op.operands[0].type), f"copy_{dst.name}")

    def copy_nest(self, src: Mem, dst: Mem, elem_t, label: str):
        shape = src.shape if src.kind == "array" else ()
        ivs = []
        for d, n in enumerate(shape):
            iv = self.fresh_iv(f"i{d}")
            self.ivs_active.append(iv)
            ivs.append(iv)
            lab = cpp.unique(cpp.sanitize(f"{label}_d{d}"), self.labels)
            self.labels.add(lab)
            self.line(f"{lab}: for (int {iv} = 0; {iv} < {n}; {iv}++) {{")
            self.indent += 1
            if d == len(shape) - 1:
                self.pragma("pipeline II=1")
        self.store_line(dst, ivs, self.load_expr(src, ivs, elem_t))
        for _ in shape:
            self.indent -= 1
            self.ivs_active.pop()
            self.line("}")

    # -- calls and return
    def op_func_call(self, op, pos):
        callee = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
        if callee == TRAP:  # a failed safety check (C simulation builds only): report and go on
            self.me.needs.helpers.add("trap")
            self.line(f"{TRAP}({', '.join(self.v(x).text for x in op.operands)});")
            return
        args = []
        for x in op.operands:
            if is_memref(x.type):
                m = self.mem(x, op)
                args.append(f"&{m.name}" if m.kind == "scalar" else m.name)
            else:
                args.append(self.v(x).text)
        _, _, rdts = self.me.signature(callee)
        for k, r in enumerate(op.results):
            dt = rdts[k] if k < len(rdts) else None
            if r in self.bound:
                m = self.bound[r]
            else:
                if is_memref(r.type):
                    shape, elem_t = memref_shape(r.type), memref_elem(r.type)
                else:
                    shape, elem_t = (), r.type
                elem = cpp.dtype_ctype(dt, self.me.needs) if isinstance(dt, DType) else self.ct(elem_t)
                name = self.fresh(f"{self.me.cpp_names[callee]}_out{k if len(op.results) > 1 else ''}")
                m = Mem(name, elem, shape, "array" if shape else "cell", elem_t, fxt=_fx(dt))
                dims = "".join(f"[{d}]" for d in shape) if shape else "[1]"
                self.line(f"{elem} {name}{dims};")
                self.me.local_bytes += int(np.prod(shape or (1,), dtype=np.int64)) * ctype_bytes(elem)
            if is_memref(r.type):
                self.mems[r] = m
            else:
                self.note_fixed(r, m.fxt)
                self.vals[r] = self.load_expr(m, [], r.type)
            args.append(m.name)
        self.line(f"{self.me.cpp_names[callee]}({', '.join(args)});")

    def op_func_return(self, op, pos):
        unbound = self.unbound_out
        for k, v in enumerate(op.operands):
            port, _ = self.out_mems[k]
            if is_memref(v.type):
                if v in self.bound:
                    continue
                m = unbound[k]
                self.copy_nest(self.mem(v, op), m, memref_elem(v.type), f"copy_{m.name}")
            else:
                m = Mem(port.name, port.ctype, (), "cell", v.type, fxt=_fx(port.dtype))
                self.store_line(m, [], self.v(v))

    # -- control flow
    def loop_header(self, op, iv_name: str, lb: str, ub: str, step: int, label_src: str) -> None:
        label = cpp.unique(cpp.sanitize(label_src.replace(".", "_")), self.labels)
        self.labels.add(label)
        inc = f"{iv_name}++" if step == 1 else f"{iv_name} += {step}"
        self.line(f"{label}: for (int {iv_name} = {lb}; {iv_name} < {ub}; {inc}) {{")

    def op_affine_for(self, op, pos):
        if len(op.results):
            raise self.err(op, "loops carrying values (iter_args) are not supported by the HLS emitter")
        fop = op.opview
        lbm = ir.AffineMapAttr(op.attributes["lowerBoundMap"]).value
        ubm = ir.AffineMapAttr(op.attributes["upperBoundMap"]).value
        step = attr_int(op, "step", 1)
        lbs = self.map_results(lbm, list(fop.lowerBoundOperands))
        ubs = self.map_results(ubm, list(fop.upperBoundOperands))
        lb = lbs[0][0].text if len(lbs) == 1 else self.nest_minmax("max", [e for e, _ in lbs])
        ub = ubs[0][0].text if len(ubs) == 1 else self.nest_minmax("min", [e for e, _ in ubs])
        lname = attr_str(op, "loop_name", "loop")
        band = attr_str(op, "op_name", "")
        base = lname[len(band) + 1:] if band and lname.startswith(band + ".") else lname
        # the compiler numbers repeated loop names (i, i_1, ...); sibling C++ loops may reuse the name
        iv = self.fresh_iv(re.sub(r"_\d+$", "", base.replace(".", "_")) if "loop_name" in op.attributes else "i")
        body = fop.body
        ivv = body.arguments[0]
        self.vals[ivv] = E(iv)
        if all(nn for _, nn in lbs):
            self.nonneg.add(ivv)
        red = find_reduction(op)
        if red is not None and not red.tree:
            self.line(f"// {red.why}")
        terms = self.tree_begin(red, iv, lb, step) if red is not None and red.tree else None
        self.loop_header(op, iv, lb, ub, step, lname)
        self.indent += 1
        self.ivs_active.append(iv)
        self.loop_pragmas(op, lbm, ubm, step)
        self.emit_block(list(body.operations))
        self.ivs_active.pop()
        self.indent -= 1
        self.line("}")
        if terms is not None:
            self.tree_end(red, terms)

    # -- adder trees (allo_ext.passes.reduction_tree)
    def tree_begin(self, red, iv: str, lb: str, step: int) -> Mem:
        """``acc = ACC(acc + term_k)`` over a fully unrolled loop, with wrap-around (associative) addition:
        the terms are stored into ACC in the loop and summed by a balanced tree after it."""
        acc = self.mem(red.acc, red.load)
        terms = Mem(self.fresh(f"{acc.name}_terms"), acc.elem, (red.trip + 1,), "array", acc.elem_t, fxt=acc.fxt)
        self.line(f"// adder tree: {red.trip} terms and the initial value in {red.trip.bit_length()} levels, not a "
                  "chain of adds (wrap-around sums are associative: the in-order result, bit for bit)")
        self.line(f"{terms.decl()};")
        self.pragma(f"array_partition variable={terms.name} complete dim=1")
        self.store_line(terms, ["0"], self.load_expr(acc, [], acc.elem_t))
        k = iv if lb == "0" and step == 1 else f"({iv} - {cpp.paren(E(lb, cpp.ADD), cpp.ADD + 1)}) / {step}"
        idx = f"{k} + 1" if k == iv else f"{cpp.paren(E(k, cpp.MUL), cpp.ADD)} + 1"
        for o in (red.load, red.add, red.cast, red.store):
            if o is not None:
                self.trees[hash(o)] = (red, terms, idx)
        return terms

    def tree_op(self, op):
        """An op of a tree reduction inside its loop: the add stores its term (rounded into ACC as the
        chain's store rounds the sum); the read of acc, the cast and the store of the sum are not printed."""
        red, terms, idx = self.trees[hash(op)]
        if op == red.add:
            val = self.v(red.term)
            side = "lhs" if op.operands[0] == red.term else "rhs"
            if red.cast is not None:
                if attr_str(op, side) != attr_str(red.cast, "type"):  # else the term is of ACC already
                    val = cpp.call(terms.elem, val)
            elif red.term.type != ir.MemRefType(red.acc.type).element_type:
                raise self.err(op, "internal: an integer reduction term of another width than its accumulator")
            self.store_line(terms, [idx], val)

    def tree_end(self, red, terms: Mem):
        for o in (red.load, red.add, red.cast, red.store):
            if o is not None:
                self.trees.pop(hash(o), None)
        acc = self.mem(red.acc, red.store)
        self.me.needs.helpers.add("tree_sum")
        self.store_line(acc, [], E(f"allo_tree_sum({terms.name})"))

    def nest_minmax(self, fn: str, exprs: list[E]) -> str:
        self.me.needs.headers.add("algorithm")
        acc = exprs[0]
        for e in exprs[1:]:
            acc = cpp.call(f"std::{fn}", acc, e)
        return acc.text

    def loop_pragmas(self, op, lbm=None, ubm=None, step=1):
        ii = attr_int(op, "hls.pipeline_ii")
        if ii is not None:
            self.pragma(f"pipeline II={ii}")
        un = attr_int(op, "hls.unroll")
        if un is not None:
            self.pragma("unroll" if un == 0 else f"unroll factor={un}")
        if lbm is not None:
            tc = _max_trip(lbm, ubm, step)
            if tc is not None:
                self.pragma(f"loop_tripcount min=1 max={tc}")

    def op_scf_for(self, op, pos):
        if len(op.results):
            raise self.err(op, "loops carrying values (iter_args) are not supported by the HLS emitter")
        lb, ub, step = (self.v(x) for x in list(op.operands)[:3])
        name = attr_str(op, "loop_name", "loop")
        iv = self.fresh_iv(name.split(".")[-1])
        body = op.regions[0].blocks[0]
        self.vals[body.arguments[0]] = E(iv)
        label = cpp.unique(cpp.sanitize(name.replace(".", "_")), self.labels)
        self.labels.add(label)
        self.line(f"{label}: for (int {iv} = {lb.text}; {iv} < {ub.text}; {iv} += {step.text}) {{")
        self.indent += 1
        self.ivs_active.append(iv)
        self.loop_pragmas(op)
        self.emit_block(list(body.operations))
        self.ivs_active.pop()
        self.indent -= 1
        self.line("}")

    def op_scf_if(self, op, pos):
        cond = self.v(op.operands[0])
        results = list(op.results)
        res_names = []
        for r in results:
            n = self.temp()
            self.line(f"{self.ct(r.type)} {n};")
            self.vals[r] = E(n)
            res_names.append(n)
        self.line(f"if ({cond.text}) {{")
        for k, region in enumerate(op.regions):
            blocks = list(region.blocks)
            if not blocks:
                continue
            if k == 1:
                if len(list(blocks[0].operations)) <= 1 and not res_names:
                    continue
                self.line("} else {")
            self.indent += 1
            ops = list(blocks[0].operations)
            self.emit_block(ops)
            y = ops[-1].operation
            for n, v in zip(res_names, y.operands):
                self.line(f"{n} = {self.v(v).text};")
            self.indent -= 1
        self.line("}")

    def op_scf_yield(self, op, pos):
        pass  # handled by the parent (scf.if assigns its results after the block)


def _max_trip(lbm, ubm, step) -> int | None:
    """Largest trip count of a loop ``for i = d0 + a to min(d0 + b, ...)`` (the inner loop of a split)."""
    if lbm.n_dims == 0 and ubm.n_dims == 0:
        return None
    if len(lbm.results) != 1:
        return None
    lo = _offset_of_d0(lbm.results[0])
    if lo is None:
        return None
    best = None
    for r in ubm.results:
        hi = _offset_of_d0(r)
        if hi is not None:
            best = hi - lo if best is None else min(best, hi - lo)
    return None if best is None else max(1, -(-best // step))


def _offset_of_d0(e) -> int | None:
    if isinstance(e, ir.AffineDimExpr) and e.position == 0:
        return 0
    if isinstance(e, ir.AffineAddExpr) and isinstance(e.lhs, ir.AffineDimExpr) and e.lhs.position == 0 \
            and isinstance(e.rhs, ir.AffineConstantExpr):
        return e.rhs.value
    return None



def _fx(dt):
    return dt if isinstance(dt, DType) and dt.is_fixed else None
