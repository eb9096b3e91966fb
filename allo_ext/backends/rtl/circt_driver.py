"""Run stage B (``circt_stage.py``) in a subprocess and check what it wrote."""
from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ...lang.errors import AlloError, ToolNotFoundError
from .sv import flatten_structs, signed_multipliers

STAGE_SCRIPT = Path(__file__).with_name("circt_stage.py")
BUFFER_STRATEGIES = ("cycles", "all", "allFIFO")


class CIRCTError(AlloError):
    """CIRCT failed (or crashed) on the design; the message names the stage."""


def check_circt():
    if importlib.util.find_spec("circt") is None:
        raise ToolNotFoundError("rtl: the CIRCT Python package is not installed; "
                                "`pip install circt==1.62.0` (or `pip install -e '.[hw]'`)")


def to_verilog(mlir_text: str, top: str, buffer_strategy: str = "cycles", timeout: float = 600) -> str:
    """cf-level MLIR -> SystemVerilog text (structs flattened). Raises CIRCTError naming the failing stage."""
    check_circt()
    if buffer_strategy not in BUFFER_STRATEGIES:
        raise AlloError(f"rtl: buffer strategy must be one of {BUFFER_STRATEGIES}, got {buffer_strategy!r}")
    with tempfile.TemporaryDirectory(prefix="allo-circt-") as d:
        src, dst = Path(d) / "in.mlir", Path(d) / "out.sv"
        src.write_text(mlir_text)
        try:
            r = subprocess.run([sys.executable, str(STAGE_SCRIPT), str(src), str(dst), buffer_strategy],
                               capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise CIRCTError(f"rtl: CIRCT ran longer than {timeout} s on '{top}'") from e
        stages = [ln.split(" ", 1)[1] for ln in r.stderr.splitlines() if ln.startswith("@@stage ")]
        last = stages[-1] if stages else "start-up"
        if r.returncode != 0 or last != "done":
            how = (f"crashed with signal {signal.Signals(-r.returncode).name}" if r.returncode < 0
                   else f"failed (exit {r.returncode})")
            lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("@@stage")]
            # the diagnostic or assertion comes first; a crash's stack trace after it says little more
            detail = "\n".join(lines[:20]) + (f"\n... ({len(lines) - 20} more lines)" if len(lines) > 20 else "")
            err = CIRCTError(f"rtl: CIRCT {how} in stage '{last}' on kernel '{top}'.\n{detail.strip()}\n"
                             "(stage A's MLIR, CIRCT's input, is in the error's .mlir attribute)")
            err.mlir = mlir_text
            raise err
        sv = dst.read_text() if dst.is_file() else ""
    if not sv.strip() or f"module {top}" not in sv:
        raise CIRCTError(f"rtl: CIRCT wrote {'an empty file' if not sv.strip() else 'no module ' + repr(top)} "
                         f"for kernel '{top}' without reporting an error; refusing to continue")
    return signed_multipliers(flatten_structs(sv))
