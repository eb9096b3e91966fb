"""The generated testbench: memories behind the design's load/store ports, start and done tokens, cycles.

CIRCT's handshake top module has, for memref argument ``k``, load ports ``in<k>_ld<j>_addr`` (out) /
``in<k>_ld<j>_data`` (in) and store ports ``in<k>_st<j>`` (out, ``{address, data}``) /
``in<k>_st<j>_done`` (in), each with valid/ready; argument ``n`` (after the memories) is the start
token ``in<n>_valid`` and ``out0_valid`` is the done token.

Each memory answers a load one cycle after it accepts the address and acknowledges a store one
cycle after it writes (a single-entry buffer per port, so one access per cycle per port with a
consumer that is always ready). The testbench runs ``+items=N`` calls in one simulation: per call
it reads every non-constant memory from ``mem<k>.in`` (one hex word a line, in order), resets the
design, offers the start token and counts clock edges from the edge that accepts it to the edge that
sees the done token; then it writes the output memories to ``mem<k>.out`` and prints
``ALLO_ITEM <i> <cycles>``. Constant memories (ROMs) are read once from ``rom<k>.hex``. An
out-of-range address or a run past ``+max_cycles`` prints ``ALLO_ERROR`` and stops.
"""
from __future__ import annotations

import re

from ...lang.errors import AlloError
from .lower import Port
from .sv import SVPort


def memory_ports(sv_ports: list[SVPort], k: int):
    names = {p.name: p for p in sv_ports}
    loads = sorted({int(m.group(1)) for p in sv_ports if (m := re.fullmatch(rf"in{k}_ld(\d+)_addr", p.name))})
    stores = sorted({int(m.group(1)) for p in sv_ports if (m := re.fullmatch(rf"in{k}_st(\d+)", p.name))})
    return ([(j, names[f"in{k}_ld{j}_addr"].width) for j in loads],
            [(j, names[f"in{k}_st{j}"].width) for j in stores])


def generate(top: str, ports: list[Port], sv_ports: list[SVPort]) -> str:
    names = {p.name for p in sv_ports}
    start = f"in{sum(p.hw_index is not None for p in ports)}"
    if f"{start}_valid" not in names or "out0_valid" not in names:
        raise AlloError(f"rtl: module '{top}' has no start/done tokens ({start}_valid, out0_valid); "
                        f"its ports are: {', '.join(sorted(names))}")
    decl, conn, model, load_in, dump = [], [], [], [], []
    for k, p in enumerate(ports):
        W, S = p.bits, p.size
        decl.append(f"  reg [{W - 1}:0] mem{k} [0:{S - 1}];  // {p.role} {p.name}: {p.dtype}{list(p.shape)}")
        # memory_ports by the design's own numbering (arguments it never accesses were removed)
        loads, stores = memory_ports(sv_ports, p.hw_index) if p.hw_index is not None else ([], [])
        h = p.hw_index
        for j, A in loads:
            n = f"in{h}_ld{j}"
            decl += [f"  wire [{A - 1}:0] {n}_addr; wire {n}_addr_valid, {n}_data_ready;",
                     f"  reg {n}_dv = 1'b0; reg [{W - 1}:0] {n}_dd = {W}'d0;"]
            conn += [f".{n}_addr({n}_addr)", f".{n}_addr_valid({n}_addr_valid)",
                     f".{n}_addr_ready(!{n}_dv || {n}_data_ready)", f".{n}_data({n}_dd)",
                     f".{n}_data_valid({n}_dv)", f".{n}_data_ready({n}_data_ready)"]
            model.append(f"""  always @(posedge clock) begin
    if (reset) {n}_dv <= 1'b0;
    else if ({n}_addr_valid && (!{n}_dv || {n}_data_ready)) begin
      if ({n}_addr >= {S}) begin $display("ALLO_ERROR load from {p.name}[%0d], size {S}", {n}_addr); $finish; end
      {n}_dv <= 1'b1; {n}_dd <= mem{k}[{n}_addr];
    end else if ({n}_data_ready) {n}_dv <= 1'b0;
  end""")
        for j, AW in stores:
            n = f"in{h}_st{j}"
            A = AW - W
            if A < 1:
                raise AlloError(f"rtl: store port {n} of '{top}' is {AW} bits wide, expected address + {W} data bits")
            decl += [f"  wire [{AW - 1}:0] {n}; wire {n}_valid, {n}_done_ready;", f"  reg {n}_sv = 1'b0;"]
            conn += [f".{n}({n})", f".{n}_valid({n}_valid)", f".{n}_ready(!{n}_sv || {n}_done_ready)",
                     f".{n}_done_valid({n}_sv)", f".{n}_done_ready({n}_done_ready)"]
            model.append(f"""  always @(posedge clock) begin
    if (reset) {n}_sv <= 1'b0;
    else if ({n}_valid && (!{n}_sv || {n}_done_ready)) begin
      if ({n}[{AW - 1}:{W}] >= {S}) begin $display("ALLO_ERROR store to {p.name}[%0d], size {S}", {n}[{AW - 1}:{W}]); $finish; end
      {n}_sv <= 1'b1; mem{k}[{n}[{AW - 1}:{W}]] <= {n}[{W - 1}:0];
    end else if ({n}_done_ready) {n}_sv <= 1'b0;
  end""")
        if p.role == "rom":
            load_in.append(f'    $readmemh("rom{k}.hex", mem{k});')
        if p.role == "out":
            dump.append(f'      for (e = 0; e < {S}; e = e + 1) $fdisplay(fo{k}, "%h", mem{k}[e]);')
    per_item = []
    files = []
    for k, p in enumerate(ports):
        if p.role == "rom":
            continue
        files.append(f'    fi{k} = $fopen("mem{k}.in", "r"); if (fi{k} == 0) begin $display("ALLO_ERROR cannot open mem{k}.in"); $finish; end')
        per_item.append(f"      for (e = 0; e < {p.size}; e = e + 1) begin rc = $fscanf(fi{k}, \"%h\\n\", word); "
                        f"mem{k}[e] = word[{p.bits - 1}:0]; end")
        if p.role == "out":
            files.append(f'    fo{k} = $fopen("mem{k}.out", "w");')
    handles = [f"fi{k}" for k, p in enumerate(ports) if p.role != "rom"] + \
              [f"fo{k}" for k, p in enumerate(ports) if p.role == "out"]
    conn += [".clock(clock)", ".reset(reset)", f".{start}_valid(start_valid)", f".{start}_ready(start_ready)",
             ".out0_valid(done_valid)", ".out0_ready(1'b1)"]
    body = "\n".join(decl)
    return f"""// Generated by allo_ext (target="rtl"): testbench of module {top}. See testbench.py for the protocol.
`timescale 1ns/1ps
module tb;
  reg clock = 1'b0;
  reg reset = 1'b1;
  always #5 clock = ~clock;
  reg start_valid = 1'b0;
  wire start_ready, done_valid;
  integer e, rc, item, n_items, max_cycles, cycles;
  integer starts = 0;  // start tokens the design has taken: exactly one per call
  always @(posedge clock) if (!reset && start_valid && start_ready) starts <= starts + 1;
  integer {", ".join(handles) if handles else "unused_handle"};
  reg [63:0] word;
{body}

  {top} dut(
    {(","+chr(10)+"    ").join(conn)}
  );

{chr(10).join(model)}

  initial begin
    if (!$value$plusargs("items=%d", n_items)) n_items = 1;
    if (!$value$plusargs("max_cycles=%d", max_cycles)) max_cycles = 1000000;
{chr(10).join(load_in)}
{chr(10).join(files)}
    for (item = 0; item < n_items; item = item + 1) begin
{chr(10).join(per_item)}
      // Inputs change at falling edges and are sampled 1 ns later, once the design's combinational
      // logic has settled: no race with its rising-edge registers, in Icarus and Verilator alike.
      @(negedge clock); reset = 1'b1;
      repeat (2) @(negedge clock);
      reset = 1'b0;
      @(negedge clock); start_valid = 1'b1; #1;
      cycles = 0;
      while (!start_ready) begin
        @(negedge clock); #1; cycles = cycles + 1;
        if (cycles > max_cycles) begin $display("ALLO_ERROR timeout: start token not accepted (item %0d)", item); $finish; end
      end
      // valid and ready: the next rising edge takes the start token (exactly one); count edges from there.
      @(negedge clock); start_valid = 1'b0; #1; cycles = 1;
      while (!done_valid) begin
        @(negedge clock); #1; cycles = cycles + 1;
        if (cycles > max_cycles) begin
          $display("ALLO_ERROR timeout: no done token after %0d cycles (item %0d)", max_cycles, item);
          $finish;
        end
      end
      if (starts != item + 1) begin
        $display("ALLO_ERROR testbench: %0d start tokens taken for %0d calls", starts, item + 1); $finish;
      end
{chr(10).join(dump)}
      $display("ALLO_ITEM %0d %0d", item, cycles);
    end
    $display("ALLO_DONE");
    $finish;
  end
endmodule
"""
