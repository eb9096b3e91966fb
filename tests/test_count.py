"""count(): parameters and FLOPs against the JetFormer paper's numbers and hand counts."""
import numpy as np
import pytest
from torch import nn

from allo_ext.models import (BitJetFormer, DeepSets, JetFormer, LinformerJetFormer, ParticleMLP,
                             count)


# (blocks, C, heads) -> (params, FLOPs, paper params) on 8 particles x 3 features: the paper's table.
@pytest.mark.parametrize("blocks, dim, heads, params, flops, paper_params", [
    (4, 8, 2, 2437, 26168, 3085),
    (5, 8, 2, 3021, 32648, 3831),
    (6, 8, 2, 3605, 39128, 4577),
])
def test_jetformer_paper_rows(blocks, dim, heads, params, flops, paper_params):
    model = JetFormer(n_particles=8, n_features=3, n_blocks=blocks, dim=dim, n_heads=heads)
    got = count(model, 8, 3)
    assert (got["params"], got["flops"], got["paper_params"]) == (params, flops, paper_params)
    # The paper/params gap is the reference code's unused BatchNorm1d((P+1)^2) per block.
    assert got["paper_params"] - got["params"] == blocks * 2 * 9**2


def test_c64_row_is_the_exact_count_of_the_papers_931654():
    # 3 blocks, C=64, 8x3 is the configuration whose exact count is 931,648: per block
    # 72 C^2 + 234 C = 309,888 (see test_jetformer_hand_formula), plus 31 C for embed and head.
    got = count(JetFormer(n_blocks=3, dim=64, n_heads=2), 8, 3)
    assert got["flops"] == 931_648

    # The paper's 931,654: fvcore reads each einsum's cost from numpy.einsum_path's printout
    # (4 significant figures) and halves it; 6 attention einsums (2 per block) at +1 each.
    def fvcore_einsum_macs(eq, *shapes):
        text = np.einsum_path(eq, *[np.zeros(s) for s in shapes], optimize="optimal")[1]
        line = next(l for l in text.splitlines() if "optimized flop" in l.lower())
        return int(np.floor(float(line.split(":")[-1]) / 2))

    qk = fvcore_einsum_macs("bhqd,bhkd->bhqk", (1, 2, 9, 32), (1, 2, 9, 32))
    av = fvcore_einsum_macs("bhqk,bhkd->bhqd", (1, 2, 9, 9), (1, 2, 9, 32))
    exact_attention_macs = 2 * 9 * 9 * 32
    assert got["flops"] + 3 * (qk + av - 2 * exact_attention_macs) == 931_654


@pytest.mark.parametrize("blocks, dim, heads", [(1, 16, 2), (2, 32, 4), (2, 128, 8)])
def test_jetformer_hand_formula(blocks, dim, heads):
    # Per block on L = 9 tokens: norms 2*L*(C + C + 2C); q,k,v,out 4*L*C^2; QK^T and AV
    # 2*L^2*C; FFN 2*L*2C^2. Embed 8*3*C, head norm 2C, head 5C.
    c, l = dim, 9
    per_block = 2 * l * 4 * c + 4 * l * c * c + 2 * l * l * c + 4 * l * c * c
    expected = blocks * per_block + 24 * c + 2 * c + 5 * c
    assert count(JetFormer(n_blocks=blocks, dim=dim, n_heads=heads), 8, 3)["flops"] == expected


def test_particle_mlp_by_hand():
    got = count(ParticleMLP(n_particles=8, n_features=3), 8, 3)
    # 24 -> 64 -> 32 -> 32 -> 5
    assert got["params"] == (24 * 64 + 64) + (64 * 32 + 32) + (32 * 32 + 32) + (32 * 5 + 5) == 4901
    assert got["flops"] == 24 * 64 + 64 * 32 + 32 * 32 + 32 * 5 == 4768
    assert got["paper_params"] == got["params"]


def test_deepsets_by_hand():
    got = count(DeepSets(pool="sum"), 8, 3)
    # phi 3 -> 32 -> 32 on each of 8 particles; rho 32 -> 32 -> 5; pooling is free.
    assert got["params"] == (3 * 32 + 32) + (32 * 32 + 32) + (32 * 32 + 32) + (32 * 5 + 5)
    assert got["flops"] == 8 * (3 * 32 + 32 * 32) + 32 * 32 + 32 * 5


def test_linformer_by_hand():
    got = count(LinformerJetFormer.tiny(k=4), 8, 3)
    c, l, k = 8, 9, 4
    # vs JetFormer: QK^T and AV cost L*k*C each instead of L*L*C; E and F cost C*L*k each.
    per_block = 2 * l * 4 * c + 8 * l * c * c + 4 * l * k * c
    assert got["flops"] == 4 * per_block + 24 * c + 7 * c
    assert got["params"] == 2437 + 4 * 2 * k * l
    # No L x L attention map, so no dead BatchNorm in the paper-style count.
    assert got["paper_params"] == got["params"]


def test_bitjetformer_counts_like_jetformer():
    # Quantisers are elementwise/reductions (free); the +-1 matmul is a linear.
    got = count(BitJetFormer.tiny(), 8, 3)
    assert (got["params"], got["flops"], got["paper_params"]) == (2437, 26168, 3085)


def test_layernorm_convention():
    # LayerNorm: 5 per element (fvcore). Per block 3 LNs on 9x8, 9x8, 9x16 tokens; head LN on 8.
    got = count(JetFormer.tiny(norm="layer", act="silu"), 8, 3)
    bn_flops = 4 * 2 * 9 * (8 + 8 + 16) + 2 * 8
    ln_flops = 4 * 5 * 9 * (8 + 8 + 16) + 5 * 8
    assert got["flops"] == 26168 - bn_flops + ln_flops


def test_only_trainable_params_and_modes_restored():
    model = JetFormer.tiny().train()
    model.blocks[0].attn.eval()
    model.head.weight.requires_grad_(False)
    got = count(model, 8, 3)
    assert got["params"] == 2437 - 8 * 5
    assert model.training and model.blocks[1].training and not model.blocks[0].attn.training


class _GroupNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm(1, 8)

    def forward(self, x):
        return self.gn(x)


def test_uncountable_op_raises():
    with pytest.raises(NotImplementedError, match="group_norm"):
        count(_GroupNormNet(), 8, 8)


def test_nn_multihead_attention_is_counted():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.mha(x, x, x)[0]

    # in_proj 9*8*24, out_proj 9*8*8, QK^T and AV 2*9*9*8
    assert count(Net(), 9, 8)["flops"] == 9 * 8 * 24 + 9 * 8 * 8 + 2 * 9 * 9 * 8
