"""What every zoo test does: random BatchNorm statistics, compile at one batch size, check at another
against torch (1e-4 relative, same argmax) on llvm and in the C simulation."""
import numpy as np
import torch

from allo_ext.frontend import from_pytorch
from allo_ext.testing import perturb_norm_stats

LLVM_BATCH = 4  # compiled for chunks of 4 jets, checked on 5: a full chunk and a module for 1 jet
CHECK_BATCH = 5


def prepared(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    return perturb_norm_stats(model, seed).eval()


def reference(model, inputs):
    with torch.no_grad():
        out = model(*inputs)
    return out.numpy()


def assert_matches(out, ref, what):
    out = np.asarray(out).reshape(ref.shape)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=what)
    assert (out.argmax(-1) == ref.argmax(-1)).all(), f"{what}: argmax differs"


def check_llvm(model, inputs):
    f = from_pytorch(model, tuple(x[:2] for x in inputs), batch_size=LLVM_BATCH)
    assert_matches(f(*inputs), reference(model, inputs), "llvm")
    return f


def check_csim(model, inputs, n=2):
    f = from_pytorch(model, tuple(x[:1] for x in inputs), target="vitis_hls", mode="csim")
    sub = tuple(x[:n] for x in inputs)
    assert_matches(f(*[x.numpy() for x in sub]), reference(model, sub), "csim")
    return f
