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


# Ops that pick rows along the batch: the batch symbol leaves the shape, so before they were refused
# every jet silently computed with whichever jet landed at row 0 of its chunk. One class per op so
# that the refusal can name the model's own source line.
class _Row0(torch.nn.Module):
    def forward(self, x):
        return x * x[0]


class _Select(torch.nn.Module):
    def forward(self, x):
        return x - x.select(0, 0)


class _LastRow(torch.nn.Module):
    def forward(self, x):
        return x + x[-1]


class _Head(torch.nn.Module):
    def forward(self, x):
        return x * x[:1]


class _Tail(torch.nn.Module):
    def forward(self, x):
        return x + x[2:].amax(0)


class _Every2nd(torch.nn.Module):
    def forward(self, x):
        return x[::2] * 2.0


class _Narrow(torch.nn.Module):
    def forward(self, x):
        return x + x.narrow(0, 1, 1)


class _IndexSelect(torch.nn.Module):
    def forward(self, x):
        return x + torch.index_select(x, 0, torch.tensor([1]))


class _TensorIndex(torch.nn.Module):
    def forward(self, x):
        return x * x[torch.tensor([0, 2])].sum(0)


class _GatherBatch(torch.nn.Module):
    def forward(self, x):
        return torch.gather(x, 0, torch.zeros_like(x, dtype=torch.long))


class _MergedWithoutOffset(torch.nn.Module):  # per-jet-sized indices, but into the first jet's rows only
    def forward(self, x):
        idx = x[..., 0].argsort(-1)  # (B, 4), values 0..3
        return x.reshape(-1, 6)[idx.reshape(-1)].view(x.shape) + x


class _IndicesOfJet0(torch.nn.Module):
    def forward(self, x):
        return x[:, :, x.argsort(-1)[0, 0]]


class _GatherWithJet0Indices(torch.nn.Module):
    def forward(self, x):
        return torch.gather(x, 2, x.argsort(-1)[:1].expand_as(x))


class _AssignRow0(torch.nn.Module):
    def forward(self, x):
        y = x.clone()
        y[0] = 0.0
        return y


_SEL, _SLC, _IDX = "selects one row along dim 0", "slices part of dim 0", "indexes along dim 0"


@pytest.mark.parametrize("model, op, what, line", [
    (_Row0, "aten.select.int", _SEL, "x * x[0]"),
    (_Select, "aten.select.int", _SEL, "x - x.select(0, 0)"),
    (_LastRow, "aten.select.int", _SEL, "x + x[-1]"),
    (_Head, "aten.slice.Tensor", _SLC, "x * x[:1]"),
    (_Tail, "aten.slice.Tensor", _SLC, "x + x[2:].amax(0)"),
    (_Every2nd, "aten.slice.Tensor", _SLC, "x[::2] * 2.0"),
    (_Narrow, "aten.narrow", _SLC, "x.narrow(0, 1, 1)"),
    (_IndexSelect, "aten.index_select", _IDX, "torch.index_select(x, 0, torch.tensor([1]))"),
    (_TensorIndex, "aten.index.Tensor", _IDX, "x[torch.tensor([0, 2])]"),
    (_GatherBatch, "aten.gather", _IDX, "torch.gather(x, 0, torch.zeros_like(x, dtype=torch.long))"),
    (_MergedWithoutOffset, "aten.index.Tensor", "indexes along dim 0 of a tensor of shape (4*B, 6)",
     "x.reshape(-1, 6)[idx.reshape(-1)]"),
    (_IndicesOfJet0, "aten.select.int", _SEL, "x[:, :, x.argsort(-1)[0, 0]]"),
    (_GatherWithJet0Indices, "aten.slice.Tensor", _SLC, "x.argsort(-1)[:1].expand_as(x)"),
    (_AssignRow0, "aten.select.int", _SEL, "y[0] = 0.0"),
])
def test_picking_rows_of_the_batch_is_refused_with_op_dim_and_line(model, op, what, line):
    with pytest.raises(BatchMixingError) as e:
        from_pytorch(model().eval(), torch.randn(5, 4, 6))
    msg = str(e.value)
    assert f"op '{op}" in msg and (what if "shape" in what else f"{what} of a tensor of shape (B, 4, 6)") in msg, msg
    assert "test_frontend_semantics.py" in msg and line in msg, msg
    assert "x[:, ...]" in msg  # says how to fix it


class _FullSlices(torch.nn.Module):
    def forward(self, x):
        return x[:x.shape[0]] * x[:, 1:2] + x[:, :, 0:1] + x[0:, -1:]


class _PerJetGather(torch.nn.Module):
    def forward(self, x):
        return torch.gather(x, 2, x.argsort(-1)) * 2.0


class _ClassToken(torch.nn.Module):
    def forward(self, x):
        return torch.cat([torch.ones(1, 1, 6).expand(x.shape[0], -1, -1), x], 1) * 3.0


class _ReshapeKeepingBatch(torch.nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1)[:, 3:11].view(-1, 2, 4) + x[:, :2, :4]


class _KnnGather(torch.nn.Module):  # ParticleNet/DGCNN: each jet's own indices, offset into its block of B*P rows
    def forward(self, x):
        b, p, c = x.shape
        idx = (x[..., 0].unsqueeze(-1) - x[..., 0].unsqueeze(-2)).abs().argsort(-1)[:, :, :2]  # (b, p, 2)
        idx = idx + torch.arange(b).view(-1, 1, 1) * p
        return x.reshape(b * p, c)[idx.reshape(-1)].view(b, p, 2, c).sum(2)


class _LeadingParticle(torch.nn.Module):  # one particle per jet, picked by that jet's own index
    def forward(self, x):
        first = torch.arange(x.shape[0]) * x.shape[1]  # x[arange(B), i] lowers with one index tensor only
        return x.reshape(-1, 6)[first + x[..., 0].argmax(1)] * 2.0


@pytest.mark.parametrize("model", [_FullSlices, _PerJetGather, _ClassToken, _ReshapeKeepingBatch, _KnnGather,
                                   _LeadingParticle])
def test_per_jet_picks_are_accepted_and_match_torch(model):
    m = model().eval()
    x = torch.randn(5, 4, 6)
    f = from_pytorch(m, x, batch_size=2)  # 5 jets in chunks of 2, the last one padded
    np.testing.assert_allclose(f(x), m(x).numpy(), rtol=1e-5, atol=1e-6)


class _DivByConstants(torch.nn.Module):
    def forward(self, x):
        return x / 4.0 + x / 0.125 - x / 3.0


def test_division_by_a_power_of_two_is_a_multiplication_and_bit_exact():
    # Values where a reciprocal that is not exact would show: 1/3 is not, and tiny/huge magnitudes
    # reach the subnormal range and the top of float32.
    x = torch.tensor([[1.0, 3.0, -7.0, 1e-38, 3e-39, -1e-45, 3e38, 1 / 3]], dtype=torch.float32)
    f = from_pytorch(_DivByConstants().eval(), x)
    top = str(f.schedule.module).split("allo.top")[1]
    assert top.count("call @div") == 1  # only x / 3.0 keeps a divider
    assert top.count("call @mul") == 2
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(f(x), _DivByConstants()(x).numpy())
