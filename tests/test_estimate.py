"""The static estimate (allo_ext.passes.estimate) on loop nests small enough to schedule by hand.

Every expected number is worked out in the test from the model's documented constants (op latencies,
memory latencies and ports, loop overhead); none comes from running the estimator on something else.
"""
import pytest
import torch
from torch_mlir import ir

import allo_ext
from allo_ext import float32, int8, int32
from allo_ext.passes.estimate import (F32_OPS, LOOP_OVERHEAD, MEM_PORTS, RAM_READ_LATENCY, REG_READ_LATENCY,
                                      STORE_LATENCY, EstimateError)
from allo_ext.passes.estimate import estimate as estimate_with_ports



def estimate(s, **kw):
    """The kernel body as an ap_memory IP (ports used in place). A Vitis kernel adds the m_axi port
    copies around it when it partitions anything; the interface section at the end tests those."""
    kw.setdefault("interface", "ip")
    return estimate_with_ports(s, **kw)


FADD = F32_OPS["arith.addf"]
FMUL = F32_OPS["arith.mulf"]
N = 16
M = 6


# ---------------------------------------------------------------------------------------------- kernels
def vadd(A: float32[N], B: float32[N]) -> float32[N]:
    Z: float32[N]
    for i in range(N):
        Z[i] = A[i] + B[i]
    return Z


def madd(A: float32[M, N], B: float32[M, N]) -> float32[M, N]:
    Z: float32[M, N]
    for i in range(M):
        for j in range(N):
            Z[i, j] = A[i, j] + B[i, j]
    return Z


def rowscale(A: float32[M, N], C: float32[M]) -> float32[M, N]:
    Z: float32[M, N]
    for i in range(M):
        c: float32 = C[i]
        for j in range(N):
            Z[i, j] = A[i, j] * c
    return Z


def rowsum4(A: float32[M, 4]) -> float32[M]:
    Z: float32[M]
    for i in range(M):
        Z[i] = A[i, 0] + A[i, 1] + A[i, 2] + A[i, 3]
    return Z


def vsum(A: float32[N]) -> float32[1]:
    Z: float32[1]
    acc: float32 = 0.0
    for k in range(N):
        acc += A[k]
    Z[0] = acc
    return Z


def scale(A: float32[N]) -> float32[N]:
    Z: float32[N]
    for i in range(N):
        Z[i] = A[i] * 2.0
    return Z


def shift(A: float32[N]) -> float32[N]:
    Z: float32[N]
    for i in range(N):
        Z[i] = A[i] + 1.0
    return Z


def chain(A: float32[N]) -> float32[N]:
    B = scale(A)
    C = shift(B)
    D = scale(C)
    return D


def fork(A: float32[N]) -> float32[N]:
    B = scale(A)
    C = shift(A)
    D = vadd(B, C)
    return D


def fork2(A: float32[N], A2: float32[N]) -> float32[N]:
    B = scale(A)
    C = shift(A2)
    D = vadd(B, C)
    return D


def twice(A: float32[N], A2: float32[N]) -> float32[N]:
    B = chain(A)
    C = chain(A2)
    D = vadd(B, C)
    return D


def bigbuf(A: float32[1024]) -> float32[1024]:
    Z: float32[1024]
    for i in range(1024):
        Z[i] = A[i]
    return Z


def imul(A: int8[N], B: int8[N]) -> int32[N]:
    Z: int32[N]
    for i in range(N):
        Z[i] = int32(A[i]) * int32(B[i])
    return Z


def schedule(kernel, *prims):
    s = allo_ext.customize(kernel)
    for name, args, kw in prims:
        getattr(s, name)(*args, **kw)
    return s


def pipe(loop, ii=1):
    return ("pipeline", (loop,), {"ii": ii})


def unroll(loop, factor=0):
    return ("unroll", (loop,), {"factor": factor})


def part(buf, dim=0, factor=0, kind="complete"):
    return ("partition", (buf,), {"dim": dim, "factor": factor, "kind": kind})


# One iteration of ``Z[i] = A[i] + B[i]`` from BRAM: both reads (different memories) issue in cycle 0,
# the fadd starts when they arrive, the store takes one cycle.
ADD_DEPTH = RAM_READ_LATENCY + FADD.latency + STORE_LATENCY


# ---------------------------------------------------------------------------------------------- single loops
def test_sequential_loop_of_adds():
    e = estimate(schedule(vadd))
    assert ADD_DEPTH == 7  # the documented constants: 2 (BRAM read) + 4 (fadd) + 1 (store)
    assert e.cycles == N * (ADD_DEPTH + LOOP_OVERHEAD) == 128
    lp = e.loop("vadd", "i")
    assert (lp.pipelined, lp.ii, lp.depth, lp.trip) == (False, None, ADD_DEPTH, N)
    assert e.dsp == FADD.dsp == 2  # one adder, reused by every iteration


def test_pipelined_loop_of_adds():
    e = estimate(schedule(vadd, pipe("vadd:i")))
    assert e.cycles == (N - 1) * 1 + ADD_DEPTH == 22
    lp = e.loop("vadd", "i")
    assert (lp.pipelined, lp.ii, lp.ii_limit, lp.depth) == (True, 1, "requested", ADD_DEPTH)
    # A requested II of 3 is kept (nothing forces more).
    assert estimate(schedule(vadd, pipe("vadd:i", ii=3))).cycles == (N - 1) * 3 + ADD_DEPTH


def test_clock_converts_cycles_to_time():
    e = estimate(schedule(vadd, pipe("vadd:i")), clock_mhz=100)
    assert e.latency_us == pytest.approx(22 / 100)
    assert e.to_dict()["latency_us"] == pytest.approx(0.22)


# ---------------------------------------------------------------------------------------------- nests
def test_perfect_nest_around_a_pipelined_loop_is_flattened():
    e = estimate(schedule(madd, pipe("madd:j")))
    assert e.cycles == (M * N - 1) * 1 + ADD_DEPTH
    assert e.loop("madd", "j").flattened == ("i",)


def test_inner_pipelined_loop_inside_a_sequential_loop():
    # Outer body: c = C[i] (a BRAM read, 2 cycles, into a register), then the pipelined inner loop, which
    # starts when everything before it has finished: (N - 1) * 1 + (read A + fmul + store).
    inner = (N - 1) * 1 + RAM_READ_LATENCY + FMUL.latency + STORE_LATENCY
    body = RAM_READ_LATENCY + inner
    e = estimate(schedule(rowscale, pipe("rowscale:j")))
    assert e.loop("rowscale", "j").latency == inner
    assert e.cycles == M * (body + LOOP_OVERHEAD) == 6 * (2 + 21 + 1)


def test_full_unroll_of_a_nest_has_no_loop_and_no_overhead():
    # 96 adds in parallel from completely partitioned (register) arrays: one read (1 cycle), one fadd, one store.
    s = schedule(madd, unroll("madd:i"), unroll("madd:j"), part("madd:A"), part("madd:B"), part("madd:Z"))
    e = estimate(s)
    assert e.cycles == REG_READ_LATENCY + FADD.latency + STORE_LATENCY == 6
    assert e.dsp == M * N * FADD.dsp
    assert e.loops == []


# ---------------------------------------------------------------------------------------------- unroll
def test_unroll_factor_replicates_the_body_and_meets_the_ports():
    u = 4
    # Four copies per iteration; A, B and Z each have one bank with 2 ports: reads issue 2 per cycle (cycles
    # 0, 0, 1, 1), so the adds finish at 6, 6, 7, 7, and the stores take cycles 6, 6, 7, 7 (done at 8):
    # one iteration of ADD_DEPTH plus one cycle for the second pair of reads.
    depth = ADD_DEPTH + (u // MEM_PORTS - 1)
    assert depth == 8
    e = estimate(schedule(vadd, unroll("vadd:i", u)))
    assert e.loop("vadd", "i").depth == depth
    assert e.cycles == (N // u) * (depth + LOOP_OVERHEAD) == 36
    assert e.dsp == u * FADD.dsp
    # Cyclic partitions by 4 give every copy its own bank: all four read in cycle 0.
    s = schedule(vadd, unroll("vadd:i", u), *[part(f"vadd:{b}", 1, u, "cyclic") for b in "ABZ"])
    assert estimate(s).cycles == (N // u) * (ADD_DEPTH + LOOP_OVERHEAD) == 32


# ---------------------------------------------------------------------------------------------- partitions and II
def test_four_reads_of_one_bank_need_ii_2_and_a_cyclic_partition_restores_ii_1():
    # Reads of A[i, 0..3]: one bank with 2 ports -> 2 cycles of reads per iteration.
    ii = -(-4 // MEM_PORTS)
    # Schedule: reads in cycles 0, 0, 1, 1 (data at 2, 2, 3, 3); ((a0 + a1) + a2) + a3 is a chain of three fadds
    # from cycle 2, then the store.
    depth = RAM_READ_LATENCY + 3 * FADD.latency + STORE_LATENCY
    e = estimate(schedule(rowsum4, pipe("rowsum4:i")))
    lp = e.loop("rowsum4", "i")
    assert (lp.ii, lp.ii_limit, lp.depth) == (2, "memory A", depth)
    assert e.cycles == (M - 1) * ii + depth
    assert e.dsp == -(-3 // ii) * FADD.dsp  # at II=2 the three adds share two adders
    # cyclic 4 on the second dim: four banks, one read each.
    e = estimate(schedule(rowsum4, pipe("rowsum4:i"), part("rowsum4:A", 2, 4, "cyclic")))
    assert (e.loop("rowsum4", "i").ii, e.cycles) == (1, (M - 1) * 1 + depth)
    assert e.dsp == 3 * FADD.dsp
    # Two banks (cyclic 2): two reads per bank, which two ports serve in one cycle.
    e = estimate(schedule(rowsum4, pipe("rowsum4:i"), part("rowsum4:A", 2, 2, "cyclic")))
    assert e.loop("rowsum4", "i").ii == 1
    # Complete partition: registers, read in one cycle, no port limit.
    e = estimate(schedule(rowsum4, pipe("rowsum4:i"), part("rowsum4:A")))
    assert e.cycles == (M - 1) * 1 + REG_READ_LATENCY + 3 * FADD.latency + STORE_LATENCY


# ---------------------------------------------------------------------------------------------- recurrences
def test_scalar_reduction_has_the_fadd_latency_as_ii():
    e = estimate(schedule(vsum, pipe("vsum:k")))
    lp = e.loop("vsum", "k")
    assert (lp.ii, lp.ii_limit) == (FADD.latency, "recurrence acc")
    loop = (N - 1) * FADD.latency + RAM_READ_LATENCY + FADD.latency  # the scalar acc is a register: 0 cycles
    assert lp.latency == loop
    # After the loop: Z[0] = acc, a one-element array (a register) written in one cycle.
    assert e.cycles == loop + STORE_LATENCY


def test_unrolling_a_float_reduction_lengthens_the_recurrence():
    # Two copies per iteration: acc + A[k] + A[k+1] in program order, a chain of two fadds (no reassociation).
    e = estimate(schedule(vsum, pipe("vsum:k"), unroll("vsum:k", 2)))
    lp = e.loop("vsum", "k")
    assert lp.ii == 2 * FADD.latency
    assert lp.latency == (N // 2 - 1) * 2 * FADD.latency + RAM_READ_LATENCY + 2 * FADD.latency
    # ... which is no faster than the rolled pipeline: a float sum is bound by its adder chain.
    assert lp.latency == estimate(schedule(vsum, pipe("vsum:k"))).loop("vsum", "k").latency


def test_array_carried_dependence_limits_ii():
    def prefix(A: float32[N]) -> float32[N]:
        Z: float32[N]
        Z[0] = A[0]
        for i in range(1, N):
            Z[i] = Z[i - 1] + A[i]
        return Z

    e = estimate(schedule(prefix, pipe("prefix:i")))
    lp = e.loop("prefix", "i")
    # Z[i - 1] is read from BRAM (2), added (4) and stored (1) before the next iteration may read it.
    assert (lp.ii, lp.ii_limit) == (RAM_READ_LATENCY + FADD.latency + STORE_LATENCY, "recurrence Z")


# ---------------------------------------------------------------------------------------------- calls, dataflow
SCALE = (N - 1) + RAM_READ_LATENCY + FMUL.latency + STORE_LATENCY
SHIFT = (N - 1) + ADD_DEPTH


def _chain(dataflow=False):
    s = schedule(chain)
    for k in ("scale", "shift"):
        s.pipeline(f"{k}:i")
    if dataflow:
        s.dataflow()
    return s


def test_call_chain_sums_the_callees():
    e = estimate(_chain())
    assert (e.kernel("scale").cycles, e.kernel("shift").cycles) == (SCALE, SHIFT)
    assert e.cycles == 2 * SCALE + SHIFT
    assert (e.kernel("scale").calls, e.kernel("scale").instances) == (2, 2)
    assert e.ii == e.cycles  # without dataflow a call starts when the previous one is done
    # The emitter inlines scale at both call sites (#pragma HLS inline): two copies of its multiplier.
    assert e.dsp == 2 * FMUL.dsp + FADD.dsp


def test_dataflow_ii_is_the_slowest_stage():
    e = estimate(_chain(dataflow=True))
    assert e.cycles == 2 * SCALE + SHIFT  # a chain: one call still goes through every stage
    assert e.ii == max(SCALE, SHIFT) == SHIFT
    assert e.kernel("chain").dataflow and e.kernel("chain").ii == SHIFT
    assert e.kernel("scale").instances == 2  # each dataflow call site is its own process
    assert e.dsp == 2 * FMUL.dsp + FADD.dsp


def test_dataflow_overlaps_independent_calls():
    s = schedule(fork2)
    for k in ("scale", "shift", "vadd"):
        s.pipeline(f"{k}:i")
    plain = estimate(s).cycles
    s.dataflow()
    e = estimate(s)
    vadd_cycles = (N - 1) + ADD_DEPTH
    assert plain == SCALE + SHIFT + vadd_cycles
    assert e.cycles == max(SCALE, SHIFT) + vadd_cycles  # scale and shift have their own inputs: side by side
    assert e.ii == max(SCALE, SHIFT, vadd_cycles)


def test_dataflow_refuses_a_buffer_with_two_readers():
    s = schedule(fork)
    with pytest.raises(allo_ext.ScheduleError, match=r"argument 'A' is read by 2 processes \(call @scale, call @shift\)"):
        s.dataflow()
    assert "hls.dataflow" not in str(s.module)  # refused: no pragma left behind


def test_dataflow_refuses_jetformers_class_token_buffer_read_four_times():
    from allo_ext.frontend.compile import trace
    from allo_ext.models import JetFormer
    s = trace(JetFormer.tiny().eval(), torch.randn(1, 8, 3), target="hls")
    with pytest.raises(allo_ext.ScheduleError, match=r"output of call @concat is read by 4 processes"):
        s.dataflow()


def test_a_dataflow_region_called_twice_is_one_shared_instance():
    # chain is not inlined (it is a dataflow region), so its two call sites share one instance; its
    # processes are separate, and vadd, inlined into twice, is one more copy.
    s = schedule(twice)
    s.dataflow("chain")
    e = estimate(s)
    assert e.kernel("chain").instances == 1 and e.kernel("chain").calls == 2
    assert e.kernel("scale").instances == 2 and e.kernel("shift").instances == 1
    assert e.dsp == 2 * FMUL.dsp + FADD.dsp + FADD.dsp


# ---------------------------------------------------------------------------------------------- resources
def test_bram_counts_follow_size_and_partitioning():
    # 1024 x 32 bits: two 18Kb blocks (512 x 36 each), for the local Z (A belongs to the caller).
    assert estimate(schedule(bigbuf)).bram == 2
    # cyclic 2: two banks of 512 words, one block each.
    assert estimate(schedule(bigbuf, part("bigbuf:Z", 1, 2, "cyclic"))).bram == 2
    # cyclic 4: four banks of 256 words (8Kb), still one block each: partitioning costs blocks.
    assert estimate(schedule(bigbuf, part("bigbuf:Z", 1, 4, "cyclic"))).bram == 4
    # complete: registers, no block RAM, 1024 * 32 flip-flops.
    e = estimate(schedule(bigbuf, part("bigbuf:Z")))
    assert e.bram == 0 and e.ff >= 1024 * 32


def test_narrow_integer_multiply_takes_one_dsp():
    # int32(int8) * int32(int8): Vitis narrows the operands; a 27x18 DSP does an 8x8 product.
    assert estimate(schedule(imul, pipe("imul:i"))).dsp == 1


# ---------------------------------------------------------------------------------------------- API and errors
def test_table_and_dict():
    e = _chain().estimate()
    text = e.table()
    assert text.splitlines()[0].startswith("| kernel | calls | cycles/call")
    assert f"| scale | 2 | {SCALE} | {2 * SCALE} |" in text
    assert f"**total (chain)** | 1 | {e.cycles} |" in text
    d = e.to_dict()
    assert d["cycles"] == e.cycles and {k["name"] for k in d["kernels"]} == {"chain", "scale", "shift"}


def test_unknown_op_is_named():
    with ir.Context():
        module = ir.Module.parse("""
          func.func @k(%a: memref<4xf32>) -> f32 {
            %c0 = arith.constant 0 : index
            %x = memref.load %a[%c0] : memref<4xf32>
            %y = math.cbrt %x : f32
            return %y : f32
          }""")
        with pytest.raises(EstimateError, match="math.cbrt"):
            estimate(module, top="k")
        with pytest.raises(EstimateError, match="no function 'nope'"):
            estimate(module, top="nope")


# ---------------------------------------------------------------------------------------------- JetFormer
@pytest.fixture(scope="module")
def tiny_estimates():
    from allo_ext.frontend import trace
    from allo_ext.kernels import apply_schedules
    from allo_ext.models import JetFormer

    torch.manual_seed(0)
    model = JetFormer.tiny().eval()
    out = {}
    for profile in ("default", "latency"):
        s = trace(model, torch.randn(1, 8, 3), target="vhls")
        apply_schedules(s, profile)
        out[profile] = estimate(s)
    return out


def test_tiny_latency_profile_beats_default(tiny_estimates):
    default, latency = tiny_estimates["default"], tiny_estimates["latency"]
    assert latency.cycles * 5 < default.cycles
    # The attention products and linears run several output rows per cycle: more DSPs than the default.
    assert latency.dsp > default.dsp
    # Float32 sums are chains of 4-cycle adds: the 16-term reduction of the last FFN linear alone is 64 cycles.
    slowest_linear = max(k.cycles for k in latency.kernels if k.name.startswith("linear3d"))
    assert slowest_linear >= 16 * FADD.latency


def test_latency_profile_of_a_small_linear_is_its_adder_chain():
    from allo_ext.kernels import apply_schedules
    from allo_ext.kernels.nn import linear2d

    K, Nout = 8, 4
    s = allo_ext.customize(linear2d(float32, 1, K, Nout))
    apply_schedules(s, "latency")
    e = estimate(s)
    # Every output at once: X, W and b are registers (read in 1 cycle); all products x * w take 3 cycles in
    # parallel; then the K fadds of acc += x * w run one after the other (no reassociation); then the store.
    assert e.cycles == REG_READ_LATENCY + FMUL.latency + K * FADD.latency + STORE_LATENCY == 37
    assert e.dsp == Nout * K * (FMUL.dsp + FADD.dsp)


def test_from_pytorch_vhls_module_estimates_its_schedule(tiny_estimates):
    """``mod.estimate()`` on what from_pytorch(target="vhls") returns gives the schedule's estimate."""
    from allo_ext.frontend import from_pytorch
    from allo_ext.models import JetFormer

    torch.manual_seed(0)
    mod = from_pytorch(JetFormer.tiny().eval(), torch.randn(1, 8, 3), target="vhls", schedule="latency")
    assert "#pragma HLS pipeline" in mod.code
    e = mod.estimate()  # the Vitis kernel's m_axi ports are copied locally (the latency schedule partitions)
    assert e.interface_cycles > 0 and "x_local" in mod.code
    assert e.cycles == tiny_estimates["latency"].cycles + e.interface_cycles
    assert mod.estimate(interface="ip").cycles == tiny_estimates["latency"].cycles


def idiv(A: int32[N], B: int32[N]) -> int32[N]:
    C: int32[N] = 0
    for i in range(N):
        C[i] = A[i] // B[i]
    return C


def iadd(A: int32[N], B: int32[N]) -> int32[N]:
    C: int32[N] = 0
    for i in range(N):
        C[i] = A[i] + B[i]
    return C


def test_integer_divider_is_width_plus_4_cycles_deep():
    # The documented model: a W-bit divider (Vitis' sdiv core, not pipelined here) takes W + 4 cycles, an
    # integer add 1. The two loops differ only in that op, so each sequential iteration is 36 - 1 longer.
    div, add = estimate(schedule(idiv)), estimate(schedule(iadd))
    assert div.cycles - add.cycles == N * ((32 + 4) - 1)


# ---------------------------------------------------------------------------------------------- fixed point
@pytest.mark.parametrize("t, mul_dsp, cast_cycles, tree", [
    (allo_ext.Fixed(16, 10), 1, 0, True),                  # 16 x 16: one DSP; TRN/WRAP casts are wires
    (allo_ext.Fixed(24, 12), 3, 0, True),                  # 24 x 24: a two-DSP cascade plus one (3)
    (allo_ext.Fixed(16, 10, "RND", "WRAP"), 1, 1, True),   # rounding: one more cycle per cast
    (allo_ext.Fixed(16, 10, "RND", "SAT"), 1, 1, False),   # saturation: the order matters, no tree
])
def test_fixed_linear_latency_is_one_cycle_products_and_adds(t, mul_dsp, cast_cycles, tree):
    from allo_ext.kernels import apply_schedules
    from allo_ext.kernels.nn import linear2d

    K, Nout = 8, 4
    s = allo_ext.customize(linear2d(t, 1, K, Nout))
    apply_schedules(s, "latency")
    e = estimate(s)
    code = s.build(target="vhls").code
    assert ("allo_tree_sum(acc_terms)" in code) == tree and ("summed in order" in code) != tree
    # registers read in 1 cycle; all products in parallel (1 cycle up to 18 bits, 2 above); then
    mul = 1 if t.bits <= 18 else 2
    if tree:
        # a wrap-around accumulator: each product rounded into it on its own (in parallel), then the C++'s
        # balanced tree over the bias and the K terms, ceil(log2(K + 1)) = 4 one-cycle adds deep
        assert e.cycles == REG_READ_LATENCY + mul + cast_cycles + 4 + STORE_LATENCY
    else:
        # saturating: the K adds of acc += x * w one after the other, each stored into the accumulator
        assert e.cycles == REG_READ_LATENCY + mul + K * (1 + cast_cycles) + STORE_LATENCY
    assert e.dsp == Nout * K * mul_dsp


def test_fixed_point_hardware_cost_of_a_model_is_below_float32():
    from allo_ext.compress.hardware import hardware_cost

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 5))
    f32 = hardware_cost(model, 4, 3, None)
    fx = hardware_cost(model, 4, 3, "ap_fixed<16,6>")
    assert fx["precision"] == "ap_fixed<16,6>"
    assert fx["dsp"] == 12 * 8 + 8 * 5  # one DSP per 16-bit product, every product in parallel
    assert fx["dsp"] < f32["dsp"] and fx["cycles"] < f32["cycles"] and fx["lut"] < f32["lut"]


# ---------------------------------------------------------------------------------------------- interface
def test_m_axi_port_copies_are_charged_when_the_emitter_writes_them():
    from allo_ext.passes.interface import MAXI_LATENCY
    s = schedule(madd)
    assert estimate_with_ports(s).cycles == estimate(s).cycles  # no partition: ports used in place
    s.partition("madd:A", kind="complete")
    vitis, ip = estimate_with_ports(s), estimate(s)
    copy_in = (M * N - 1) + MAXI_LATENCY + STORE_LATENCY  # burst-read each input, one element per cycle
    copy_out = (M * N - 1) + RAM_READ_LATENCY + MAXI_LATENCY
    assert vitis.cycles - ip.cycles == vitis.interface_cycles == 2 * copy_in + copy_out
    assert ip.interface_cycles == 0
    # A's local copy is completely partitioned: M*N*32 flip-flops beside B's single RAM.
    assert vitis.ff - ip.ff >= M * N * 32
    code = s.build(target="vhls").code
    assert code.count("_local[") >= 2 and "copy_out" in code  # the emitter writes the copies it is charged for
    with pytest.raises(EstimateError, match="unknown interface 'axi'"):
        estimate_with_ports(s, interface="axi")
