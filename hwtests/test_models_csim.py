"""Whole models through the HLS C++ path: from_pytorch(target="vitis_hls", mode="csim") against torch and llvm."""
import numpy as np
import pytest
import torch

from allo_ext.frontend import from_pytorch
from allo_ext.models import BitJetFormer, DeepSets, JetFormer, LinformerJetFormer, ParticleMLP
from allo_ext.testing import perturb_norm_stats

pytestmark = pytest.mark.csim


MODELS = {
    "jetformer_tiny": lambda: JetFormer.tiny(),
    "jetformer_layernorm_silu": lambda: JetFormer.tiny(norm="layer", act="silu", n_blocks=2),
    "linformer": lambda: LinformerJetFormer.tiny(n_blocks=2),
    "bitjetformer": lambda: BitJetFormer.tiny(n_blocks=2),
    "particle_mlp": lambda: ParticleMLP.tiny(),
    "deepsets_sum": lambda: DeepSets.tiny(pool="sum"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_csim_matches_torch_and_llvm(name):
    torch.manual_seed(0)
    model = perturb_norm_stats(MODELS[name](), 0).eval()
    x = torch.randn(24, 8, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x).numpy()
    csim = from_pytorch(model, x[:1], target="vitis_hls", mode="csim")
    y = csim(x.numpy())  # the C wrapper loops over the batch, one jet per call of the top function
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert (y.argmax(1) == ref.argmax(1)).all()
    cpu = from_pytorch(model, x[:1])
    np.testing.assert_allclose(y, cpu(x.numpy()), rtol=1e-6, atol=1e-6)
