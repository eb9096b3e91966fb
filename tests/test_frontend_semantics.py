"""Frontend results that used to be silently wrong: rsub with alpha, and ops that mix the jets of a batch."""
import numpy as np
import pytest
import torch

from allo_ext.frontend import BatchMixingError, from_pytorch


class _Rsub(torch.nn.Module):
    def forward(self, x):
        return torch.rsub(x, 2.0, alpha=3.0) + torch.rsub(x, x * 0.5, alpha=-2.0)


def test_rsub_with_alpha_is_c_minus_alpha_x():
    x = torch.randn(5, 4)
    f = from_pytorch(_Rsub().eval(), x)
    expected = (2.0 - 3.0 * x) + (0.5 * x + 2.0 * x)
    np.testing.assert_allclose(f(x), expected.numpy(), rtol=1e-6, atol=1e-6)


class _SoftmaxOverBatch(torch.nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=0)  # normalises across jets


class _CentredOverBatch(torch.nn.Module):
    def forward(self, x):
        y = x.reshape(-1, x.shape[-1])
        return y - y.mean(0, keepdim=True)  # the batch hides in a merged dim


class _SumAll(torch.nn.Module):
    def forward(self, x):
        return x.sum()


class _Gram(torch.nn.Module):
    def forward(self, x):
        return x.transpose(0, 1) @ x  # contracts over the batch


@pytest.mark.parametrize("model, op, dim, line", [
    (_SoftmaxOverBatch, "aten.softmax", "dim 0 of a tensor of shape (B, 6)", "torch.softmax(x, dim=0)"),
    (_CentredOverBatch, "aten.mean", "dim 0 of a tensor of shape (B, 6)", "y.mean(0, keepdim=True)"),
    (_SumAll, "aten.sum", "dim 0 of a tensor of shape (B, 6)", "x.sum()"),
    (_Gram, "aten.matmul", "dim 1 of a tensor of shape (6, B)", "x.transpose(0, 1) @ x"),
])
@pytest.mark.parametrize("target", ["llvm", "csim"])
def test_batch_mixing_is_refused_with_op_dim_and_line(model, op, dim, line, target):
    kw = {"target": "vitis_hls", "mode": "csim"} if target == "csim" else {}
    with pytest.raises(BatchMixingError) as e:
        from_pytorch(model().eval(), torch.randn(4, 6), **kw)
    msg = str(e.value)
    assert op in msg and dim in msg and "test_frontend_semantics.py" in msg and line in msg


class _PerJet(torch.nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1).mean(1) + x.reshape(x.shape[0], -1).sum(-1, keepdim=True)


def test_per_jet_reductions_are_accepted():
    x = torch.randn(5, 3, 4)
    f = from_pytorch(_PerJet().eval(), x, batch_size=2)
    np.testing.assert_allclose(f(x), _PerJet()(x).numpy(), rtol=1e-5, atol=1e-6)


class _TwoSlices(torch.nn.Module):
    def forward(self, x):
        a, b = torch.split(x, [4, 3], dim=1)  # (B, 4, 5) and (B, 3, 5)
        return a[:, 1:2] * 2 + b[:, 1:2]  # two slices with equal results but different inputs


def test_kernels_that_differ_only_in_their_annotations_are_not_merged():
    x = torch.randn(3, 7, 5)
    f = from_pytorch(_TwoSlices().eval(), x)
    np.testing.assert_allclose(f(x), _TwoSlices()(x).numpy(), rtol=1e-6)
