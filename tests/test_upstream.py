"""``allo-ext upstream``: every library kernel written in Allo's syntax, loaded back through the
Allo-syntax loader (the path Allo's own files take here), built, and checked against torch (the
torch references and instances are the ones of hwtests/test_csim.py CASES)."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from allo_ext.kernels.registry import KERNELS
from allo_ext.lang.source import load_allo_source
from allo_ext.upstream import UpstreamError, write_upstream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM = os.path.join(ROOT, "tests", "allo_suite", "shim")


def _cases():
    spec = importlib.util.spec_from_file_location("_csim_cases", os.path.join(ROOT, "hwtests", "test_csim.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CSIM = _cases()


@pytest.fixture(scope="module")
def allo():
    sys.path.insert(0, SHIM)
    try:
        import allo
        yield allo
    finally:
        sys.path.remove(SHIM)


def _instance_args(case):
    """The factory arguments of a CASES entry: recorded by calling its make() through a spy."""
    fn = case.make()
    return fn


@pytest.mark.parametrize("name", sorted(CSIM.CASES))
def test_upstream_round_trip_matches_torch(allo, name, tmp_path, monkeypatch):
    case = CSIM.CASES[name]
    calls = []
    entry = KERNELS[name]
    real = entry.factory
    # record the arguments CASES instantiates the kernel with
    monkeypatch.setattr(CSIM.K, name, lambda *a, **k: calls.append((a, k)) or real(*a, **k), raising=False)
    case.make()
    (args, kwargs), = calls
    if kwargs:
        sig = __import__("inspect").signature(real.__wrapped__)
        args = list(sig.bind(*args, **kwargs).args)
    info = write_upstream(name, list(args), str(tmp_path))
    mod = load_allo_source(str(tmp_path / f"{info['kernel']}.py"), module_name=f"up_{name}")
    s = allo.customize(getattr(mod, info["kernel"]), instantiate=mod.INSTANTIATE)
    getattr(mod, f"schedule_{info['kernel']}")(s)
    inputs = case.args(np.random.default_rng(7))
    got = CSIM.as_tuple(s.build()(*inputs))
    want = tuple(CSIM.to_numpy(w) for w in CSIM.as_tuple(case.ref(*inputs)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w.astype(g.dtype), rtol=1e-5, atol=1e-5)


def test_every_library_kernel_has_a_round_trip():
    assert sorted(KERNELS) == sorted(CSIM.CASES)


def test_cli_writes_kernel_test_and_golden_and_the_test_passes(tmp_path):
    out = tmp_path / "up"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "allo_ext.cli", "upstream", "layernorm", "--out", str(out),
                        "--args", "float32, (2, 5)"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["layernorm.py", "layernorm_golden.npz", "test_layernorm.py"]
    text = (out / "layernorm.py").read_text()
    assert "def layernorm[T, " in text and "def schedule_layernorm(s):" in text and "s.pipeline(" in text
    # the Allo-style test runs (against our `allo` shim) and passes
    env["PYTHONPATH"] = os.pathsep.join([SHIM, str(out), env["PYTHONPATH"]])
    env["ALLO_SOURCE_ROOTS"] = str(out)  # the shim loads PEP 695 files from there through our loader
    sys_ini = os.path.join(ROOT, "tests", "allo_suite", "harness.ini")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", sys_ini,
                        str(out / "test_layernorm.py")], capture_output=True, text=True, env=env, cwd=str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    # never overwrite a user's files
    r = subprocess.run([sys.executable, "-m", "allo_ext.cli", "upstream", "layernorm", "--out", str(out),
                        "--args", "float32, (2, 5)"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "refusing to overwrite" in (r.stdout + r.stderr)
    assert "Traceback" not in r.stderr


def test_unknown_kernel_is_a_clear_error(tmp_path):
    with pytest.raises(UpstreamError, match="no library kernel named 'nope'"):
        write_upstream("nope", [], str(tmp_path))
