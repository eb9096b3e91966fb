"""Bad command-line inputs: each ends in one clear error line and a non-zero exit, never a traceback,
and is caught before any long work (no checkpoint written, no file overwritten)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from allo_ext.cli import app
from allo_ext.data import make_jets_array, write
from allo_ext.outputs import run_lock

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def _jets(n: int, n_part: int = 10, seed: int = 0):
    g = np.random.default_rng(seed)
    y = np.arange(n) % 5
    cons = g.normal(size=(n, n_part, 16)).astype(np.float32)
    cons[:, :, 6] += y[:, None]
    return cons, make_jets_array(y)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clierr")
    write(d / "jets.h5", *_jets(300))
    write(d / "five.h5", *_jets(40, n_part=5))  # too few particles for an 8-particle model
    write(d / "small.h5", *_jets(50))
    r = runner.invoke(app, ["train", "--data", str(d / "jets.h5"), "--out", str(d / "run"), "--epochs", "2",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    # Broken checkpoints
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.pt").write_bytes(os.urandom(4096))
    good = (d / "run" / "best_model.pt").read_bytes()
    (d / "truncated.pt").write_bytes(good[: len(good) // 2])
    torch.save({"format_version": 1, "epoch": 3}, d / "nomodel.pt")
    torch.save({"format_version": 1, "model": {}, "model_config": {}, "obj": _Foreign()}, d / "foreign.pt")
    # Broken jet files
    with h5py.File(d / "group.h5", "w") as f:
        f["jetConstituentList"] = np.zeros((3, 10, 16), np.float32)
        f.create_group("jets")
    cons, jets = _jets(2000)
    with h5py.File(d / "damaged.h5", "w") as f:
        f.create_dataset("jetConstituentList", data=cons, chunks=(100, 10, 16), compression="gzip")
        f.create_dataset("jets", data=jets)
    raw = bytearray((d / "damaged.h5").read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 4096] = os.urandom(4096)
    (d / "damaged.h5").write_bytes(bytes(raw))
    (d / "foreign").mkdir()
    (d / "foreign" / "thesis.tex").write_text("precious")
    (d / "afile").write_text("not a directory")
    return d


class _Foreign:
    pass


def assert_clean_error(result, *words: str):
    """Exit code 1, one 'error:' line that names what went wrong, and no traceback."""
    out = result.output
    assert result.exit_code == 1, f"exit {result.exit_code}:\n{out}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, out
    assert not any(ln.startswith("  ") or ln.startswith("File ") for ln in lines[lines.index(errors[0]):]), out
    for w in words:
        assert w.lower() in errors[0].lower(), f"{w!r} not in {errors[0]!r}"
    return errors[0]


def bad(*args: str, words=()):
    result = runner.invoke(app, [str(a) for a in args])
    return assert_clean_error(result, *words)


CASES = {
    # checkpoints
    "empty checkpoint": (lambda d: ["compile", d / "empty.pt", "--out", d / "o1"], ["empty"]),
    "garbage checkpoint": (lambda d: ["compile", d / "garbage.pt", "--out", d / "o2"], ["corrupt"]),
    "truncated checkpoint": (lambda d: ["verify", d / "truncated.pt", "--data", d / "jets.h5"], ["corrupt"]),
    "checkpoint without model": (lambda d: ["compile", d / "nomodel.pt", "--out", d / "o3"], ["lacks", "model"]),
    "foreign pickled checkpoint": (lambda d: ["compile", d / "foreign.pt", "--out", d / "o4"], ["not an allo-ext"]),
    "no checkpoint": (lambda d: ["compile", d / "nothing", "--out", d / "o5"], ["no checkpoint"]),
    # jet files
    "jets stored as a group": (lambda d: ["data", "inspect", d / "group.h5"], ["group", "not a dataset"]),
    "damaged h5 chunk": (lambda d: ["data", "inspect", d / "damaged.h5"], ["damaged"]),
    "8-particle checkpoint, 5-particle data": (
        lambda d: ["verify", d / "run", "--data", d / "five.h5", "--backends", "llvm"], ["5 particles", "8"]),
    # train options
    "max-lr 1e30": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t1", "--max-lr", "1e30"], ["max_lr"]),
    "train-config lr=fast": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t2",
                                        "--train-config", "lr=fast"], ["lr", "number", "fast"]),
    "batch size -1": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t3", "--batch-size", "-1"],
                      ["batch_size"]),
    "n-particles 0": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t4", "--n-particles", "0"],
                      ["--n-particles"]),
    "duplicate features": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t5", "--features",
                                      "pT_rel,eta_rel,pT_rel"], ["pT_rel", "more than once"]),
    "unknown feature": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t6", "--features", "pt"],
                        ["unknown feature"]),
    "test data missing": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t7", "--test-data",
                                     d / "nope.h5"], ["nope.h5"]),
    "test data too few particles": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "t8", "--test-data",
                                               d / "five.h5"], ["--test-data", "5 particles"]),
    "out is a file": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "afile"], ["is a file"]),
    "out is read-only": (lambda d: ["train", "--data", d / "jets.h5", "--out", "/proc/allo-ext-run"],
                         ["cannot write"]),
    "out is someone else's": (lambda d: ["train", "--data", d / "jets.h5", "--out", d / "foreign"],
                              ["not written by allo-ext", "--force"]),
    "onecycle warm-up of one step": (lambda d: ["train", "--data", d / "small.h5", "--out", d / "t9", "--epochs", "1",
                                                "--batch-size", "9", "--no-progress"], ["onecycle", "warm-up"]),
    # compile options
    "vhls with a mode": (lambda d: ["compile", d / "run", "--target", "vhls", "--mode", "csim", "--out", d / "c1"],
                         ["--mode", "vitis_hls"]),
    "compile into a foreign dir": (lambda d: ["compile", d / "run", "--target", "llvm", "--out", d / "foreign"],
                                   ["not written by allo-ext"]),
    "unknown target": (lambda d: ["compile", d / "run", "--target", "fpga", "--out", d / "c2"], ["fpga"]),
    # verify options
    "verify backends ,": (lambda d: ["verify", d / "run", "--data", d / "jets.h5", "--backends", ","],
                          ["--backends", "no backend"]),
    "verify unknown backend": (lambda d: ["verify", d / "run", "--data", d / "jets.h5", "--backends", "gpu"],
                               ["gpu"]),
    "verify atol -1": (lambda d: ["verify", d / "run", "--data", d / "jets.h5", "--atol", "-1"], ["--atol"]),
    "verify json into a directory": (lambda d: ["verify", d / "run", "--data", d / "jets.h5", "--backends", "llvm",
                                                "--json", d / "foreign"], ["--json", "directory"]),
    "verify n 0": (lambda d: ["verify", d / "run", "--data", d / "jets.h5", "--n", "0"], ["--n"]),
    # data options
    "inspect n-particles 0": (lambda d: ["data", "inspect", d / "jets.h5", "--n-particles", "0"], ["--n-particles"]),
    "generate workers 0": (lambda d: ["data", "generate", "--out", d / "g.h5", "--workers", "0"], ["--workers"]),
    "generate 3 jets over 5 classes": (lambda d: ["data", "generate", "--out", d / "g.h5", "--n-jets", "3"],
                                       ["--n-jets", "5 classes"]),
    "generate over an existing file": (lambda d: ["data", "generate", "--out", d / "jets.h5", "--n-jets", "5"],
                                       ["already exists", "--force"]),
    "generate into a directory": (lambda d: ["data", "generate", "--out", d / "foreign", "--n-jets", "5"],
                                  ["is a directory"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_clean_line(files, case):
    make_args, words = CASES[case]
    before = sorted(p.name for p in files.iterdir())
    bad(*make_args(files), words=words)
    # Nothing was started: no new run or project directory appeared, nothing was overwritten.
    after = sorted(p.name for p in files.iterdir())
    assert after == before
    assert (files / "foreign" / "thesis.tex").read_text() == "precious"


def test_second_training_into_a_locked_run_is_refused(files):
    with run_lock(files / "run"):
        bad("train", "--data", files / "jets.h5", "--out", files / "run", "--epochs", "2", "--no-progress",
            words=["in use"])


def test_fresh_removes_the_old_best_model(files, tmp_path):
    """--fresh with no validation split must not leave the old run's best_model.pt for compile."""
    out = tmp_path / "r"
    r = runner.invoke(app, ["train", "--data", str(files / "jets.h5"), "--out", str(out), "--epochs", "2",
                            "--no-progress"])
    assert r.exit_code == 0 and (out / "best_model.pt").is_file()
    r = runner.invoke(app, ["train", "--data", str(files / "jets.h5"), "--out", str(out), "--epochs", "3",
                            "--no-progress", "--fresh", "--train-config", "restore_best=false",
                            "--n-particles", "4"])
    assert r.exit_code == 0, r.output
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 3 and ck["model_config"]["n_particles"] == 4
    if (out / "best_model.pt").exists():  # rewritten by the new run, never the old one
        assert torch.load(out / "best_model.pt", weights_only=True)["model_config"]["n_particles"] == 4


def test_seed_seeds_the_weight_initialisation(files, tmp_path):
    """Two runs with one seed are identical, another seed differs, whatever torch's RNG held before."""
    weights = []
    for k, seed in enumerate((7, 7, 8)):
        torch.manual_seed(1000 + k)  # the RNG state the command starts from must not matter
        out = tmp_path / f"s{k}"
        r = runner.invoke(app, ["train", "--data", str(files / "small.h5"), "--out", str(out), "--epochs", "1",
                                "--seed", str(seed), "--no-progress", "--train-config", "scheduler=constant"])
        assert r.exit_code == 0, r.output
        weights.append(torch.load(out / "checkpoint.pt", weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_force_writes_into_a_foreign_directory(files, tmp_path):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = runner.invoke(app, ["compile", str(files / "run"), "--target", "vhls", "--out", str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert (out / "kernel.cpp").is_file() and (out / "notes.txt").read_text() == "mine"
    # Ours now: compiling again needs no --force.
    r = runner.invoke(app, ["compile", str(files / "run"), "--target", "vhls", "--out", str(out)])
    assert r.exit_code == 0, r.output


def _cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "allo_ext.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.slow
def test_real_process_one_line_and_debug_traceback(files):
    """Outside CliRunner: the empty checkpoint that used to print only 'Aborted.', then --debug."""
    r = _cli("compile", files / "empty.pt", "--out", files / "o9")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "Aborted" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "empty" in lines[0], r.stderr
    r = _cli("--debug", "compile", files / "garbage.pt", "--out", files / "o9")
    assert r.returncode != 0 and "Traceback" in r.stderr and "CheckpointError" in r.stderr


def test_unexpected_errors_are_one_line_too(monkeypatch, files):
    """A bug (not a user error) still ends in one line, pointing to --debug."""
    import allo_ext.bundle as bundle

    def boom(*a, **k):
        raise RuntimeError("something internal\nwith a second line")

    monkeypatch.setattr(bundle, "load_bundle", boom)
    line = bad("compile", files / "run", "--out", files / "o10", words=["RuntimeError", "--debug"])
    assert "second line" not in line
