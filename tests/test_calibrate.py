"""``allo_ext.quant.calibrate`` against an independent truth: torch forward hooks on the model's own
modules, and the float model's outputs. Calibration must see the graph ``from_pytorch`` compiles, in
which BatchNorms are folded into linears and channels-last BatchNorms fused into one node.
"""
import numpy as np
import pytest
import torch
from torch import nn

from allo_ext.frontend import from_pytorch
from allo_ext.quant import calibrate

NARROW = "ap_fixed<16,4>"  # |x| < 8


class TokensNorm(nn.Module):
    """(B, L, C) normalised over C by transpose -> BatchNorm1d -> transpose (JetFormer's pattern)."""

    def __init__(self, c):
        super().__init__()
        self.norm = nn.BatchNorm1d(c)

    def forward(self, x):
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def _hooked_max(model, x, modules):
    """Largest |output| of each module, recorded by forward hooks (independent of the fx graph)."""
    got = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: got.__setitem__(k, o.abs().max().item()))
             for k, m in modules.items()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return got


def _big_norm(norm, gain):
    """A BatchNorm that multiplies by ``gain``: outputs far outside its input's range."""
    with torch.no_grad():
        norm.running_var.fill_(1.0 / gain ** 2)
        norm.running_mean.uniform_(-0.1, 0.1)
        norm.weight.uniform_(0.8, 1.2)
    return norm


def test_linear_with_folded_batchnorm_is_typed_for_the_norms_output():
    # linear -> BatchNorm: from_pytorch folds the norm into the linear, whose output is then the
    # norm's (here about 12x larger than the linear's own). Calibrating the unfolded graph typed the
    # linear for its own outputs, and the folded one wrapped around.
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), _big_norm(nn.BatchNorm1d(16), 12.0), nn.ReLU(),
                      nn.Linear(16, 5)).eval()
    x = torch.randn(256, 4, 3)
    truth = _hooked_max(m, x, {"lin": m[1], "bn": m[2]})
    assert truth["bn"] > 8 > truth["lin"]  # only the norm's output overflows the narrow type
    cal = calibrate(m, x, bits=16, reference=NARROW)
    ref = m(x).detach().numpy()
    y = from_pytorch(m, x, target="llvm", precision=cal.precision(default=NARROW, accum="ap_fixed<32,12>"))(x.numpy())
    assert np.abs(y - ref).max() < 0.05 * np.abs(ref).max()
    assert (y.argmax(1) == ref.argmax(1)).mean() >= 0.98
    assert "batch_norm" not in cal.types  # folded away, as from_pytorch compiles it
    assert cal.types["linear"].max >= truth["bn"] * 0.999
    assert cal.overflows["linear"][1] == 0 and cal.overflows["linear"][0] > 0


def test_fused_channels_last_batchnorm_gets_its_calibrated_type():
    # transpose -> BatchNorm -> transpose becomes one fused node with a new name: calibration must
    # report that name and from_pytorch must apply the type given under it.
    torch.manual_seed(0)
    # (the ReLUs around the norm keep it from being folded into a linear)
    m = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), TokensNorm(8), nn.ReLU(), nn.Flatten(), nn.Linear(32, 5)).eval()
    _big_norm(m[2].norm, 10.0)
    x = torch.randn(256, 4, 3)
    truth = _hooked_max(m, x, {"bn": m[2]})
    assert truth["bn"] > 8
    cal = calibrate(m, x, bits=16, reference=NARROW)
    fused = [k for k in cal.types if k.startswith("batch_norm_channels_last")]
    assert len(fused) == 1, sorted(cal.types)
    assert cal.types[fused[0]].max >= truth["bn"] * 0.999
    assert cal.max_abs[fused[0]] == pytest.approx(max(truth["bn"], cal.own_max["relu"]), rel=1e-5)
    ref = m(x).detach().numpy()
    y = from_pytorch(m, x, target="llvm", precision=cal.precision(default=NARROW, accum="ap_fixed<32,12>"))(x.numpy())
    assert np.abs(y - ref).max() < 0.05 * np.abs(ref).max()


def test_recorded_maxima_match_forward_hooks():
    # each node's own largest |value| against hooks on the modules that compute it
    torch.manual_seed(1)
    m = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5), nn.Softmax(-1)).eval()
    x = torch.randn(600, 4, 3) * 2  # two chunks: 512 and the 88 left
    truth = _hooked_max(m, x, {"linear": m[1], "relu": m[2], "linear_1": m[3], "softmax": m[4]})
    cal = calibrate(m, x, bits=16)
    for k in truth:
        assert cal.own_max[k] == pytest.approx(truth[k], rel=1e-6), k
    # a node's type covers what it reads too (its input is converted into its type)
    assert cal.max_abs["softmax"] == pytest.approx(truth["linear_1"], rel=1e-6)
    reads = [truth["relu"], truth["linear_1"], m[3].weight.abs().max().item(), m[3].bias.abs().max().item()]
    assert cal.max_abs["linear_1"] == pytest.approx(max(reads), rel=1e-6)
