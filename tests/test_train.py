"""allo_ext.train: exact resume after SIGKILL, metrics, schedules, early stopping, plots."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from allo_ext.train import (
    History,
    TrainConfig,
    compute_metrics,
    evaluate,
    fit,
    load_checkpoint,
    plot_history,
    plot_roc,
)

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A training script run in subprocesses. The sleep in forward() stretches each epoch to about
# 0.3 s so the test can SIGKILL it between checkpoints; the batch counter shows how many
# batches a process really trained (a resumed run must not redo finished epochs).
RESUME_SCRIPT = '''
import json, sys, time
from pathlib import Path
import numpy as np, torch
from allo_ext.train import TrainConfig, fit, seed_everything

EPOCHS, N_TRAIN, BATCH = 6, 320, 32

class Net(torch.nn.Module):
    def __init__(self, features=3, channels=8, classes=5, sleep=0.0):
        super().__init__()
        self.embed = torch.nn.Linear(features, channels)
        self.bn = torch.nn.BatchNorm1d(channels)
        self.drop = torch.nn.Dropout(0.2)  # consumes the global torch RNG every batch
        self.head = torch.nn.Linear(channels, classes)
        self.sleep, self.batches = sleep, 0

    def forward(self, x):
        if self.training:
            self.batches += 1
            time.sleep(self.sleep)
        z = self.drop(torch.relu(self.bn(self.embed(x).mean(1))))
        return torch.log_softmax(self.head(z), dim=-1)

rng = np.random.default_rng(1)
y = rng.integers(0, 5, N_TRAIN + 100)
X = (rng.normal(size=(len(y), 6, 3)) + 0.4 * y[:, None, None]).astype(np.float32)

out = Path(sys.argv[1])
seed_everything(123)  # different init if the run did not restore its checkpoint's weights
model = Net(sleep=float(sys.argv[2]))
config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, num_threads=1, progress=False,
                     restore_best=False, save_plots=False, seed=7)
fit(model, (X[:N_TRAIN], y[:N_TRAIN]), (X[N_TRAIN:], y[N_TRAIN:]), config, out,
    model_config={"features": 3, "channels": 8, "classes": 5})
torch.save(model.state_dict(), out / "final.pt")
(out / "batches.json").write_text(json.dumps(model.batches))
'''
EPOCHS, STEPS = 6, 10  # from the script: 320 samples / batch 32


@pytest.fixture
def start_script():
    """Starts the training script; kills whatever is still running when the test ends."""
    procs = []

    def start(script: Path, out: Path, sleep: float) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        proc = subprocess.Popen(
            [sys.executable, str(script), str(out), str(sleep)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _finish(proc: subprocess.Popen) -> None:
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"training script failed:\n{stdout}\n{stderr}"


def _epoch_on_disk(out: Path) -> int:
    path = out / "checkpoint.pt"
    if not path.exists():
        return 0
    # Plain torch.load: the file must always be complete (atomic replace) and weights-only.
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


def test_sigkill_then_resume_is_bit_identical(tmp_path, start_script):
    script = tmp_path / "train_script.py"
    script.write_text(RESUME_SCRIPT)
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"

    reference = start_script(script, ref_dir, 0.0)  # uninterrupted, runs alongside
    victim = start_script(script, run_dir, 0.03)
    deadline = time.monotonic() + 90
    while _epoch_on_disk(run_dir) < 2:
        assert victim.poll() is None, f"script died early: {victim.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint of epoch 2 within 90 s"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    killed_at = _epoch_on_disk(run_dir)
    assert 2 <= killed_at < EPOCHS, "the run finished before the kill; nothing was tested"
    assert not (run_dir / "final.pt").exists()
    # What a writer killed mid-save leaves behind must not disturb the resume.
    (run_dir / ".checkpoint.pt.999.dead.tmp").write_bytes(b"partial")

    resumed = start_script(script, run_dir, 0.0)
    _finish(resumed)
    _finish(reference)

    # The resumed process trained only the epochs after the checkpoint.
    assert json.loads((run_dir / "batches.json").read_text()) == (EPOCHS - killed_at) * STEPS

    ref_w = torch.load(ref_dir / "final.pt", weights_only=True)
    run_w = torch.load(run_dir / "final.pt", weights_only=True)
    assert ref_w.keys() == run_w.keys()
    differing = [k for k in ref_w if not torch.equal(ref_w[k], run_w[k])]
    assert differing == [], "weights differ after resume"
    # The seed-123 init of the script is overwritten by training: weights really moved.
    torch.manual_seed(123)
    fresh = torch.nn.Linear(3, 8)
    assert not torch.equal(fresh.weight, run_w["embed.weight"])

    ref_h = json.loads((ref_dir / "history.json").read_text())
    run_h = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in run_h["epochs"]] == list(range(1, EPOCHS + 1))
    assert len(run_h["batch_lr"]) == EPOCHS * STEPS
    for h in (ref_h, run_h):
        for e in h["epochs"]:
            del e["seconds"]  # wall clock, the only field allowed to differ
    assert run_h == ref_h

    ck = load_checkpoint(run_dir / "checkpoint.pt")
    assert ck["epoch"] == EPOCHS and ck["history"]["finished"]
    assert ck["model_config"] == {"features": 3, "channels": 8, "classes": 5}


class Interrupted(Exception):
    pass


class DropoutNet(torch.nn.Module):
    """Small model with dropout and BatchNorm; raises on training batch ``fail_at`` (1-based)."""

    def __init__(self, fail_at=None):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
            torch.nn.Dropout(0.3), torch.nn.Linear(16, 5), torch.nn.LogSoftmax(-1),
        )
        self.fail_at, self.batches = fail_at, 0

    def forward(self, x):
        if self.training:
            self.batches += 1
            if self.batches == self.fail_at:
                raise Interrupted
        return self.net(x)


@pytest.mark.parametrize("scheduler", ["onecycle", "plateau", "cosine", "constant"])
def test_resume_after_crash_in_process(tmp_path, scheduler):
    g = torch.Generator().manual_seed(5)
    y = torch.randint(0, 5, (60,), generator=g)
    X = torch.randn(60, 2, 3, generator=g) + 0.5 * y[:, None, None]
    # lr 0.1 so the validation loss bounces and plateau really cuts the lr mid-run.
    cfg = TrainConfig(epochs=5, batch_size=16, scheduler=scheduler, plateau_patience=0, lr=0.1,
                      num_threads=1, progress=False, save_plots=False, patience=None)
    torch.manual_seed(0)
    ref = DropoutNet()
    ref_hist = fit(ref, (X, y), (X, y), cfg, tmp_path / "ref")
    torch.manual_seed(0)
    with pytest.raises(Interrupted):
        fit(DropoutNet(fail_at=6), (X, y), (X, y), cfg, tmp_path / "run")  # in epoch 2
    torch.manual_seed(99)  # a different init and global RNG state: resume must restore both
    model = DropoutNet()
    hist = fit(model, (X, y), (X, y), cfg, tmp_path / "run")
    assert model.batches == 4 * 4  # epochs 2..5 of 4 batches each
    assert hist.column("epoch") == [1, 2, 3, 4, 5]
    assert hist.batch_lr == ref_hist.batch_lr
    assert hist.column("val_loss") == ref_hist.column("val_loss")
    ref_sd, sd = ref.state_dict(), model.state_dict()
    assert [k for k in ref_sd if not torch.equal(ref_sd[k], sd[k])] == []
    if scheduler == "plateau":
        # The cut comes after the resumed epoch 2, so it depends on the restored scheduler state.
        assert hist.column("lr") == pytest.approx([0.1, 0.1, 0.08, 0.08, 0.08])


class PassThrough(torch.nn.Module):
    """A 'model' whose log-probabilities are its input X[:, 0, :], so tests choose them."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x[:, 0, :] + 0 * self.unused


def test_accuracy_confusion_loss_by_hand():
    y = [0, 0, 1, 2, 2, 2]
    probs = np.array(
        [
            [0.7, 0.2, 0.1],  # 0 -> 0
            [0.3, 0.6, 0.1],  # 0 -> 1
            [0.1, 0.8, 0.1],  # 1 -> 1
            [0.2, 0.2, 0.6],  # 2 -> 2
            [0.5, 0.1, 0.4],  # 2 -> 0
            [0.1, 0.1, 0.8],  # 2 -> 2
        ]
    )
    m = compute_metrics(y, np.log(probs), class_names=["a", "b", "c"])
    assert m.accuracy == pytest.approx(4 / 6)
    np.testing.assert_array_equal(m.confusion, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    nll = -sum(math.log(p) for p in (0.7, 0.3, 0.8, 0.6, 0.4, 0.8)) / 6  # true-class probs
    assert m.loss == pytest.approx(nll, rel=1e-6)
    # Class b: positives score 0.8; negatives 0.2, 0.6, 0.2, 0.1, 0.1 -> all below: AUC 1.
    assert m.auc[1] == pytest.approx(1.0)
    # Class a: positives {0.7, 0.3}, negatives {0.1, 0.2, 0.5, 0.1}: 4 + 3 of 8 pairs ranked right.
    assert m.auc[0] == pytest.approx(7 / 8)

    # evaluate() runs a model in eval mode and gives the same numbers, then restores train mode.
    model = PassThrough().train()
    X = torch.log(torch.tensor(probs, dtype=torch.float32))[:, None, :]
    e = evaluate(model, X, np.array(y), batch_size=4, class_names=["a", "b", "c"])
    assert model.training
    assert e.accuracy == pytest.approx(4 / 6)
    np.testing.assert_array_equal(e.confusion, m.confusion)
    np.testing.assert_allclose(e.auc, m.auc)


def test_auc_perfect_reversed_and_partial():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.2, 0.8, 0.9])
    perfect = compute_metrics(y, np.log(np.stack([1 - p1, p1], 1)))
    np.testing.assert_allclose(perfect.auc, [1.0, 1.0])
    assert perfect.accuracy == 1.0
    p1 = p1[::-1].copy()
    reversed_ = compute_metrics(y, np.log(np.stack([1 - p1, p1], 1)))
    np.testing.assert_allclose(reversed_.auc, [0.0, 0.0])
    assert reversed_.accuracy == 0.0
    # positives {0.3, 0.8}, negatives {0.1, 0.35}: 3 of 4 pairs in order -> 0.75
    p1 = np.array([0.1, 0.35, 0.3, 0.8])
    partial = compute_metrics(y, np.log(np.stack([1 - p1, p1], 1)))
    assert partial.auc[1] == pytest.approx(0.75)
    # A probability of exactly 0 (log -inf) is valid and ranks lowest.
    p1 = np.array([0.0, 0.2, 0.8, 1.0])
    with np.errstate(divide="ignore"):
        edge = compute_metrics(y, np.log(np.stack([1 - p1, p1], 1)))
    np.testing.assert_allclose(edge.auc, [1.0, 1.0])


def test_undefined_auc_is_nan_with_warning():
    y = np.array([0, 0, 1, 1])
    lp = np.log(np.full((4, 3), 1 / 3))
    with pytest.warns(UserWarning, match="'class 2'.*no samples"):
        m = compute_metrics(y, lp)
    assert np.isnan(m.auc[2]) and not np.isnan(m.auc[:2]).any()


def test_logits_and_bad_labels_are_rejected():
    x = torch.randn(8, 1, 5) * 3  # logits, not log-probabilities
    with pytest.raises(ValueError, match="log_softmax"):
        evaluate(PassThrough(), x, np.zeros(8, dtype=int))
    with pytest.raises(ValueError, match="one-hot"):
        fit(PassThrough(), (x, np.eye(5)[np.zeros(8, dtype=int)]), config=TrainConfig(progress=False))
    lp = torch.log_softmax(x, -1)
    with pytest.raises(ValueError, match="label 7 is out of range"):
        evaluate(PassThrough(), lp, np.full(8, 7))


def _onecycle_reference(step: int, total: int, max_lr=1e-3, pct=0.2, div=25.0, final_div=1e4):
    """OneCycle with cosine annealing, written from its definition (Smith & Topin)."""
    start, peak = max_lr / div, max_lr
    end = start / final_div
    up_end = pct * total - 1
    if step <= up_end:
        t, a, b = step / up_end, start, peak
    else:
        t, a, b = (step - up_end) / (total - 1 - up_end), peak, end
    return b + (a - b) * (1 + math.cos(math.pi * t)) / 2


def test_onecycle_is_stepped_per_batch():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (64,), generator=g)
    X = torch.randn(64, 4, 3, generator=g)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.LogSoftmax(-1))
    cfg = TrainConfig(epochs=5, batch_size=8, num_threads=1, progress=False)
    hist = fit(model, (X, y), config=cfg)
    lrs = np.array(hist.batch_lr)
    assert len(lrs) == 40  # 5 epochs x 8 batches: one value per optimizer step
    np.testing.assert_allclose(lrs, [_onecycle_reference(i, 40) for i in range(40)], rtol=1e-9)
    peak = int(lrs.argmax())
    assert lrs.max() == pytest.approx(1e-3)
    assert peak == 7  # pct_start 0.2 of 40 steps
    assert (np.diff(lrs[: peak + 1]) > 0).all() and (np.diff(lrs[peak:]) < 0).all()
    assert len(set(lrs[:8])) == 8, "lr constant within an epoch: scheduler stepped per epoch"
    assert lrs[0] == pytest.approx(4e-5) and lrs[-1] < 1e-6
    assert hist.column("lr") == [hist.batch_lr[8 * k + 7] for k in range(5)]


class ConstantModel(torch.nn.Module):
    """Uniform log-probabilities whatever the weights: the validation loss never improves.
    Raises on training batch ``fail_at`` (1-based) to simulate a crash."""

    def __init__(self, fail_at=None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.fail_at, self.batches = fail_at, 0

    def forward(self, x):
        if self.training:
            self.batches += 1
            if self.batches == self.fail_at:
                raise Interrupted
        return torch.log_softmax(torch.zeros(len(x), 5) + 0 * self.w, dim=-1)


def _tiny_data(n=32):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 2, 3, generator=g), torch.arange(n) % 5


def test_early_stopping_stops_on_stalled_val_loss(tmp_path):
    data = _tiny_data()
    cfg = TrainConfig(epochs=20, batch_size=16, patience=2, num_threads=1, progress=False,
                      save_plots=False)
    with pytest.warns(UserWarning, match="may end OneCycle during its 16-epoch annealing"):
        hist = fit(ConstantModel(), data, data, cfg, tmp_path)
    # Epoch 1 sets the best; epochs 2 and 3 do not improve; patience 2 -> stop after epoch 3.
    assert hist.column("epoch") == [1, 2, 3]
    assert hist.stopped_early and hist.finished and hist.best_epoch == 1
    assert hist.column("val_loss") == pytest.approx([math.log(5)] * 3)
    # The finished run resumes as finished: no more epochs.
    with pytest.warns(UserWarning, match="OneCycle"):
        again = fit(ConstantModel(), data, data, cfg, tmp_path)
    assert again.column("epoch") == [1, 2, 3]


def test_early_stopping_counter_survives_a_crash(tmp_path):
    data = _tiny_data()  # 2 batches per epoch
    cfg = TrainConfig(epochs=20, batch_size=16, scheduler="constant", patience=3, num_threads=1,
                      progress=False, save_plots=False)
    with pytest.raises(Interrupted):
        fit(ConstantModel(fail_at=7), data, data, cfg, tmp_path)  # in epoch 4
    hist = fit(ConstantModel(), data, data, cfg, tmp_path)
    # Best at epoch 1, then 3 epochs without improvement: stop after epoch 4, as uninterrupted.
    assert hist.column("epoch") == [1, 2, 3, 4] and hist.stopped_early


def test_default_never_stops_early():
    data = _tiny_data()
    cfg = TrainConfig(epochs=8, batch_size=16, num_threads=1, progress=False)
    assert cfg.patience is None and cfg.scheduler == "onecycle"
    hist = fit(ConstantModel(), data, data, cfg)
    assert hist.column("epoch") == list(range(1, 9)) and not hist.stopped_early


def test_plateau_scheduler_reduces_lr_after_patience():
    data = _tiny_data()
    cfg = TrainConfig(epochs=6, batch_size=16, scheduler="plateau", plateau_patience=1,
                      num_threads=1, progress=False)
    hist = fit(ConstantModel(), data, data, cfg)
    # Best at epoch 1; a cut by 0.8 once more than 1 epoch has not improved (after 3 and 5).
    assert hist.column("lr") == pytest.approx([1e-3, 1e-3, 1e-3, 8e-4, 8e-4, 6.4e-4])


def test_resume_refuses_a_different_config(tmp_path):
    data = _tiny_data()
    cfg = TrainConfig(epochs=2, batch_size=16, num_threads=1, progress=False, save_plots=False)
    fit(ConstantModel(), data, data, cfg, tmp_path)
    with pytest.raises(ValueError, match="batch_size: checkpoint 16 vs now 8"):
        fit(ConstantModel(), data, data, TrainConfig(**{**cfg.to_dict(), "batch_size": 8}), tmp_path)
    threads = torch.get_num_threads()
    with pytest.warns(UserWarning, match="with 2 torch threads, the run used 1"):
        fit(ConstantModel(), data, data, TrainConfig(**{**cfg.to_dict(), "num_threads": 2}), tmp_path)
    assert torch.get_num_threads() == threads  # fit restores the caller's setting
    other = (data[0] + 1, data[1])
    with pytest.raises(ValueError, match="train data differ"):
        fit(ConstantModel(), other, data, cfg, tmp_path)


def test_failed_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    from allo_ext.train import checkpoint

    checkpoint.atomic_torch_save({"format_version": 1, "epoch": 1}, tmp_path / "c.pt")

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_torch_save({"format_version": 1, "epoch": 2}, tmp_path / "c.pt")
    monkeypatch.undo()
    assert torch.load(tmp_path / "c.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def _is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_plots_are_png(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    logits = rng.normal(size=(200, 5)) + 2 * np.eye(5)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert _is_png(plot_roc(y, probs, tmp_path / "roc.png"))
    assert _is_png(plot_roc(y, probs, tmp_path / "rej.png", rejection=True))
    hist = History(
        epochs=[
            {"epoch": e, "train_loss": 1.6 / e, "train_acc": 0.2 * e, "val_loss": 1.7 / e,
             "val_acc": 0.18 * e, "lr": 1e-3}
            for e in (1, 2, 3)
        ],
        batch_lr=[1e-4, 1e-3, 5e-4, 2e-4, 1e-4, 1e-5],
        best_epoch=3,
    )
    assert _is_png(plot_history(hist, tmp_path / "history.png"))
    with pytest.raises(ValueError, match=r"\.png"):
        plot_roc(y, probs, tmp_path / "roc.jpg")


def test_fit_writes_plots_and_metrics(tmp_path):
    data = _tiny_data(40)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.LogSoftmax(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent fallback warnings in the normal path
        fit(model, data, data, TrainConfig(epochs=2, batch_size=16, num_threads=1, progress=False),
            tmp_path)
    for name in ("history.png", "roc.png"):
        assert _is_png(tmp_path / name), name
    saved = json.loads((tmp_path / "val_metrics.json").read_text())
    direct = evaluate(model, *data)
    assert saved["accuracy"] == pytest.approx(direct.accuracy)
    assert saved["confusion"] == direct.confusion.tolist()
    best = load_checkpoint(tmp_path / "best_model.pt")
    assert set(best["model"]) == set(model.state_dict())


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="scheduler='step'.*onecycle"):
        TrainConfig(scheduler="step")
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match="pass val="):
        fit(ConstantModel(), _tiny_data(), config=TrainConfig(patience=3, progress=False))
