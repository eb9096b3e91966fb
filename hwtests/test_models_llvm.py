"""Whole models through from_pytorch(target="llvm") against torch eager and torch-mlir's own importer."""
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from allo_ext.frontend import from_pytorch
from allo_ext.models import BitJetFormer, DeepSets, JetFormer, LinformerJetFormer, ParticleMLP
from allo_ext.testing import perturb_norm_stats, run_torch_mlir

# Compiling a model takes 1-3 s, so these draw fewer examples than the kernel tests.
MODEL_EXAMPLES = settings(max_examples=3)

DIMS_HEADS = [(8, 1), (8, 2), (16, 2), (16, 4)]


def _jets(seed, b, n, f):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, f, generator=g)


def _check(model, x, oracle_atol=1e-5):
    model = model.eval()
    with torch.no_grad():
        ref = model(x).numpy()
    f = from_pytorch(model, x[:2])  # compiled from a batch of 2, called with the whole batch
    y = f(x.numpy())
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert (y.argmax(1) == ref.argmax(1)).all()
    np.testing.assert_allclose(y, run_torch_mlir(model, x), rtol=1e-5, atol=oracle_atol)
    return f


@MODEL_EXAMPLES
@given(seed=st.integers(0, 2**16), blocks=st.integers(1, 3), dh=st.sampled_from(DIMS_HEADS),
       n=st.integers(2, 10), f=st.integers(1, 5), norm_act=st.sampled_from([("batch", "relu"), ("layer", "silu")]))
def test_jetformer(seed, blocks, dh, n, f, norm_act):
    torch.manual_seed(seed)
    m = JetFormer(n_particles=n, n_features=f, n_blocks=blocks, dim=dh[0], n_heads=dh[1],
                  norm=norm_act[0], act=norm_act[1])
    _check(perturb_norm_stats(m, seed), _jets(seed, 5, n, f))


@MODEL_EXAMPLES
@given(seed=st.integers(0, 2**16), dh=st.sampled_from(DIMS_HEADS), n=st.integers(2, 10), k=st.integers(1, 6))
def test_linformer(seed, dh, n, k):
    torch.manual_seed(seed)
    m = LinformerJetFormer(n_particles=n, n_features=3, n_blocks=2, dim=dh[0], n_heads=dh[1], k=k)
    _check(perturb_norm_stats(m, seed), _jets(seed, 5, n, 3))


@MODEL_EXAMPLES
@given(seed=st.integers(0, 2**16), n=st.integers(1, 12), f=st.integers(1, 6))
def test_particle_mlp(seed, n, f):
    torch.manual_seed(seed)
    _check(ParticleMLP(n_particles=n, n_features=f), _jets(seed, 7, n, f))


@MODEL_EXAMPLES
@given(seed=st.integers(0, 2**16), n=st.integers(1, 12), pool=st.sampled_from(["mean", "sum"]))
def test_deepsets(seed, n, pool):
    torch.manual_seed(seed)
    _check(DeepSets(n_particles=n, n_features=3, pool=pool), _jets(seed, 7, n, 3))


@MODEL_EXAMPLES
@given(seed=st.integers(0, 2**16), blocks=st.integers(1, 2), dh=st.sampled_from(DIMS_HEADS))
def test_bitjetformer(seed, blocks, dh):
    torch.manual_seed(seed)
    m = BitJetFormer(n_particles=8, n_features=3, n_blocks=blocks, dim=dh[0], n_heads=dh[1])
    # torch-mlir computes 127/max|x| through a reciprocal, so an activation sitting on a rounding
    # boundary can quantise one step apart there; torch eager is the exact reference (1e-5 above).
    _check(perturb_norm_stats(m, seed), _jets(seed, 5, 8, 3), oracle_atol=5e-3)


def test_presets_compile_and_match():
    torch.manual_seed(0)
    m = perturb_norm_stats(JetFormer.tiny(), 0)
    x = _jets(1, 600, 8, 3)  # more than one 256-jet chunk, and a ragged last chunk
    f = _check(m, x)
    assert f(x.numpy()[:0]).shape == (0, 5)
    assert f(x.numpy()[:1]).shape == (1, 5)


class _WithMHA(torch.nn.Module):
    """nn.MultiheadAttention and a 2-D BatchNorm, as a user model would write them."""

    def __init__(self, c=8, h=2):
        super().__init__()
        self.embed = torch.nn.Linear(3, c)
        self.mha = torch.nn.MultiheadAttention(c, h, batch_first=True)
        self.bn = torch.nn.BatchNorm1d(c)
        self.drop = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(c, 5)

    def forward(self, x):
        h = self.embed(x)
        a, _ = self.mha(h, h, h, need_weights=False)
        pooled = self.drop(a).mean(dim=1)
        return torch.nn.functional.log_softmax(self.head(torch.relu(self.bn(pooled))), dim=-1)


def test_multihead_attention_module():
    torch.manual_seed(3)
    m = perturb_norm_stats(_WithMHA(), 3)
    _check(m, _jets(4, 6, 8, 3))
