"""Stage B of the RTL route: cf-level integer MLIR -> SystemVerilog with CIRCT's handshake flow.

Run as a script in its own process (``python circt_stage.py in.mlir out.sv [buffer-strategy]``): CIRCT
segfaults on some inputs (float ops in HandshakeToHW, llvm/circt#9807 in extmem lowering), and a
crash must not take the caller down. It imports nothing from allo_ext, so torch-mlir's MLIR and
CIRCT's never meet in one process. Each stage announces itself on stderr before it runs, so the
caller can name the stage a crash happened in. Pass order: shared/notes/rtl-recipes.md.
"""
import os
import sys

# Run as a script, this directory is sys.path[0]: keep its modules from shadowing installed packages.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

CAN = "canonicalize{top-down=true region-simplify=false}"


def stages(buffer_strategy: str) -> list:
    return [
        ("cf to handshake", "builtin.module(lower-cf-to-handshake,handshake-lower-extmem-to-hw)"),
        ("handshake buffers", f"builtin.module(handshake.func({CAN},handshake-materialize-forks-sinks,{CAN},"
                              f"handshake-insert-buffers{{strategy={buffer_strategy} buffer-size=1}},{CAN}))"),
        ("handshake to hw", f"builtin.module(lower-handshake-to-hw,{CAN},lower-esi-ports,lower-esi-to-physical,"
                            f"lower-esi-to-hw,{CAN})"),
        ("hw to sv", f"builtin.module(hw.module(lower-seq-hlmem),lower-seq-to-sv,hw.module(hw-cleanup),"
                     f"hw.module(hw-legalize-modules),{CAN},hw.module(prettify-verilog))"),
    ]


# Icarus and Yosys 0.23 reject local variables in always blocks and packed struct assignments.
LOWERING_OPTIONS = "disallowLocalVariables,disallowPackedStructAssignments,locationInfoStyle=none"


def _load_dialects(ir, passmanager):
    # The wheel registers only CIRCT's dialects; running a pass on an empty module loads the
    # upstream dialects (func, arith, memref, cf) that pass depends on.
    for p in ["builtin.module(lower-calyx-to-hw)", "builtin.module(func.func(convert-affine-to-loopschedule))",
              "builtin.module(lower-handshake-to-dc)"]:
        passmanager.PassManager.parse(p).run(ir.Module.parse("module {}").operation)


def main(argv) -> int:
    src, dst = argv[1], argv[2]
    strategy = argv[3] if len(argv) > 3 else "cycles"
    import circt
    from circt import ir, passmanager

    def say(stage):
        print(f"@@stage {stage}", file=sys.stderr, flush=True)

    with ir.Context() as ctx, ir.Location.unknown():
        circt.register_dialects(ctx)
        say("load dialects")
        _load_dialects(ir, passmanager)
        say("parse")
        module = ir.Module.parse(open(src).read())
        for name, pipeline in stages(strategy):
            say(name)
            passmanager.PassManager.parse(pipeline).run(module.operation)
        say("export verilog")
        module.operation.attributes["circt.loweringOptions"] = ir.StringAttr.get(LOWERING_OPTIONS)
        with open(dst, "w") as f:
            circt.export_verilog(module, f)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
