"""Yosys ``synth_xilinx`` on the latency route's Verilog: LUT/FF/DSP of the written design.

The design's lookup tables are ``$readmemh`` files next to the sources; Yosys reads them from its
working directory, so the sources and the table files are written into one directory, and the
sources are read with ``-defer`` (a table module is elaborated only with its file parameter). The family
is UltraScale+ (``xcup``: DSP48E2, 27 x 18 multipliers), the parts the L1 trigger uses (VU9P), and
``-nobram``: da4ml marks its tables as distributed ROM (LUTs), which Yosys would otherwise put in block RAM.
Results are cached by content (``rtl.yosys.synthesize``'s cache directory and key scheme).
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from ...cache import cache_root, sha256
from ..rtl.simulate import _version, find_tool
from ..rtl.yosys import Resources, SynthesisError, parse_stat

FAMILY = "xcup"


def script(top: str, files: list[str]) -> str:
    reads = "\n".join(f"read_verilog -defer {f}" for f in files)
    return f"{reads}\nsynth_xilinx -family {FAMILY} -top {top} -flatten -noiopad -nobram\ntee -o stat.txt stat\n"


def synthesize_sources(sources: dict, memfiles: dict, top: str, cache_dir=None, timeout: float = 3600) -> Resources:
    """``sources``/``memfiles``: file name -> text (``LatencyDesign._sources()``)."""
    yosys = find_tool("yosys")
    # da4ml names its table files by random UUIDs: rename them by content, so that one design always has
    # one cache key (a Yosys run on a design with tables can take many minutes)
    rename = {n: f"table_{sha256(t.encode())[:24]}.mem" for n, t in sorted(memfiles.items())}
    memfiles = {rename[n]: t for n, t in memfiles.items()}
    fixed = {}
    for name, text in sources.items():
        for old, new in rename.items():
            text = text.replace(old, new)
        fixed[name] = text
    sources = fixed
    files = sorted(sources)
    blob = json.dumps([sorted(sources.items()), sorted(memfiles.items()), script(top, files), _version(yosys)])
    key = sha256(blob.encode())[:32]
    root = Path(cache_dir) if cache_dir else cache_root("latency")
    entry = root / f"synth-latency-{key}.json"
    try:
        cached = json.loads(entry.read_text())
        r = Resources(cached["resources"])
        r.cells, r.log = cached["cells"], ""
        return r
    except (OSError, ValueError, KeyError):
        pass
    with tempfile.TemporaryDirectory(prefix="allo-lat-yosys-") as d:
        for name, text in {**sources, **memfiles}.items():
            Path(d, name).write_text(text)
        Path(d, "synth.ys").write_text(script(top, files))
        try:
            p = subprocess.run([yosys, "-q", "-s", "synth.ys"], cwd=d, capture_output=True, text=True, check=False,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise SynthesisError(f"latency route: Yosys ran longer than {timeout} s on '{top}'") from e
        stat = Path(d, "stat.txt")
        if p.returncode != 0 or not stat.is_file():
            tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-12:])
            raise SynthesisError(f"latency route: Yosys failed on '{top}' (exit {p.returncode}):\n{tail}")
        r = parse_stat(stat.read_text())
        r.log = ""
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".synth-", dir=root)
    with os.fdopen(fd, "w") as f:
        json.dump({"resources": dict(r), "cells": r.cells}, f)
    os.replace(tmp, entry)
    return r
