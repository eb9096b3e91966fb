"""What the estimate returns: per-loop, per-kernel and total figures, as a table or a dict."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field




# ------------------------------------------------------------------------------------------- results
@dataclass
class LoopEstimate:
    kernel: str
    loop: str
    trip: int
    unroll: int | None
    pipelined: bool
    ii: int | None
    ii_limit: str | None  # "requested", "memory <buffer>" or "recurrence <variable>"
    depth: int
    latency: int
    flattened: tuple = ()  # names of the outer loops flattened into this pipeline


@dataclass
class KernelEstimate:
    name: str
    calls: int  # invocations per call of the top function
    instances: int  # hardware copies
    cycles: int  # latency of one call
    ii: int | None  # dataflow II (only for functions marked hls.dataflow)
    dsp: int
    bram: int  # 18Kb blocks
    lut: int
    ff: int
    dataflow: bool = False


@dataclass
class Estimate:
    top: str
    clock_mhz: float
    cycles: int
    ii: int  # interval between two calls: the dataflow II, or the latency
    dsp: int
    bram: int
    lut: int
    ff: int
    kernels: list[KernelEstimate] = field(default_factory=list)
    loops: list[LoopEstimate] = field(default_factory=list)
    interface_cycles: int = 0  # the m_axi port copies' share of ``cycles`` (see allo_ext.passes.interface)

    @property
    def latency_us(self) -> float:
        return self.cycles / self.clock_mhz

    def kernel(self, name: str) -> KernelEstimate:
        for k in self.kernels:
            if k.name == name:
                return k
        raise KeyError(f"no kernel '{name}' in this estimate; kernels: {', '.join(k.name for k in self.kernels)}")

    def loop(self, kernel: str, name: str) -> LoopEstimate:
        for lp in self.loops:
            if lp.kernel == kernel and lp.loop == name:
                return lp
        have = ", ".join(lp.loop for lp in self.loops if lp.kernel == kernel) or "(none)"
        raise KeyError(f"no hardware loop '{name}' in kernel '{kernel}' (fully unrolled loops have no entry); "
                       f"its loops: {have}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["latency_us"] = self.latency_us
        return d

    def table(self) -> str:
        """Markdown: one row per kernel (latency of one call, its calls per top call), then the total."""
        head = "| kernel | calls | cycles/call | cycles total | II | DSP | BRAM18K | LUT | FF |"
        rows = [head, "|" + "---|" * 9]
        for k in self.kernels:
            ii = "-" if k.ii is None else str(k.ii)
            rows.append(f"| {k.name}{' (dataflow)' if k.dataflow else ''} | {k.calls} | {k.cycles} | "
                        f"{k.calls * k.cycles} | {ii} | {k.dsp} | {k.bram} | {k.lut} | {k.ff} |")
        rows.append(f"| **total ({self.top})** | 1 | {self.cycles} | {self.cycles} | {self.ii} | {self.dsp} | "
                    f"{self.bram} | {self.lut} | {self.ff} |")
        rows.append("")
        rows.append(f"{self.cycles} cycles = {self.latency_us:.3f} us at {self.clock_mhz:g} MHz; one call every "
                    f"{self.ii} cycles. Resources: per-kernel columns are one instance; totals count instances.")
        return "\n".join(rows)
