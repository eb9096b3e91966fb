"""Fixed-point QAT end to end: fine-tuning through the fake-quantised forward learns, the fine-tuned
model compiled at that precision gives exactly the fake-quantised outputs, and ``allo-ext quantize
--precision`` runs, writes its report and refuses bad input in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from allo_ext.cli import app
from allo_ext.compress.data import JetData
from allo_ext.compress.fixed_qat_train import check_bit_exact, fixed_predict, ptq_vs_qat, qat_finetune
from allo_ext.models import JetFormer

from test_compress_models import write_jets

runner = CliRunner()


def _jets(n, seed):
    g = np.random.default_rng(seed)
    y = g.integers(0, 5, size=n)
    x = g.normal(size=(n, 8, 3)).astype(np.float32)
    x[:, :, 0] += 0.8 * y[:, None]
    return x, y


def _data():
    xtr, ytr = _jets(512, 0)
    xva, yva = _jets(128, 1)
    xte, yte = _jets(128, 2)
    return JetData(xtr, ytr, xva, yva, xte, yte, 8, ("a", "b", "c"), "pt", None)


def _small():
    torch.manual_seed(0)
    return JetFormer.tiny(n_blocks=1).eval()


def test_qat_lowers_the_fixed_point_loss_and_compiles_bit_exact():
    data = _data()
    model = _small()
    prec = "ap_fixed<8,3>"
    before = fixed_predict(model, data.x_train[:256], prec, batch_size=64)
    qmodel, hist = qat_finetune(model, data, prec, epochs=2, lr=3e-3, batch_size=64, progress=False,
                                 keep_best=False)
    after = fixed_predict(qmodel, data.x_train[:256], prec, batch_size=64)
    y = torch.from_numpy(data.y_train[:256])
    nll = [float(torch.nn.functional.nll_loss(torch.from_numpy(o), y)) for o in (before, after)]
    assert nll[1] < nll[0], nll
    assert [h["epoch"] for h in hist["history"]] == [0, 1, 2]
    assert hist["best_epoch"] == 2
    # the original is untouched; the fine-tuned model changed
    assert not torch.equal(model.embed.weight, qmodel.embed.weight)
    chk = check_bit_exact(qmodel, data.x_test[:70], prec, batch_size=32)
    assert chk["jets_differing"] == 0 and chk["max_abs_diff"] == 0.0, chk


def test_ptq_vs_qat_report():
    data = _data()
    rep = ptq_vs_qat(_small(), data, ["ap_fixed<10,4>"], accum="ap_fixed<20,8>", epochs=1, lr=1e-3, check_n=0,
                     progress=False, log=lambda s: None)
    (row,) = rep["rows"]
    assert row["precision"] == "ap_fixed<10,4>" and rep["accum"] == "ap_fixed<20,8>"
    hist = row["qat"]
    assert hist["best_val_accuracy"] >= hist["history"][0]["val_accuracy"]  # epoch 0 is the PTQ model
    for k in ("ptq_accuracy", "qat_accuracy"):
        assert 0.0 <= row[k] <= 1.0
    assert rep["n_eval"] == 128


def test_quantize_cli_fixed_point(tmp_path):
    train, test = write_jets(tmp_path / "train.h5", 300, seed=0), write_jets(tmp_path / "test.h5", 80, seed=1)
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(train), "--out", str(run), "--epochs", "1",
                            "--config", "n_blocks=1", "--no-progress"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "q"
    r = runner.invoke(app, ["quantize", "--data", str(train), "--test-data", str(test), "--out", str(out),
                            "--checkpoint", str(run), "--precision", "ap_fixed<10,4>", "--epochs", "1",
                            "--check-n", "40", "--no-progress"])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "fixed_qat_report.json").read_text())
    (row,) = rep["rows"]
    assert row["bit_exact_llvm"]["jets_differing"] == 0 and row["bit_exact_llvm"]["n_jets"] == 40
    assert (out / "qat_ap_fixed_10_4.pt").stat().st_size > 1000
    # the saved model loads like a pruned one and gives the same fixed-point outputs it was checked with
    from allo_ext.compress.prune import load_model

    m, bundle = load_model(out / "qat_ap_fixed_10_4.pt")
    x, _ = bundle.load_data(test, n=16)
    assert np.isfinite(fixed_predict(m, x, "ap_fixed<10,4>", batch_size=16)).all()


@pytest.mark.parametrize("args, message", [
    (["--precision", "ap_fixed<16,6>"], "--checkpoint"),
    (["--precision", "ap_fixed<16>", "--checkpoint", "RUN"], "ap_fixed"),
    (["--precision", "float32", "--checkpoint", "RUN"], "not a fixed-point type"),
    (["--precision", "ap_fixed<16,6>", "--checkpoint", "nowhere"], "nowhere"),
    (["--accum", "ap_fixed<32,12>"], "--precision"),
])
def test_quantize_cli_fixed_point_errors_are_one_line(tmp_path, args, message):
    train = write_jets(tmp_path / "train.h5", 50, seed=0)
    run = tmp_path / "run"
    run.mkdir()
    args = [a.replace("RUN", str(run)) for a in args]
    r = runner.invoke(app, ["quantize", "--data", str(train), "--out", str(tmp_path / "q"), *args])
    assert r.exit_code != 0
    assert message in r.output and "Traceback" not in r.output, r.output
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) <= 3, r.output
    assert not (tmp_path / "q" / "fixed_qat_report.json").exists()


def test_quantize_cli_fixed_point_never_overwrites_foreign_files(tmp_path):
    train = write_jets(tmp_path / "train.h5", 50, seed=0)
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(train), "--out", str(run), "--epochs", "1",
                            "--config", "n_blocks=1", "--no-progress"])
    assert r.exit_code == 0, r.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    r = runner.invoke(app, ["quantize", "--data", str(train), "--out", str(foreign), "--checkpoint", str(run),
                            "--precision", "ap_fixed<16,6>"])
    assert r.exit_code == 1 and "--force" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
