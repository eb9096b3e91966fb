"""The exported graph walked with a kernel-call sink other than MLIR (the latency route's da4ml tracer).

Same graph rewrites, constant folding, lowerings and precision rules as ``GraphImporter``; only the
place each kernel call goes to differs, so the traced design computes what the compiled kernels do.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from ..lang.errors import AlloError
from ..lang.module import ModuleBuilder
from ..lang.values import Buffer
from .importer import GraphImporter, graph_constants, resolve_precision


@dataclass
class TracedGraph:
    inputs: list  # Buffers of the model inputs (per-item shapes with the batch dim of the export)
    outputs: list  # Buffers of the model outputs
    input_names: list
    in_dtypes: list  # torch dtypes of the user's inputs
    out_dtypes: list


class StaticGraphImporter(GraphImporter):
    def __init__(self, ep, make_sink, precision=None):
        """``make_sink(precision)`` returns the context the lowerings call kernels on."""
        self.ep = ep
        self.mb = ModuleBuilder()  # the lowerings open MLIR locations; no function is built in it
        self.precision = precision
        self.make_sink = make_sink
        self.top_name = "forward"

    def run(self) -> TracedGraph:
        graph = self.ep.graph
        consts = graph_constants(self.ep)
        # types resolved after the rewrites, as GraphImporter does: fused BatchNorms get theirs
        self.ctx = self.make_sink(resolve_precision(self.precision, graph, consts))
        user_inputs = [n for n in graph.nodes if n.op == "placeholder" and n.name not in consts]
        env: dict = dict(consts)
        inputs = []
        for n in user_inputs:
            t = self.ctx.precision.for_node(n)[tuple(int(d) for d in n.meta["val"].shape)]
            b = self.ctx.input(n.name, t)
            env[n.name] = b
            inputs.append(b)
        out_node = next(n for n in graph.nodes if n.op == "output")
        outs = out_node.args[0]
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        with self.mb.context, ir.Location.unknown():
            for node in graph.nodes:
                if node.op == "call_function":
                    env[node.name] = self.lower_node(node, env)
        results = []
        for o in outs:
            v = env[o.name] if hasattr(o, "name") else o
            b = self.ctx.buffer(v, "out")
            if not isinstance(b, Buffer):
                raise AlloError(f"graph output {o} is not a tensor")
            results.append(b)
        return TracedGraph(inputs, results, [n.name for n in user_inputs],
                           [n.meta["val"].dtype for n in user_inputs], [o.meta["val"].dtype for o in outs])
