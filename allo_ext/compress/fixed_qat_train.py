"""Fixed-point QAT runs: fine-tune a float model through ``FixedFakeQuant`` and compare with post-training
quantisation (the float model compiled at the same precision), both measured on held-out jets.

The accuracy of either model at a precision is the accuracy of its fake-quantised forward, which is
bit-exact with ``from_pytorch(..., target="llvm", precision=...)``; ``check_bit_exact`` compiles the
model and counts the jets whose outputs differ in any bit (expected: none).

Fine-tuning keeps BatchNorm in eval mode (running statistics frozen: the compiler folds them into
constants) and starts from the float weights: AdamW with a cosine schedule, the epoch with the best
fake-quantised validation accuracy kept (epoch 0 is the PTQ model, so QAT never reports a worse
validation accuracy than PTQ).
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .fixed_qat import FixedFakeQuant

PRECISIONS = ("ap_fixed<16,6>", "ap_fixed<10,4>", "ap_fixed<8,3>")


def precision_dict(precision, accum=None):
    """``precision=`` for ``from_pytorch``: a type string or dict, with ``accum`` added when given."""
    if isinstance(precision, dict):
        p = dict(precision)
    else:
        p = {"default": precision}
    if accum is not None:
        p["accum"] = accum
    return p


def fixed_predict(model: torch.nn.Module, x: np.ndarray, precision, batch_size: int = 256,
                  fq: FixedFakeQuant | None = None) -> np.ndarray:
    """The outputs of ``model`` compiled at ``precision`` (float64), computed by the fake-quantised forward."""
    fq = fq or FixedFakeQuant(model, precision, example=torch.as_tensor(x[:1]), batch_size=batch_size)
    with torch.no_grad():
        return fq(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def float_accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)))
    return float((out.argmax(1).numpy() == y).mean())


def check_bit_exact(model: torch.nn.Module, x: np.ndarray, precision, batch_size: int = 64) -> dict:
    """Compile ``model`` for llvm at ``precision`` and compare with the fake-quantised forward bit for bit."""
    from ..frontend.compile import from_pytorch

    model = model.eval()
    x = np.ascontiguousarray(x, dtype=np.float32)
    t0 = time.perf_counter()
    fn = from_pytorch(model, torch.from_numpy(x[:1]), target="llvm", precision=precision, batch_size=batch_size)
    built = time.perf_counter() - t0
    compiled = np.asarray(fn(x), dtype=np.float64)
    fake = fixed_predict(model, x, precision, batch_size=batch_size)
    differ = np.any(compiled != fake, axis=tuple(range(1, compiled.ndim)))
    return {"n_jets": int(len(x)), "jets_differing": int(differ.sum()),
            "max_abs_diff": float(np.abs(compiled - fake).max()) if len(x) else 0.0, "build_s": built}


def qat_finetune(model: torch.nn.Module, data, precision, *, epochs: int = 3, lr: float = 5e-4,
                 weight_decay: float = 1e-2, batch_size: int = 256, seed: int = 0, progress: bool = True,
                 max_val: int | None = 2000, keep_best: bool = True):
    """A copy of ``model`` fine-tuned through the fake-quantised forward at ``precision`` on
    ``data`` (a ``compress.data.JetData``); returns (model, history). ``keep_best``: the weights of
    the epoch with the best fake-quantised validation accuracy (epoch 0: the PTQ model), else the last."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(model).eval()
    xtr = np.ascontiguousarray(data.x_train, dtype=np.float32)
    ytr = np.asarray(data.y_train, dtype=np.int64)
    xva, yva = data.x_val, data.y_val
    if max_val is not None:
        xva, yva = xva[:max_val], yva[:max_val]
    fq = FixedFakeQuant(model, precision, example=torch.from_numpy(xtr[:1]), batch_size=batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, epochs * math.ceil(len(xtr) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def val_acc():
        return float((fixed_predict(model, xva, precision, fq=fq).argmax(1) == yva).mean())

    best = (val_acc(), 0, copy.deepcopy(model.state_dict()))
    history = [{"epoch": 0, "val_accuracy": best[0], "loss": None}]
    t0 = time.perf_counter()
    bar = _progress(progress, epochs * math.ceil(len(xtr) / batch_size), f"QAT {_label(precision)}")
    try:
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(xtr))
            losses = []
            for start in range(0, len(xtr), batch_size):
                idx = order[start:start + batch_size]
                xb, yb = torch.from_numpy(xtr[idx]), torch.from_numpy(ytr[idx])
                logp = fq(xb)
                loss = F.nll_loss(logp, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                bar.advance()
            acc = val_acc()
            history.append({"epoch": epoch, "val_accuracy": acc, "loss": float(np.mean(losses))})
            if acc > best[0] or not keep_best:
                best = (acc, epoch, copy.deepcopy(model.state_dict()))
    finally:
        bar.close()
    model.load_state_dict(best[2])
    return model.eval(), {"history": history, "best_epoch": best[1], "best_val_accuracy": best[0],
                          "train_s": time.perf_counter() - t0, "epochs": epochs, "lr": lr,
                          "n_train": int(len(xtr))}


def ptq_vs_qat(model: torch.nn.Module, data, precisions=PRECISIONS, *, accum=None, epochs: int = 3,
               lr: float = 5e-4, check_n: int = 256, progress: bool = True, log=print, keep_models: bool = False):
    """Per precision: held-out accuracy of the float model compiled at it (PTQ) and of the QAT
    fine-tuned model, with the bit-exactness check of the compiled QAT model on ``check_n`` jets."""
    x, y = data.eval_split()
    report = {"float_accuracy": float_accuracy(model, x, y), "n_eval": int(len(y)), "accum": accum,
              "epochs": epochs, "rows": []}
    models = {}
    for p in precisions:
        prec = precision_dict(p, accum)
        t0 = time.perf_counter()
        ptq = float((fixed_predict(model, x, prec).argmax(1) == y).mean())
        qmodel, hist = qat_finetune(model, data, prec, epochs=epochs, lr=lr, progress=progress)
        qat = float((fixed_predict(qmodel, x, prec).argmax(1) == y).mean())
        row = {"precision": _label(p), "ptq_accuracy": ptq, "qat_accuracy": qat, "qat": hist,
               "seconds": time.perf_counter() - t0}
        if check_n:
            row["bit_exact_llvm"] = check_bit_exact(qmodel, x[:check_n], prec)
        report["rows"].append(row)
        models[row["precision"]] = qmodel
        log(f"{row['precision']}: PTQ {ptq:.4f}, QAT {qat:.4f} (float {report['float_accuracy']:.4f})"
            + (f"; compiled llvm differs on {row['bit_exact_llvm']['jets_differing']} of "
               f"{row['bit_exact_llvm']['n_jets']} jets" if check_n else ""))
    return (report, models) if keep_models else report


def _label(p) -> str:
    if isinstance(p, dict):
        return str(p.get("default", "mixed"))
    return str(p) if isinstance(p, str) else getattr(p, "ap_type", lambda: str(p))()


class _progress:
    """A rich progress bar (or nothing)."""

    def __init__(self, on: bool, total: int, what: str):
        self.p = None
        if on:
            from rich.progress import Progress

            self.p = Progress(transient=True)
            self.p.start()
            self.task = self.p.add_task(what, total=total)

    def advance(self):
        if self.p is not None:
            self.p.advance(self.task)

    def close(self):
        if self.p is not None:
            self.p.stop()
