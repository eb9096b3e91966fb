"""The top kernel's interface as the HLS emitter builds it, shared with the estimate so both agree.

A Vitis kernel (``interface="vitis"``) reads and writes its arrays through m_axi ports, which
cannot be partitioned. Kernels are inlined into the top, so a callee's ``array_partition`` of its
argument would land on the top's port. When the module partitions anything, the emitter therefore
gives every array port a local copy: inputs are burst-read into a local array before the body,
outputs are computed into a local array and burst-written after it, and the partitions apply to
the copies. The estimate charges those copy loops (``MAXI_LATENCY`` plus one element per cycle).
"""
from __future__ import annotations

from torch_mlir import ir

# Vitis' default m_axi read/write latency setting (``latency=64`` of the m_axi interface pragma):
# the cycles from a burst request to its first beat.
MAXI_LATENCY = 64


def partitions_anything(module: ir.Module) -> bool:
    return any(op.operation.name == "func.func" and "hls.partition" in op.attributes
               for op in module.body.operations)


def local_port_copies(module: ir.Module, interface: str) -> bool:
    """Whether the top's array ports are copied to local arrays (see the module doc)."""
    return interface == "vitis" and partitions_anything(module)
