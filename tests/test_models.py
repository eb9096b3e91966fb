"""Reference models: shapes, export, variants, attention maps, BitLinear and Linformer."""
import collections
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from allo_ext.models import (MODELS, BitJetFormer, BitLinear, DeepSets, JetFormer, JetFormerConfig,
                             LinformerJetFormer, ParticleMLP, TokenBatchNorm)

FACTORIES = {
    "jetformer": lambda: JetFormer.tiny(),
    "jetformer_layer_silu_dropout": lambda: JetFormer.tiny(norm="layer", act="silu", dropout=0.1),
    "linformer": lambda: LinformerJetFormer.tiny(k=4),
    "bitjetformer": lambda: BitJetFormer.tiny(),
    "mlp": lambda: ParticleMLP.tiny(),
    "deepsets_mean": lambda: DeepSets.tiny(),
    "deepsets_sum": lambda: DeepSets.tiny(pool="sum"),
}


def _jets(b=4, n=8, f=3, seed=0):
    return torch.randn(b, n, f, generator=torch.Generator().manual_seed(seed))


def _trained_stats(model, seed=1):
    """Give BatchNorms non-trivial running statistics so eval differs from identity."""
    model.train()
    with torch.no_grad():
        for i in range(3):
            model(_jets(16, seed=seed + i) * (1 + i))
    return model.eval()


@pytest.mark.parametrize("name", FACTORIES)
def test_shape_and_log_probabilities(name):
    torch.manual_seed(0)
    model = _trained_stats(FACTORIES[name]())
    out = model(_jets())
    assert out.shape == (4, 5) and out.dtype == torch.float32
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(4))


@pytest.mark.parametrize("name", FACTORIES)
def test_torch_export(name):
    torch.manual_seed(0)
    model = _trained_stats(FACTORIES[name]())
    x = _jets(2)
    ep = torch.export.export(model, (x,))
    torch.testing.assert_close(ep.module()(x), model(x), rtol=0, atol=0)


def test_default_jetformer_export_graph():
    # The op mix the frontend is built for (shared/notes/frontend-facts.md), and no dropout.
    ep = torch.export.export(JetFormer.tiny().eval(), (_jets(2),))
    ops = collections.Counter(str(n.target) for n in ep.graph.nodes if n.op == "call_function")
    expected = {"aten.linear.default": 26, "aten.batch_norm.default": 13,
                "aten.matmul.default": 8, "aten.softmax.int": 4, "aten.transpose.int": 44,
                "aten.view.default": 12, "aten.reshape.default": 4, "aten.div.Tensor": 4,
                "aten.add.Tensor": 8, "aten.relu.default": 8, "aten.expand.default": 1,
                "aten.cat.default": 1, "aten.select.int": 1, "aten.log_softmax.int": 1}
    assert dict(ops) == expected
    assert len(ep.graph_signature.output_specs) == 1


def test_presets_and_registry():
    assert (JetFormer.tiny().config.n_blocks, JetFormer.tiny().config.dim) == (4, 8)
    c = JetFormer.hls4ml150().config
    assert (c.n_particles, c.n_features, c.n_blocks, c.dim, c.n_heads) == (150, 16, 3, 64, 2)
    c = JetFormer.hls4ml150(n_particles=30, n_features=3).config
    assert (c.n_particles, c.n_features) == (30, 3)
    c = JetFormer.jetclass().config
    assert (c.n_features, c.n_blocks, c.dim, c.n_heads) == (17, 10, 128, 8)
    assert JetFormer.hls4ml150()(torch.randn(2, 150, 16)).shape == (2, 5)
    assert set(MODELS) == {"jetformer", "linformer", "bitjetformer", "mlp", "deepsets"}


def test_bad_configs_and_inputs_raise():
    with pytest.raises(ValueError, match="divisible"):
        JetFormerConfig(dim=10, n_heads=4)
    with pytest.raises(ValueError, match="norm"):
        JetFormer(norm="group")
    with pytest.raises(TypeError, match="n_block"):
        JetFormer(n_block=3)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        JetFormer.tiny()(torch.randn(2, 8, 4))
    with pytest.raises(ValueError, match="n_particles"):
        LinformerJetFormer.tiny()(torch.randn(2, 9, 3))
    with pytest.raises(ValueError, match="float64"):
        ParticleMLP.tiny()(torch.randn(2, 8, 3, dtype=torch.float64))


def test_norm_and_activation_switch():
    def types(m):
        return {type(x) for x in m.modules()}

    hw = types(JetFormer.tiny())
    orig = types(JetFormer.tiny(norm="layer", act="silu"))
    assert {TokenBatchNorm, nn.BatchNorm1d, nn.ReLU} <= hw and not {nn.LayerNorm, nn.SiLU} & hw
    assert {nn.LayerNorm, nn.SiLU} <= orig and not {TokenBatchNorm, nn.BatchNorm1d, nn.ReLU} & orig


def test_token_batchnorm_normalises_channels():
    bn = TokenBatchNorm(4)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 9.0]))
        bn.weight.copy_(torch.tensor([2.0, 1.0, -1.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    x = torch.randn(2, 5, 4)
    ref = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(bn.eval()(x), ref)


def test_dropout_only_in_training():
    model = _trained_stats(JetFormer.tiny(dropout=0.5))
    x = _jets()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.equal(a, model(x))


@pytest.mark.parametrize("factory", [JetFormer.tiny, DeepSets.tiny])
def test_permutation_invariant_over_particles(factory):
    # No positional encoding: reordering particles must not change the prediction.
    model = _trained_stats(factory())
    x = _jets()
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model(x[:, perm]), model(x), rtol=1e-5, atol=1e-5)


def test_attention_maps():
    model = _trained_stats(JetFormer.tiny())
    x = _jets(3)
    logp, maps = model(x, return_attention=True)
    assert torch.equal(logp, model(x))
    assert len(maps) == 4 and len(model.attention_maps(x)) == 4
    for m in maps:
        assert m.shape == (3, 2, 9, 9)
        torch.testing.assert_close(m.sum(-1), torch.ones(3, 2, 9))
        assert (m >= 0).all()


def test_attention_matches_torch_sdpa():
    attn = JetFormer.tiny(dim=16, n_heads=4).blocks[0].attn.eval()
    x = torch.randn(2, 9, 16)
    b, l, c, h = 2, 9, 16, 4

    def heads(t):
        return t.reshape(b, l, h, c // h).permute(0, 2, 1, 3)

    q, k, v = (heads(x @ lin.weight.T) for lin in (attn.q, attn.k, attn.v))
    ref = F.scaled_dot_product_attention(q, k, v).permute(0, 2, 1, 3).reshape(b, l, c)
    ref = ref @ attn.out.weight.T + attn.out.bias
    y, maps = attn(x, return_attention=True)
    torch.testing.assert_close(y, ref)
    scores = q @ k.transpose(-2, -1) / math.sqrt(c // h)
    torch.testing.assert_close(maps, scores.softmax(-1))


def test_linformer_projections():
    model = _trained_stats(LinformerJetFormer.tiny(k=4))
    attn = model.blocks[0].attn
    assert attn.e_proj.weight.shape == (4, 9) and attn.f_proj.weight.shape == (4, 9)
    assert attn.e_proj.bias is None and attn.f_proj.bias is None
    maps = model.attention_maps(_jets(3))
    assert [m.shape for m in maps] == [(3, 2, 9, 4)] * 4
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(3, 2, 9))

    # Against Linformer's formula, head by head: softmax(Q_i (E K_i)^T / sqrt(d)) (F V_i).
    x = torch.randn(2, 9, 8)
    q, k, v = (x @ lin.weight.T for lin in (attn.q, attn.k, attn.v))
    e, f = attn.e_proj.weight, attn.f_proj.weight
    outs = []
    for i in range(2):
        s = slice(4 * i, 4 * i + 4)
        a = torch.softmax(q[..., s] @ (e @ k[..., s]).transpose(-2, -1) / 2.0, dim=-1)
        outs.append(a @ (f @ v[..., s]))
    ref = torch.cat(outs, -1) @ attn.out.weight.T + attn.out.bias
    torch.testing.assert_close(attn(x), ref)


def _bitlinear_reference(x, w, bias):
    """The BitLinear formula in plain torch: float32 weight statistics, integer accumulation,
    and every other float32 op done in float64 and rounded once (so it is correctly rounded)."""
    w = w.detach()
    alpha, beta = w.mean(), w.abs().mean()
    signs = torch.where(w - alpha >= 0, 1, -1).long()
    absmax = x.abs().amax(-1, keepdim=True).clamp(min=1e-5).double()
    gamma = (127.0 / absmax).float().double()
    xq = torch.round((x.double() * gamma).float()).clamp(-128, 127).long()
    acc = xq @ signs.T  # int64, exact
    y = ((acc.double() * beta.double()).float().double() / gamma).float()
    if bias is not None:
        y = y + bias.detach()
    return y, signs.to(torch.int8), beta.item()


@pytest.mark.parametrize("bias", [True, False])
def test_bitlinear_eval_matches_formula(bias):
    torch.manual_seed(0)
    layer = BitLinear(24, 7, bias=bias).eval()
    x = torch.randn(3, 5, 24) * torch.logspace(-3, 2, 5).view(1, 5, 1)
    x[0, 0] = 0.0  # all-zero row: gamma from the 1e-5 floor
    ref, signs, beta = _bitlinear_reference(x, layer.weight, layer.bias)
    torch.testing.assert_close(layer(x), ref, rtol=0, atol=0)
    got_signs, got_beta = layer.quantized_weights()
    assert got_signs.dtype == torch.int8 and torch.equal(got_signs, signs)
    assert got_beta == beta


def test_bitlinear_by_hand():
    # mean(W) = 0 and W has a zero entry: 0 - 0 >= 0 maps to +1. beta = mean|W| = 1.
    layer = BitLinear(4, 1, bias=False).eval()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, 0.0, -1.0, -1.0]]))
    signs, beta = layer.quantized_weights()
    assert signs.tolist() == [[1, 1, -1, -1]] and beta == 1.0
    # gamma = 127/127 = 1; half to even: 0.5 -> 0, 1.5 -> 2, so acc = 127 + 0 - 2 - 2 = 123
    # (half away from zero would give 127 + 1 - 2 - 2 = 124).
    y = layer(torch.tensor([[127.0, 0.5, 1.5, 1.5]]))
    assert y.item() == 123.0


def test_bitlinear_ste_gradients():
    torch.manual_seed(0)
    layer = BitLinear(16, 4).train()
    x = torch.randn(8, 16, requires_grad=True)
    y = layer(x)
    torch.testing.assert_close(y, layer.eval()(x), rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0

    model = BitJetFormer.tiny().train()
    F.nll_loss(model(_jets(16)), torch.arange(16) % 5).backward()
    bit = [m for m in model.modules() if isinstance(m, BitLinear)]
    assert len(bit) == 4 * 6
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in bit)


def test_bitlinear_is_a_drop_in_linear():
    lin = nn.Linear(6, 3)
    bit = BitLinear.from_linear(lin)
    assert torch.equal(bit.weight, lin.weight) and torch.equal(bit.bias, lin.bias)
    assert set(bit.state_dict()) == set(lin.state_dict())
    with pytest.raises(ValueError, match="2\\*\\*24"):
        BitLinear(1 << 17, 1)
