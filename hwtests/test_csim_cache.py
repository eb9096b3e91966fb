"""The C simulation cache is content-addressed and verified: a swapped, bit-flipped or truncated
library is rebuilt (right results, no SIGBUS), builds are atomic, and two processes building one
key at once both get a valid library."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import allo_ext
from allo_ext import float32
from allo_ext.backends.hls import csim
from allo_ext.kernels import nn as K

pytestmark = pytest.mark.csim
REPO = Path(__file__).resolve().parent.parent
X = np.array([-1.0, 0.5, 2.0], np.float32)


def _relu():
    return allo_ext.customize(K.relu(float32, (3,))).build(target="vitis_hls", mode="csim")


def _silu():
    return allo_ext.customize(K.silu(float32, (3,))).build(target="vitis_hls", mode="csim")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLO_EXT_CACHE", str(tmp_path))
    return tmp_path


def _count_builds(monkeypatch):
    calls = []
    real = csim._compile
    monkeypatch.setattr(csim, "_compile", lambda cmd, cwd: calls.append(cmd) or real(cmd, cwd))
    return calls


def _damage(lib: Path, how: str, other: Path):
    data = bytearray(lib.read_bytes())
    if how == "swap":  # another kernel's valid library under this name
        lib.write_bytes(other.read_bytes())
    elif how == "bitflip":  # one bit in the code section
        data[len(data) // 3] ^= 0x10
        lib.write_bytes(bytes(data))
    elif how == "truncate":
        with open(lib, "r+b") as f:
            f.truncate(len(data) // 2)
    elif how == "empty":
        lib.write_bytes(b"")
    elif how == "no hash":
        lib.with_name(lib.name + ".sha256").unlink()


@pytest.mark.parametrize("how", ["swap", "bitflip", "truncate", "empty", "no hash"])
def test_a_damaged_cached_library_is_rebuilt(cache, monkeypatch, how):
    first, other = _relu(), _silu()
    _damage(first.library, how, other.library)
    calls = _count_builds(monkeypatch)
    again = _relu()
    assert not again.cache_hit and len(calls) == 1
    np.testing.assert_array_equal(again(X), [0.0, 0.5, 2.0])
    assert csim.verified_library(again.library) is not None  # repaired on disk too
    calls.clear()
    assert _relu().cache_hit and not calls


def test_truncating_a_loaded_library_does_not_crash_the_process(cache):
    """The process maps a private copy: truncating the cache file under it is harmless (was SIGBUS)."""
    code = textwrap.dedent(f"""
        import numpy as np, allo_ext
        from allo_ext import float32
        from allo_ext.kernels import nn as K
        f = allo_ext.customize(K.relu(float32, (3,))).build(target="vitis_hls", mode="csim")
        open(f.library, "r+b").truncate(100)
        print(f(np.array([-1.0, 0.5, 2.0], np.float32)).tolist())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=str(REPO), ALLO_EXT_CACHE=str(cache)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[0.0, 0.5, 2.0]"


def test_compile_never_copies_a_library_changed_after_loading(cache):
    f = _relu()
    f.library.write_bytes(b"\x7fELF not really")
    with pytest.raises(allo_ext.AlloError, match="changed on disk"):
        f.library_bytes()


def test_partial_builds_are_cleaned_up(cache, monkeypatch):
    """A build killed half way leaves a build-* directory; the next build removes it. A failed compiler
    run leaves no library and no hash."""
    first = _relu()
    d = first.directory
    (d / "build-killed").mkdir()
    (d / "build-killed" / "junk.o").write_bytes(b"x")
    first.library.write_bytes(b"")  # force a rebuild of this key
    _relu()
    assert not (d / "build-killed").exists()
    assert not list(d.glob(".load-*"))  # private copies are unlinked once loaded

    def broken(cmd, cwd):
        (Path(cwd) / cmd[cmd.index("-o") + 1]).write_bytes(b"half a library")
        return subprocess.CompletedProcess(cmd, 1, "", "kernel.cpp:1:1: error: killed\n")

    monkeypatch.setattr(csim, "_compile", broken)
    first.library.write_bytes(b"")
    with pytest.raises(csim.CSimCompileError):
        _relu()
    assert not first.library.exists() and not first.library.with_name(first.library.name + ".sha256").exists()


def test_two_processes_building_one_key(cache):
    code = textwrap.dedent("""
        import sys, numpy as np, allo_ext
        from allo_ext import float32
        from allo_ext.kernels import nn as K
        f = allo_ext.customize(K.silu(float32, (7,))).build(target="vitis_hls", mode="csim")
        x = np.linspace(-3, 3, 7, dtype=np.float32)
        ref = x / (1 + np.exp(-x.astype(np.float64)))
        assert np.allclose(f(x), ref, rtol=1e-5, atol=1e-6), f(x)
        print("hit" if f.cache_hit else "built")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO), ALLO_EXT_CACHE=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    # The build lock makes the second process use the first one's build.
    assert sorted(o[0].strip() for o in outs) == ["built", "hit"]
    libs = list((cache / "csim").glob("*/libkernel_*.so"))
    assert len(libs) == 1 and csim.verified_library(libs[0]) is not None
