"""Property tests of the frontend's op families against torch eager, on llvm and in the C simulation.

One small model per family holds every op of it, so each target compiles it once; hypothesis then
draws the batch where bugs show: negative values, exact ties (topk/sort/argmax), zeros (sign,
logical ops, division), constant rows (zero variance) and -inf masks (softmax over masked keys).
"""
import functools

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from allo_ext.frontend import UnsupportedOpError, from_pytorch

F = torch.nn.functional
TIES = [0.0, -1.0, 1.0, 0.5, -2.0, 3.0]


def batches(item_shape, max_batch=5):
    elements = st.one_of(st.sampled_from(TIES), st.floats(-4, 4, width=32, allow_subnormal=False))
    return st.integers(1, max_batch).flatmap(
        lambda b: arrays(np.float32, (b,) + tuple(item_shape), elements=elements))


class Unary(torch.nn.Module):
    def forward(self, x):
        a = x.abs()
        outs = [a, -x, torch.exp(x), torch.log(a + 0.1), torch.sqrt(a), torch.rsqrt(a + 0.5), torch.sigmoid(x),
                torch.tanh(x), F.elu(x), F.selu(x), F.leaky_relu(x, 0.1), F.hardtanh(x, -0.5, 2.0),
                torch.clamp(x, min=-1.0), torch.clamp(x, -0.25, 0.75), torch.sign(x), x.pow(3), torch.square(x),
                torch.remainder(x, 0.75), torch.remainder(-x, 1.5), torch.atan(x), torch.floor(x), torch.ceil(x),
                torch.round(x), torch.trunc(x), F.softplus(x), 2.0 ** x, torch.rsub(x, 1.0, alpha=2.0),
                F.relu6(x * 3), torch.erf(x), F.silu(x)]
        return torch.stack(outs, 1)


class Binary(torch.nn.Module):
    def forward(self, x):
        a, b = x[:, 0], x[:, 1]  # two rows of each jet
        m = a > b
        outs = [torch.minimum(a, b), torch.maximum(a, b), torch.atan2(a, b), torch.remainder(a, b + 5.0),
                torch.pow(a.abs() + 0.5, b), (a == b).float(), (a != b).float(), (a < b).float(), (a <= b).float(),
                m.float(), (a >= b).float(), (m & (a > 0)).float(), (m | (b > 0)).float(), (~m).float(),
                torch.logical_xor(a > 0, b > 0).float(), torch.logical_not(a).float(), torch.where(m, a, b),
                a.masked_fill(~m, -3.0), torch.where(a > 0, a, 0.5), (a != 0).to(torch.float32),
                torch.max(a, b), torch.clamp(a, min=b), a.bool().float() * b]
        return torch.stack(outs, 1)


class Reductions(torch.nn.Module):
    def forward(self, x):  # x: (B, 4, 5)
        vals, idx = x.max(dim=-1)
        mn, imn = x.min(dim=1)
        outs = [x.amax(-1), x.amin(-1), vals, idx.float(), x.var(-1), x.std(-1, unbiased=False),
                x.prod(-1), x.argmax(-1).float(), x.argmin(-1).float(), torch.logsumexp(x, -1),
                x.var(-1, correction=0), x.mean(-1), x.sum(-1)]
        return torch.cat([torch.stack(outs, 1).flatten(1), mn, imn.float(), x.var((1, 2)).unsqueeze(1),
                          x.amax((1, 2)).unsqueeze(1)], 1)


class SortGather(torch.nn.Module):
    """torch leaves the order of tied topk indices unspecified, so only tie-proof results are compared:
    values, the values gathered back through the indices, and the indices of a stable sort."""

    def forward(self, x):  # x: (B, 3, 6); kNN-style: top 3 by value, gathered back
        v, i = torch.topk(x, 3, dim=-1)
        vs, i_s = torch.topk(x, 2, dim=1, largest=False)
        s, si = torch.sort(x, dim=-1, descending=True, stable=True)
        a, ai = torch.sort(x, dim=1, stable=True)
        g = torch.gather(x, -1, i)
        g1 = torch.gather(x, 1, i_s)
        sel = x[:, :, torch.tensor([5, 0, 2])]  # advanced indexing
        b = x.shape[0]
        base = (torch.arange(b) * 3).view(-1, 1, 1)
        flat = x.reshape(b * 3, 6)[(si[:, :, :2] % 3 + base).view(-1)]  # ParticleNet's kNN gather, per jet
        return torch.cat([v.flatten(1), g.flatten(1), vs.flatten(1), g1.flatten(1), s.flatten(1),
                          si.float().flatten(1), a.flatten(1), ai.float().flatten(1), sel.flatten(1),
                          torch.index_select(x, 2, torch.tensor([1, 1, 4])).flatten(1), flat.reshape(b, -1), x.argsort(dim=-1, stable=True).float()
                          .flatten(1)], 1)


class Layers(torch.nn.Module):
    """conv1d/conv2d (pointwise and small kernels, stride, padding), BatchNorm2d, repeat, expand,
    einsum, baddbmm, split/chunk/unbind, flatten/squeeze/unsqueeze, factories."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv1d(4, 6, 1)
        self.c3 = torch.nn.Conv1d(4, 3, 3, stride=2, padding=1)
        self.c2 = torch.nn.Conv2d(4, 5, (1, 1))
        self.k2 = torch.nn.Conv2d(4, 2, (2, 3), stride=(1, 2), padding=(1, 0))
        self.bn = torch.nn.BatchNorm2d(5)
        self.tok = torch.nn.Parameter(torch.randn(1, 1, 4))

    def forward(self, x):  # x: (B, 6, 4)
        b = x.shape[0]
        t = torch.cat([self.tok.repeat(b, 1, 1), self.tok.expand(b, -1, -1), x], 1)  # (B, 8, 4)
        c = x.transpose(1, 2)  # (B, 4, 6)
        y1 = F.relu(self.c1(c))  # (B, 6, 6)
        y3 = self.c3(c)  # (B, 3, 3)
        img = c.unsqueeze(-1).expand(-1, -1, -1, 3)  # (B, 4, 6, 3)
        z = self.bn(self.c2(img))  # (B, 5, 6, 3)
        k = self.k2(img)  # (B, 2, 7, 1)
        e = torch.einsum("bpc,bqc->bpq", x, x)
        bb = torch.baddbmm(e, x, x.transpose(1, 2), beta=0.5, alpha=2.0)
        p, q = torch.split(x, [2, 4], dim=1)
        h1, h2 = x.chunk(2, dim=-1)
        rows = x.unbind(1)
        f = torch.ones_like(p) + torch.full_like(p, 2.0) + torch.zeros(b, 2, 4) + torch.arange(4).float()
        return torch.cat([t.flatten(1), y1.flatten(1), y3.flatten(1), z.flatten(1), k.flatten(1), e.flatten(1),
                          bb.flatten(1), (p * f).flatten(1), q.sum(1), h1.flatten(1) - h2.flatten(1),
                          rows[0] * rows[5], x.unsqueeze(1).squeeze(1).flatten(1)], 1)


class Masked(torch.nn.Module):
    """A ParT-style masked attention with two inputs: features and a particle mask."""

    def forward(self, x, mask):  # x: (B, 5, 4), mask: (B, 5) 0/1
        keep = mask.bool()
        s = torch.einsum("bic,bjc->bij", x, x)
        s = s.masked_fill(~keep.unsqueeze(1), float("-inf"))
        w = torch.softmax(s, -1)
        y = (w @ x) * mask.unsqueeze(-1)
        return y.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)


FAMILIES = {"unary": (Unary, (2, 3)), "binary": (Binary, (2, 6)), "reductions": (Reductions, (4, 5)),
            "sort_gather": (SortGather, (3, 6)), "layers": (Layers, (6, 4))}


def _randomised(cls):
    torch.manual_seed(0)
    m = cls().eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.2, 3)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
    return m


@functools.lru_cache(maxsize=None)
def compiled(family: str, target: str):
    cls, shape = FAMILIES[family]
    m = _randomised(cls)
    x = torch.randn((2,) + shape)
    if target == "llvm":
        return m, from_pytorch(m, x, batch_size=3)
    return m, from_pytorch(m, x[:1], target="vitis_hls", mode="csim")


def check(m, f, x, target):
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    out = np.asarray(f(x)).reshape(ref.shape)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5, equal_nan=True, err_msg=f"{target}")


# Compiled in module-scoped fixtures, outside @given: a compile error then fails once instead of
# being shrunk by hypothesis example after example.
@pytest.fixture(scope="module", params=sorted(FAMILIES))
def llvm_family(request):
    return (request.param,) + compiled(request.param, "llvm")


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def csim_family(request):
    return (request.param,) + compiled(request.param, "csim")


@given(data=st.data())
def test_family_on_llvm_matches_torch(llvm_family, data):
    family, m, f = llvm_family
    check(m, f, data.draw(batches(FAMILIES[family][1])), "llvm")


@pytest.mark.csim
@given(data=st.data())
def test_family_in_csim_matches_torch(csim_family, data):
    family, m, f = csim_family
    check(m, f, data.draw(batches(FAMILIES[family][1], max_batch=2)), "csim")


def _mask_batch():
    return st.integers(1, 4).flatmap(lambda b: st.tuples(
        arrays(np.float32, (b, 5, 4), elements=st.floats(-3, 3, width=32)),
        arrays(np.float32, (b, 5), elements=st.sampled_from([0.0, 1.0])).map(lambda m: np.maximum(m, np.eye(5, dtype=np.float32)[0])),
    ))


@pytest.fixture(scope="module", params=["llvm", pytest.param("csim", marks=pytest.mark.csim)])
def masked(request):
    x, mask = torch.randn(2, 5, 4), torch.ones(2, 5)
    if request.param == "llvm":
        return from_pytorch(Masked().eval(), (x, mask), batch_size=3)
    return from_pytorch(Masked().eval(), (x[:1], mask[:1]), target="vitis_hls", mode="csim")


@given(data=st.data())
def test_two_input_masked_attention(masked, data):
    m = Masked().eval()
    x, mask = data.draw(_mask_batch())
    with torch.no_grad():
        ref = m(torch.from_numpy(x), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(np.asarray(masked(x, mask)).reshape(ref.shape), ref, rtol=1e-4, atol=1e-5)


def test_bool_mask_input_is_taken_as_bool():
    class M(torch.nn.Module):
        def forward(self, x, mask):
            return x.masked_fill(~mask, 0.0).sum(-1)

    x, mask = torch.randn(3, 4), torch.rand(3, 4) > 0.5
    f = from_pytorch(M().eval(), (x, mask))
    np.testing.assert_allclose(f(x, mask), M()(x, mask).numpy(), rtol=1e-6)


class _Cumsum(torch.nn.Module):
    def forward(self, x):
        return torch.cumsum(x, 1)


class _Grouped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv1d(4, 4, 3, groups=2)

    def forward(self, x):
        return self.c(x)


def test_lowering_that_rejects_its_arguments_says_so():
    with pytest.raises(UnsupportedOpError, match=r"lowering of torch op 'aten.conv1d.default' does not support "
                                                 r"these arguments: groups=2") as e:
        from_pytorch(_Grouped().eval(), torch.randn(2, 4, 6))
    assert "no lowering" not in str(e.value)


def test_decomposed_op_names_the_users_op():
    with pytest.raises(UnsupportedOpError, match=r"aten.cumsum.default.*decomposition of it needs"):
        from_pytorch(_Cumsum().eval(), torch.randn(2, 4))
