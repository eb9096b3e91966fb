"""allo_ext.verify: rows per backend against torch eager, with skipped and failed rows visible."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from rich.console import Console

from allo_ext.models import JetFormer
from allo_ext.verify import failures, render_table, verify


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = JetFormer.tiny().eval()
    # Non-trivial BatchNorm statistics, so eval-mode normalisation is exercised.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    g = np.random.default_rng(0)
    X = g.normal(size=(64, 8, 3)).astype(np.float32)
    y = g.integers(0, 5, size=64)
    with torch.no_grad():
        ref = model(torch.from_numpy(X)).numpy()
    return model, X, y, ref


def test_llvm_row_matches_torch(model_and_data):
    model, X, y, ref = model_and_data
    rows = verify(model, X, y, backends=["llvm"])
    assert [r.backend for r in rows] == ["torch", "llvm"]
    torch_row, llvm = rows
    acc = float((ref.argmax(1) == y).mean())  # plain numpy on torch's own output
    assert torch_row.status == "reference" and torch_row.accuracy == pytest.approx(acc)
    assert llvm.status == "ok" and not llvm.failed
    assert llvm.n == 64
    assert 0.0 <= llvm.max_abs_err < 1e-5
    assert llvm.argmax_agreement == 1.0
    assert llvm.accuracy == pytest.approx(acc)
    assert llvm.build_s > 0 and llvm.run_s > 0


def test_llvm_run_time_excludes_lazy_compiles(model_and_data):
    """13 jets run modules for 8, 4 and 1 jets, compiled on first use: those compiles (made slow
    here on purpose) count as build time, and run_s (the jets/s column) times warm modules only."""
    import time

    from allo_ext.verify import _build_llvm

    model, X, y, ref = model_and_data
    built = {}

    def slow_lazy_builder(model, example, schedule):
        fn = _build_llvm(model, example, schedule)
        inner = fn._builder

        def slow(size):
            time.sleep(0.4)
            return inner(size)

        fn._builder = slow
        built["fn"] = fn
        return fn

    rows = verify(model, X[:13], y[:13], backends=[("llvm", slow_lazy_builder)])
    llvm = rows[1]
    assert llvm.status == "ok", llvm.message
    assert sorted(built["fn"].timings["lazy_build_s"]) == [1, 4, 8]
    assert llvm.build_s >= 1.2
    assert llvm.run_s < 0.4


def test_missing_compiler_gives_skipped_row(model_and_data, monkeypatch, tmp_path):
    """No g++ on PATH: the real csim build raises ToolNotFoundError; the row says so."""
    model, X, y, _ = model_and_data
    monkeypatch.setenv("PATH", str(tmp_path))
    rows = verify(model, X, y, backends=["csim"])
    assert len(rows) == 2
    csim = rows[1]
    assert csim.backend == "csim" and csim.status == "skipped"
    assert csim.message.startswith("skipped: ") and "g++" in csim.message and "apt-get install g++" in csim.message
    assert csim.max_abs_err is None and csim.accuracy is None
    assert not csim.failed and failures(rows) == []


def test_rtl_not_built_is_skipped(model_and_data, monkeypatch):
    import allo_ext.backends as backends

    model, X, y, _ = model_and_data
    monkeypatch.setattr(backends, "TARGETS", ("llvm", "vhls", "vitis_hls"))
    row = verify(model, X, y, backends=["rtl"])[1]
    assert row.status == "skipped" and "rtl" in row.message and "TARGETS" in row.message


def test_wrong_backend_is_a_mismatch(model_and_data):
    model, X, y, ref = model_and_data
    shifted = ref.copy()
    shifted[:16, 0] += 10.0  # jets 0..15 now all predict class 0

    def build(model, example, schedule):
        assert example.shape == (1, 8, 3) and schedule == "default"
        return lambda x: shifted

    rows = verify(model, X, y, backends=[("bad", build)])
    bad = rows[1]
    assert bad.status == "mismatch" and bad.failed and failures(rows) == [bad]
    assert bad.max_abs_err == pytest.approx(10.0, abs=1e-5)
    expected_agree = 1.0 - np.sum(ref[:16].argmax(1) != 0) / 64
    assert bad.argmax_agreement == pytest.approx(expected_agree)
    assert bad.accuracy == pytest.approx(float((shifted.argmax(1) == y).mean()))
    assert "exceeds the tolerance" in bad.message


def test_build_and_run_errors_are_error_rows(model_and_data):
    model, X, y, ref = model_and_data

    def broken_build(model, example, schedule):
        raise RuntimeError("emitter exploded on op foo")

    def broken_run(model, example, schedule):
        def f(x):
            raise IndexError("out of range in kernel bar")
        return f

    def nan_run(model, example, schedule):
        out = ref.copy()
        out[5, 2] = np.nan
        return lambda x: out

    def good(model, example, schedule):
        return lambda x: ref

    rows = verify(model, X, y, backends=[("b1", broken_build), ("b2", broken_run), ("b3", nan_run), ("good", good)])
    assert [r.backend for r in rows] == ["torch", "b1", "b2", "b3", "good"]
    b1, b2, b3, good_row = rows[1:]
    assert b1.status == "error" and "build failed" in b1.message and "emitter exploded on op foo" in b1.message
    assert b2.status == "error" and "run failed" in b2.message and "IndexError" in b2.message
    assert b3.status == "mismatch" and "1 of 64 jets" in b3.message
    assert good_row.status == "ok" and good_row.max_abs_err == 0.0  # broken backends do not stop the others
    assert [r.backend for r in failures(rows)] == ["b1", "b2", "b3"]


def test_unknown_backend_and_bad_inputs(model_and_data):
    model, X, y, _ = model_and_data
    with pytest.raises(ValueError, match="unknown backend 'cuda'.*llvm, csim, rtl"):
        verify(model, X, y, backends=["cuda"])
    with pytest.raises(ValueError, match=r"y must be \(64,\)"):
        verify(model, X, y[:10], backends=[])


def test_table_shows_every_row_and_reason(model_and_data, monkeypatch, tmp_path):
    model, X, y, ref = model_and_data
    monkeypatch.setenv("PATH", str(tmp_path))
    rows = verify(model, X, None, backends=[("fake", lambda m, e, s: (lambda x: ref)), "csim"])
    assert rows[0].accuracy is None  # no labels, no accuracy
    console = Console(record=True, width=120)
    console.print(render_table(rows))
    text = console.export_text()
    for word in ("torch", "reference", "fake", "ok", "csim", "skipped", "g++"):
        assert word in text
    d = rows[2].to_dict()
    assert d["status"] == "skipped" and d["ok"] is False and d["failed"] is False


@pytest.mark.rtl
@pytest.mark.csim
def test_rtl_row_is_fixed_point_bit_identical_to_csim(monkeypatch):
    """The rtl row simulates the model at ap_fixed<16,6> on the first RTL_JETS jets and passes only if
    csim at the same precision gives the same bits; a backend that differs by one LSB is a mismatch.
    (A small particle MLP, streamed through the latency route's pipeline in Icarus; the whole
    JetFormer-tiny in Verilator is under ``slow`` in tests/test_latency_rtl.py.)"""
    import allo_ext.verify as V
    from allo_ext.models import ParticleMLP

    torch.manual_seed(0)
    model = ParticleMLP(n_particles=2, n_features=3, hidden=(4,), n_classes=3).eval()
    X = np.random.default_rng(1).normal(size=(5, 2, 3)).astype(np.float32)
    monkeypatch.setattr(V, "RTL_JETS", 2)
    row = verify(model, X, None, backends=["rtl"])[1]
    assert row.status == "ok" and row.n == 2, row
    assert "bit-identical" in row.message and "ap_fixed<16,6>" in row.message and "cycles" in row.message
    assert "latency route" in row.message and "II=1" in row.message
    assert row.max_abs_err < 0.1 and row.argmax_agreement is not None

    built_before_run = []
    real_run = V._FixedPoint.run

    def run(self, Xs):
        built_before_run.append(self.rtl._sim is not None)
        return real_run(self, Xs)

    monkeypatch.setattr(V._FixedPoint, "run", run)
    verify(model, X, None, backends=["rtl"])
    assert built_before_run == [True], "the simulator build belongs to build s, not to the timed run"
    monkeypatch.setattr(V._FixedPoint, "run", real_run)

    real = V._FixedPoint.__init__

    def off_by_one_lsb(self, *a):  # csim's answer moved by one LSB of ap_fixed<16,6>
        real(self, *a)
        good = self.csim
        self.csim = lambda x: np.asarray(good(x)) + 2.0 ** -10

    monkeypatch.setattr(V._FixedPoint, "__init__", off_by_one_lsb)
    row = verify(model, X, None, backends=["rtl"])[1]
    assert row.status == "mismatch" and "2 of 2 jets differ from csim" in row.message

    # A simulation over its wall-clock budget (the demo sets one) is a skipped row naming the budget,
    # never a pass: nothing was compared.
    monkeypatch.setattr(V._FixedPoint, "__init__", real)
    monkeypatch.setattr(V, "RTL_SECONDS", 1e-6)
    row = verify(model, X, None, backends=["rtl"])[1]
    assert row.status == "skipped" and "1e-06 s budget" in row.message and "nothing was compared" in row.message
