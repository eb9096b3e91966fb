"""Text-level facts about CIRCT's SystemVerilog: packed structs flattened, the top module's ports read.

Yosys 0.23 rejects anonymous ``struct packed`` ports and wires, and the testbench must not depend
on how a simulator lays them out; the only structs CIRCT's handshake flow emits are the store
ports' ``{address, data}`` pairs, which are rewritten into plain vectors with explicit part
selects (first member in the high bits, as SystemVerilog packs them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ...lang.errors import AlloError

_STRUCT = re.compile(r"struct\s+packed\s*\{([^}]*)\}")
_FIELD = re.compile(r"logic\s*(?:\[(\d+):(\d+)\])?\s*(\w+)\s*;")


def _fields(body: str) -> list[tuple[str, int]]:
    out = []
    for m in _FIELD.finditer(body):
        hi, lo, name = m.group(1), m.group(2), m.group(3)
        out.append((name, (int(hi) - int(lo) + 1) if hi is not None else 1))
    return out


def flatten_structs(sv: str) -> str:
    """Replace every ``struct packed {...} name`` by ``logic [W-1:0] name`` and ``name.field`` by a part select."""
    layouts: dict[str, list[tuple[str, int]]] = {}

    def decl(m):
        fields = _fields(m.group(1))
        width = sum(w for _, w in fields)
        rest = sv[m.end():m.end() + 200]
        nm = re.match(r"\s*(\w+)", rest)
        if nm:
            layouts[nm.group(1)] = fields
        return f"logic [{width - 1}:0]"

    out = _STRUCT.sub(decl, sv)
    # declarations of the form "wire struct packed ..." become "wire logic [..]": drop the "logic".
    out = re.sub(r"\b(wire|reg)\s+logic\s*\[", r"\1 [", out)
    out = re.sub(r"\b(input|output)(\s+)logic\s*\[", r"\1\2[", out)
    for name, fields in layouts.items():
        lo = sum(w for _, w in fields)
        for fname, w in fields:
            lo -= w
            sel = f"[{lo + w - 1}:{lo}]" if w > 1 else f"[{lo}]"
            out = re.sub(rf"\b{re.escape(name)}\.{re.escape(fname)}\b", name + sel, out)
    if "struct packed" in out:
        raise AlloError("rtl: a packed struct in CIRCT's output could not be flattened")
    return out


_MULI = re.compile(r"module arith_muli_in_ui(\d+)_ui\1_out_ui\1\(.*?endmodule", re.S)


def signed_multipliers(sv: str) -> str:
    """Make CIRCT's same-width multipliers signed: ``in0 * in1`` -> ``$signed(in0) * $signed(in1)``.

    The low N bits of an N x N product are the same signed or unsigned, so the function is
    unchanged; but a product of sign-extended operands (a 16 x 16 fixed-point multiply done at 32
    bits) is then a signed multiply whose redundant sign bits Yosys's ``wreduce`` drops: measured on
    a Fixed(16, 10) linear, 1 DSP48E1 instead of 3. Unsigned, Yosys cannot narrow it.
    """
    def fix(m):
        body = m.group(0)
        if body.count("assign out0 = in0 * in1;") != 1:
            raise AlloError(f"rtl: unexpected body of CIRCT multiplier module:\n{body[:400]}")
        return body.replace("assign out0 = in0 * in1;", "assign out0 = $signed(in0) * $signed(in1);")

    return _MULI.sub(fix, sv)


@dataclass
class SVPort:
    name: str
    direction: str  # "input" or "output"
    width: int  # 0 for CIRCT's zero-width (token-only) signals, which are commented out


def top_ports(sv: str, top: str) -> list[SVPort]:
    m = re.search(rf"^module\s+{re.escape(top)}\s*\((.*?)\);", sv, re.S | re.M)
    if not m:
        raise AlloError(f"rtl: module '{top}' not found in the generated SystemVerilog")
    ports, direction, width = [], None, 1
    for raw in m.group(1).splitlines():
        line = raw.strip().rstrip(",")
        if not line or line.startswith("//"):
            continue
        mm = re.match(r"(input|output)?\s*(?:\[(\d+):(\d+)\])?\s*(\w+)$", line)
        if not mm:
            raise AlloError(f"rtl: cannot read port declaration {raw.strip()!r} of module '{top}'")
        if mm.group(1):
            direction = mm.group(1)
            width = int(mm.group(2)) - int(mm.group(3)) + 1 if mm.group(2) else 1
        elif mm.group(2):
            width = int(mm.group(2)) - int(mm.group(3)) + 1
        else:
            # Continuation lines list further names of the previous declaration's direction; CIRCT
            # only groups 1-bit signals that way.
            width = 1
        ports.append(SVPort(mm.group(4), direction, width))
    return ports
