"""One kernel, every backend of ``--backends``: build, run, compare.

``--backends`` (default ``llvm,csim,rtl``) names the backends the cross-backend tests run on:

- ``llvm``: MLIR -> LLVM JIT; ``csim``: g++ + ap_types C simulation; ``rtl``: CIRCT SystemVerilog
  simulated by Icarus (cycle-accurate);
- ``sw_emu``, ``hw_emu``, ``hw``: the generated Vitis project run through ``make run TARGET=<mode>``
  (XRT); where Vitis/XRT are missing the test is skipped with the reason.
"""
import numpy as np
import pytest

OPEN = ("llvm", "csim", "rtl")
VITIS = ("sw_emu", "hw_emu", "hw")
ALL = OPEN + VITIS


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    bad = [b for b in names if b not in ALL]
    if bad or not names:
        raise pytest.UsageError(f"--backends: unknown backend(s) {bad or '(none given)'}; choose from {', '.join(ALL)}")
    return names


def vitis_missing(mode: str) -> str | None:
    from allo_ext.backends.hls.vitis import check_tools
    from allo_ext.lang.errors import ToolNotFoundError

    try:
        check_tools(mode)
    except ToolNotFoundError as e:
        return str(e)
    return None


def build(schedule, backend: str, tmp_path, **rtl_options):
    """The compiled kernel of ``schedule`` on ``backend`` (skips the test where Vitis is missing)."""
    if backend == "llvm":
        return schedule.build(target="llvm")
    if backend == "csim":
        return schedule.build(target="vitis_hls", mode="csim")
    if backend == "rtl":
        return schedule.build(target="rtl", **rtl_options)
    why = vitis_missing(backend)
    if why:
        pytest.skip(why)
    return schedule.build(target="vitis_hls", mode=backend, project=tmp_path / f"vitis_{backend}")


def run_all(schedule, backends, args, tmp_path, **rtl_options) -> dict:
    """backend -> outputs (a tuple of arrays) of ``schedule`` on ``args``."""
    out = {}
    for b in backends:
        got = build(schedule, b, tmp_path, **rtl_options)(*args)
        out[b] = got if isinstance(got, tuple) else (got,)
    return out


def assert_identical(results: dict):
    """Every backend's outputs equal, bit for bit (same dtype, same values)."""
    names = list(results)
    ref = results[names[0]]
    for b in names[1:]:
        for k, (x, y) in enumerate(zip(ref, results[b])):
            assert x.dtype == y.dtype and x.shape == y.shape, (names[0], b, k, x.dtype, y.dtype, x.shape, y.shape)
            np.testing.assert_array_equal(y, x, err_msg=f"output {k}: {b} differs from {names[0]}")
