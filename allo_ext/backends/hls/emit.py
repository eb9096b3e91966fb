"""target="vhls": walk the scheduled MLIR module and print Vitis HLS C++.

One C++ function per kernel (callees first, then the top). Kernels return memrefs in the IR; in C++
each result is a trailing output array parameter, as in Allo. A returned local buffer *becomes* that
parameter (named after the buffer), so nothing is copied. Loops keep their ``loop_name`` as C++
labels and carry the schedule's pragmas. Weights (``memref.global`` constants) go to a separate
header as ``const`` arrays.

SSA values are printed as C++ expressions. A value with a single use later in the same block is
folded into its user when no write (store, call, nested loop or if) lies between them; every other
value gets a named temporary. That keeps ``acc = acc + X[i][k] * W[j][k];`` readable without
reordering a read across a write.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch_mlir import ir

from ...lang.compiler import kernel_signature
from ...lang.errors import AlloError
from ...lang.fixed import dequantize, from_spec, from_storage
from ...lang.module import dense_values
from ...lang.types import ArrayType, from_numpy
from . import cpp
from .common import EmitError, FuncInfo, Mem, Port, attr_str, funcs_of, loc_str, memref_elem, memref_shape, param_decl, walk
from .cpp import Needs
from .function import FunctionEmitter
from ...passes.safety import TRAP
from ...passes.interface import local_port_copies

INTERFACES = ("vitis", "ip")

__all__ = ["EmitError", "HLSModule", "INTERFACES", "Port", "build_vhls", "emit_module"]


@dataclass
class HLSModule:
    """The HLS C++ of one scheduled module: ``code`` (kernel.cpp), ``header`` (kernel.h) and
    ``weights`` (kernel_weights.h, empty when the module has no constants)."""

    top: str
    interface: str
    code: str = field(repr=False)
    header: str = field(repr=False)
    weights: str = field(repr=False)
    ports: list[Port] = field(default_factory=list)
    functions: dict[str, FuncInfo] = field(default_factory=dict, repr=False)
    line_locs: list = field(default_factory=list, repr=False)  # per kernel.cpp line: (func sym, "file:line")
    needs_ap_types: bool = False
    local_bytes: int = 0  # total size of every local array (an upper bound of the stack a call needs)
    schedule: object = field(default=None, repr=False, compare=False)  # the Schedule this was emitted from

    FILES = ("kernel.cpp", "kernel.h", "kernel_weights.h")

    def __str__(self) -> str:
        return self.code

    def estimate(self, **kw):
        """Static latency/resource estimate of the schedule this C++ came from (see allo_ext.passes.estimate)."""
        if self.schedule is None:
            raise AlloError("this HLSModule was not built from a Schedule; call estimate() on the Schedule instead")
        kw.setdefault("interface", self.interface)  # estimate the ports this C++ has
        return self.schedule.estimate(**kw)

    def write(self, directory) -> dict[str, Path]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = {}
        for name, text in zip(self.FILES, (self.code, self.header, self.weights)):
            if name == "kernel_weights.h" and not text:
                continue
            p = d / name
            p.write_text(text)
            out[name] = p
        return out

    def locate(self, line: int) -> tuple[FuncInfo | None, str | None]:
        """The C++ function and the kernel source line that produced kernel.cpp line ``line``."""
        fn = next((f for f in self.functions.values() if f.first_line <= line <= f.last_line), None)
        loc = self.line_locs[line - 1][1] if 0 < line <= len(self.line_locs) else None
        return fn, loc


# ---------------------------------------------------------------------------- module emitter
class ModuleEmitter:
    def __init__(self, module: ir.Module, top: str, py_functions: dict | None = None, interface: str = "vitis",
                 signatures: dict | None = None):
        if interface not in INTERFACES:
            raise AlloError(f"unknown HLS interface {interface!r}; choose one of {INTERFACES} "
                            "('vitis': extern \"C\" kernel with m_axi/s_axilite ports; 'ip': ap_memory ports)")
        self.module, self.top, self.interface = module, top, interface
        self.local_ports = local_port_copies(module, interface)
        self.py = py_functions or {}
        # (names, arg types, result types) of functions with no Python source (the frontend's top)
        self.known_sigs = signatures or {}
        self.funcs = funcs_of(module)
        if top not in self.funcs:
            raise EmitError(f"no function '{top}' in the module; functions: {', '.join(self.funcs)}")
        self.needs = Needs()
        self.lines: list[tuple[str, str | None, str | None]] = []
        self.global_names: dict[str, str] = {}
        self.globals: dict[str, Mem] = {}
        self.reserved: set[str] = set()
        self.sigs: dict[str, tuple] = {}
        self.local_bytes = 0

    # -- analysis
    def order(self) -> list[str]:
        """Functions reachable from the top, callees before callers."""
        seen, out = set(), []

        def visit(sym, stack):
            if sym in seen or sym == TRAP:  # the safety checks' report function lives in the C simulation driver
                return
            if sym in stack:
                raise EmitError(f"recursive kernel calls ({' -> '.join(stack + [sym])}) cannot be synthesised")
            if sym not in self.funcs:
                raise EmitError(f"call to unknown function '{sym}'")
            callees = []
            walk(self.funcs[sym], lambda o: callees.append(ir.FlatSymbolRefAttr(o.attributes["callee"]).value)
                  if o.name == "func.call" else None)
            for c in callees:
                visit(c, stack + [sym])
            seen.add(sym)
            out.append(sym)

        visit(self.top, [])
        return out

    def analyse(self, order):
        # Which array arguments each function writes (directly or through a callee): the others are const.
        self.written = {s: set() for s in order}
        self.callers = {s: set() for s in order}
        changed = True
        while changed:
            changed = False
            for sym in order:
                f = self.funcs[sym]
                args = list(f.regions[0].blocks[0].arguments)

                def arg_index(v):
                    return next((k for k, a in enumerate(args) if a == v), None)

                def cb(o, sym=sym, arg_index=arg_index):
                    nonlocal changed
                    hits = []
                    if o.name in ("affine.store", "memref.store"):
                        hits.append(arg_index(o.operands[1]))
                    elif o.name == "memref.copy":
                        hits.append(arg_index(o.operands[1]))
                    elif o.name == "func.call":
                        callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
                        self.callers.setdefault(callee, set()).add(sym)
                        for p, v in enumerate(o.operands):
                            if p in self.written.get(callee, ()):
                                hits.append(arg_index(v))
                    for h in hits:
                        if h is not None and h not in self.written[sym]:
                            self.written[sym].add(h)
                            changed = True

                walk(f, cb)

    def signature(self, sym):
        """(arg names, arg dtypes-or-None, result dtypes-or-None) from the Python kernel, if known."""
        if sym not in self.sigs:
            fn = self.py.get(sym)
            if fn is not None or sym in self.known_sigs:
                names, ats, rts = kernel_signature(fn) if fn is not None else self.known_sigs[sym]
                self.sigs[sym] = (names, [t.dtype if isinstance(t, ArrayType) else t for t in ats],
                                  [t.dtype if isinstance(t, ArrayType) else t for t in rts])
            else:
                f = self.funcs[sym]
                n = len(f.regions[0].blocks[0].arguments)
                names = ([ir.StringAttr(a).value for a in ir.ArrayAttr(f.attributes["allo.arg_names"])]
                         if "allo.arg_names" in f.attributes else [f"arg{k}" for k in range(n)])
                nres = len(ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value).results)
                self.sigs[sym] = (names, [None] * n, [None] * nres)
        return self.sigs[sym]

    # -- output
    def line(self, text: str, func: str | None = None, loc: str | None = None):
        self.lines.append((text, func, loc))

    def emit(self) -> HLSModule:
        order = self.order()
        self.analyse(order)
        weights = self.emit_globals()
        self.cpp_names = {}
        for s in order:
            self.cpp_names[s] = cpp.unique(cpp.sanitize_global(s), set(self.cpp_names.values())
                                           | set(self.global_names.values()))
        self.reserved |= set(self.cpp_names.values()) | set(self.global_names.values())
        # Emit the functions first (they record which headers and helpers they need), then prepend the preamble.
        body_lines = self.lines
        infos, ports = {}, []
        for sym in order:
            start = len(body_lines)
            fe = FunctionEmitter(self, sym)
            fe.emit()
            if sym == self.top:
                ports = fe.ports
            infos[sym] = (start, len(body_lines) - 1, fe.source)
        pre = self.preamble(bool(weights))
        off = len(pre)
        lines = [(t, None, None) for t in pre] + body_lines
        functions = {s: FuncInfo(s, self.cpp_names[s], a + off + 1, b + off + 1, src)
                     for s, (a, b, src) in infos.items()}
        code = "\n".join(t for t, _, _ in lines) + "\n"
        return HLSModule(top=self.top, interface=self.interface, code=code, header=self.header(ports), weights=weights,
                         ports=ports, functions=functions, line_locs=[(f, lc) for _, f, lc in lines],
                         needs_ap_types=bool(self.needs.headers & {"ap_int.h", "ap_fixed.h"}),
                         local_bytes=self.local_bytes)

    def preamble(self, has_weights: bool) -> list[str]:
        src = self.source_of(self.top)
        out = [f"// HLS C++ for kernel '{self.top}'" + (f" ({src})" if src else "") + ", generated by allo-ext.",
               '#include "kernel.h"']
        if has_weights:
            out.append('#include "kernel_weights.h"')
        std = {"cmath"} | ({"algorithm"} if "algorithm" in self.needs.headers else set()) \
            | ({"cstring"} if "bitcast" in self.needs.helpers else set())
        out += [f"#include <{h}>" for h in sorted(std)]
        out += ["", "// Loop labels name the loops in Vitis HLS reports; g++ never jumps to them.",
                '#pragma GCC diagnostic ignored "-Wunused-label"', ""]
        for h in ("maximum", "minimum", "floordiv", "ceildiv", "floormod", "bitcast", "fixed_raw", "tree_sum", "trap"):
            if h in self.needs.helpers:
                out += cpp.HELPERS[h].split("\n") + [""]
        return out

    def header(self, ports: list[Port]) -> str:
        guard = f"ALLO_{cpp.sanitize(self.top).upper()}_KERNEL_H"
        out = [f"// Interface of HLS kernel '{self.top}', generated by allo-ext.",
               f"#ifndef {guard}", f"#define {guard}",
               "#include <cstdint>"]
        out += [f"#include <{h}>" for h in sorted(self.needs.headers & {"ap_int.h", "ap_fixed.h"})]
        ext = 'extern "C" ' if self.interface == "vitis" else ""
        out += ["", f"{ext}void {self.cpp_names[self.top]}({', '.join(param_decl(p) for p in ports)});", "",
                f"#endif  // {guard}"]
        return "\n".join(out) + "\n"

    def source_of(self, sym) -> str | None:
        return loc_str(self.funcs[sym].location)

    def emit_globals(self) -> str:
        items = []
        for op in self.module.body.operations:
            if op.operation.name != "memref.global":
                continue
            o = op.operation
            sym = ir.StringAttr(o.attributes["sym_name"]).value
            t = ir.TypeAttr(o.attributes["type"]).value
            shape, elem_t = memref_shape(t), memref_elem(t)
            name = cpp.unique(cpp.sanitize(sym), set(self.global_names.values()))
            self.global_names[sym] = name
            const = "constant" in o.attributes
            data = None
            if "initial_value" in o.attributes and not str(o.attributes["initial_value"]) == "uninitialized":
                dense = ir.DenseElementsAttr(o.attributes["initial_value"])
                data = np.array(ir.DenseElementsAttr(o.attributes["allo.raw"])) if "allo.raw" in o.attributes \
                    else dense_values(o.attributes["initial_value"])
                if dense.is_splat or data.size != int(np.prod(shape, dtype=np.int64)):
                    data = np.full(shape, data.reshape(-1)[0], dtype=data.dtype)
                data = data.reshape(shape)
            fxt = from_spec(attr_str(o, "allo.elem")) if "allo.elem" in o.attributes else None
            if fxt is not None:  # raw integers in MLIR, their exact values in C++
                elem = cpp.dtype_ctype(fxt, self.needs)
                if data is not None:
                    if fxt.bits > 53:
                        raise EmitError(f"constant array '{sym}' of {fxt}: fixed-point weights wider than 53 bits "
                                        "have no exact C++ initialiser here; use at most 53 bits")
                    data = dequantize(from_storage(data, fxt), fxt)
            else:
                elem = (cpp.dtype_ctype(from_numpy(data.dtype), self.needs)
                        if data is not None and data.dtype != np.bool_ else cpp.scalar_ctype(elem_t, self.needs))
            self.globals[sym] = Mem(name, elem, shape, "array" if shape else "cell", elem_t, const=const, fxt=fxt)
            items.append((name, elem, shape, data, const))
        if not items:
            return ""
        out = ["// Constants (weights) of the kernel, generated by allo-ext.", "#ifndef ALLO_KERNEL_WEIGHTS_H",
               "#define ALLO_KERNEL_WEIGHTS_H", "#include <cstdint>"]
        if any(data is not None and data.dtype.kind == "f" and not np.isfinite(data).all() for *_, data, _c in items):
            out.append("#include <cmath>")  # HUGE_VALF / NAN in an initialiser (e.g. a -inf attention mask)
        out += [f"#include <{h}>" for h in sorted(self.needs.headers & {"ap_int.h", "ap_fixed.h"})]
        for name, elem, shape, data, const in items:
            dims = "".join(f"[{d}]" for d in shape) if shape else "[1]"
            fbits = 64 if "fixed" in elem else elem_float_bits(elem)
            init = "{}" if data is None else _initializer(data if shape else data.reshape(1), fbits)
            out += ["", f"{'static const' if const else 'static'} {elem} {name}{dims} = {init};"]
        out += ["", "#endif  // ALLO_KERNEL_WEIGHTS_H"]
        return "\n".join(out) + "\n"


def elem_float_bits(elem: str) -> int:
    return {"float": 32, "double": 64}.get(elem, 0)


def _initializer(data: np.ndarray, fbits: int) -> str:
    if data.ndim == 0:
        return _scalar_text(data.item(), fbits)
    if data.ndim == 1:
        items = [_scalar_text(x, fbits) for x in data.tolist()]
        rows = [", ".join(items[i:i + 16]) for i in range(0, len(items), 16)]
        return "{" + ",\n    ".join(rows) + "}"
    return "{\n  " + ",\n  ".join(_initializer(x, fbits) for x in data) + "\n}"


def _scalar_text(x, fbits: int) -> str:
    if fbits:
        return cpp.float_literal(float(x), fbits).text
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(int(x))


# ---------------------------------------------------------------------------- entry point
def emit_module(module: ir.Module, top: str, py_functions: dict | None = None, interface: str = "vitis",
                signatures: dict | None = None) -> HLSModule:
    """HLS C++ of ``module`` with ``top`` as the kernel. ``py_functions`` (symbol -> Python kernel)
    supplies the declared element types (signedness, fixed point) of each kernel's arguments."""
    return ModuleEmitter(module, top, py_functions, interface, signatures).emit()


def build_vhls(schedule, interface: str = "vitis") -> HLSModule:
    from ...schedule import unrealised

    hints = unrealised(schedule.module)
    if hints:
        raise AlloError(f"the HLS backend does not build reuse/write-back buffers or fused producer loops yet; "
                        f"this schedule asks for {', '.join(hints)} (the llvm target runs it, with the same results)")
    with schedule.context:
        mod = emit_module(schedule.module, schedule.top, schedule.mb.py_functions, interface,
                          {k: v for k, v in schedule.mb.signatures.items() if k not in schedule.mb.py_functions})
    mod.schedule = schedule
    return mod

