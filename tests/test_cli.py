"""The `allo-ext` commands, run for real (in-process through typer's CliRunner) on tiny data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from allo_ext.cli import app, parse_assignments
from allo_ext.data import make_jets_array, split_indices, write

runner = CliRunner()
N_JETS, N_PART = 300, 10
PT_REL, ETA_REL, PHI_REL = 6, 8, 11  # columns in the hls4ml feature order


def _flat(text: str) -> str:
    """Rich wraps at 80 columns under the runner; compare without whitespace."""
    return "".join(text.split()).replace("│", "")


def invoke(*args: str, ok: bool = True):
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, f"{args} exited {result.exit_code}:\n{result.output}\n{result.exception!r}"
    return result


def _jets(n: int, seed: int):
    g = np.random.default_rng(seed)
    y = g.integers(0, 5, size=n)
    cons = g.normal(size=(n, N_PART, 16)).astype(np.float32)
    cons[:, :, PT_REL] += y[:, None]  # something to learn
    n_real = g.integers(4, N_PART + 1, size=n)
    cons[np.arange(N_PART)[None, :] >= n_real[:, None]] = 0.0  # zero-padded particles
    return cons, y


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A data file, a test file and a 2-epoch training run through `allo-ext train`."""
    d = tmp_path_factory.mktemp("cli")
    cons, y = _jets(N_JETS, 0)
    mass = (80.0 + 20.0 * y + np.random.default_rng(2).normal(size=N_JETS)).astype(np.float32)
    write(d / "jets.h5", cons, make_jets_array(y, j_mass=mass))
    tcons, ty = _jets(100, 1)
    write(d / "test.h5", tcons, make_jets_array(ty))
    result = invoke("train", "--data", str(d / "jets.h5"), "--out", str(d / "run"), "--epochs", "2",
                    "--test-data", str(d / "test.h5"), "--no-progress")
    return {"dir": d, "cons": cons, "y": y, "mass": mass, "train_output": result.output}


def test_data_inspect_counts_and_stats(run):
    result = invoke("data", "inspect", str(run["dir"] / "jets.h5"))
    out = _flat(result.output)
    assert f"jetConstituentList({N_JETS},{N_PART},16)" in out and f"jets({N_JETS},59)" in out
    counts = np.bincount(run["y"], minlength=5)
    for c in counts:
        assert f"{c}({c / N_JETS:.1%})" in out
    cons = run["cons"]
    real = cons[np.any(cons != 0, axis=-1)]
    assert f"pT_rel{real[:, PT_REL].mean():.4g}{real[:, PT_REL].std():.4g}" in out
    mult = np.any(cons != 0, axis=-1).sum(axis=1)
    assert f"mean{mult.mean():.1f}" in out
    medians = "".join(f"{np.median(run['mass'][run['y'] == k]):.4g}" for k in range(5))
    assert f"j_mass{medians}" in out
    assert "j_pt" not in out  # unfilled columns are left out


def test_data_inspect_names_missing_key(tmp_path):
    import h5py

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["jetConstituentList"] = np.zeros((3, 10, 16), np.float32)
    result = invoke("data", "inspect", str(tmp_path / "bad.h5"), ok=False)
    assert result.exit_code == 1
    assert "missing key 'jets'" in _flat(result.output).replace("missingkey", "missing key ")


def test_train_writes_checkpoint_bundle_and_metrics(run):
    d = run["dir"] / "run"
    for name in ("checkpoint.pt", "best_model.pt", "bundle.json", "history.png", "roc.png",
                 "test_metrics.json", "test_roc.png"):
        assert (d / name).is_file(), name
    out = _flat(run["train_output"])
    test = json.loads((d / "test_metrics.json").read_text())
    assert test["n_jets"] == 100
    assert f"testaccuracy:{test['accuracy']:.4f}" in out
    ck = torch.load(d / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2
    b = ck["model_config"]
    assert b["model"] == "jetformer" and b["n_particles"] == 8
    assert b["features"] == ["pT_rel", "eta_rel", "phi_rel"]
    # The normaliser comes from the training rows only (90% of the file), over real particles.
    train_idx, _ = split_indices(N_JETS, 0.1, 0)
    x = run["cons"][train_idx][:, :8][:, :, [PT_REL, ETA_REL, PHI_REL]]
    real = x[np.any(x != 0, axis=-1)]
    np.testing.assert_allclose(b["normaliser"]["mean"], real.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(b["normaliser"]["std"], real.std(axis=0), rtol=1e-5)


def test_train_again_resumes_finished_run(run):
    d = run["dir"] / "run"
    before = (d / "checkpoint.pt").stat().st_mtime_ns
    result = invoke("train", "--data", str(run["dir"] / "jets.h5"), "--out", str(d), "--epochs", "2",
                    "--no-progress")
    assert (d / "checkpoint.pt").stat().st_mtime_ns == before  # finished: loaded, not retrained
    assert "bestepoch" in _flat(result.output)


def test_train_refuses_to_resume_with_other_settings(run):
    d = run["dir"] / "run"
    result = invoke("train", "--data", str(run["dir"] / "jets.h5"), "--out", str(d), "--epochs", "3",
                    "--no-progress", ok=False)
    flat = _flat(result.output)
    assert result.exit_code == 1 and "cannotresume" in flat and "epochs:checkpoint2vsnow3" in flat
    assert "--fresh" in flat


def test_train_rejects_unknown_config_field(run, tmp_path):
    result = invoke("train", "--data", str(run["dir"] / "jets.h5"), "--out", str(tmp_path / "r"),
                    "--config", "bogus=1", ok=False)
    assert result.exit_code == 1
    assert "bogus" in result.output and "validfields" in _flat(result.output)


def test_compile_llvm_writes_mlir_and_readme(run, tmp_path):
    out = tmp_path / "llvm"
    invoke("compile", str(run["dir"] / "run"), "--target", "llvm", "--out", str(out))
    mlir = (out / "model.mlir").read_text()
    assert "func.func @forward" in mlir and "memref.global" in mlir and "affine.for" in mlir
    readme = (out / "README.md").read_text()
    bundle = json.loads((out / "bundle.json").read_text())
    assert "pT_rel" in readme and "model.mlir" in readme and "mlir-opt" in readme
    assert f"{bundle['normaliser']['mean'][0]:.6g}" in readme


def test_compile_unavailable_target_is_a_clear_error(run, tmp_path, monkeypatch):
    import allo_ext.backends as backends

    monkeypatch.setattr(backends, "TARGETS", ("llvm", "vhls", "vitis_hls"))
    result = invoke("compile", str(run["dir"] / "run"), "--target", "rtl", "--out", str(tmp_path / "r"), ok=False)
    assert result.exit_code == 1
    flat = _flat(result.output)
    assert "target'rtl'isnotavailable" in flat and "llvm,vhls,vitis_hls" in flat


def test_verify_prints_table_and_writes_rows(run, tmp_path):
    js = tmp_path / "rows.json"
    result = invoke("verify", str(run["dir"] / "run"), "--data", str(run["dir"] / "test.h5"), "--n", "50",
                    "--backends", "llvm", "--json", str(js))
    rows = {r["backend"]: r for r in json.loads(js.read_text())}
    assert set(rows) == {"torch", "llvm"}
    assert rows["llvm"]["status"] == "ok" and rows["llvm"]["n"] == 50
    assert rows["llvm"]["max_abs_err"] < 1e-5
    assert rows["llvm"]["accuracy"] == pytest.approx(rows["torch"]["accuracy"])
    assert "llvm" in result.output and "reference" in result.output


def test_verify_missing_checkpoint(tmp_path):
    result = invoke("verify", str(tmp_path / "nothing"), "--data", str(tmp_path / "x.h5"), ok=False)
    assert result.exit_code == 1 and "nocheckpoint" in _flat(result.output)


def test_bench_lists_and_rejects_unknown():
    result = invoke("bench")
    assert "train" in result.output and "generate" in result.output
    result = invoke("bench", "no_such_bench", ok=False)
    assert result.exit_code == 1 and "no_such_bench" in result.output


def test_parse_assignments():
    assert parse_assignments(["dim=16", "norm=layer", "hidden=[64,32]", "lr=1e-3"], "--config") == {
        "dim": 16, "norm": "layer", "hidden": [64, 32], "lr": 0.001}
    with pytest.raises(ValueError, match="key=value"):
        parse_assignments(["dim"], "--config")
