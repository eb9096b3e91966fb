"""Plain-torch reference models for jet tagging, and their parameter/FLOP counts.

Every model maps a (B, N, F) float32 tensor of particles to (B, 5) log-probabilities and
exports with ``torch.export.export(model.eval(), (x,))``.
"""
from .base import DATASET_SHAPES, JetModel
from .baselines import DeepSets, DeepSetsConfig, ParticleMLP, ParticleMLPConfig
from .bitlinear import BitLinear
from .counting import count
from .jetformer import BitJetFormer, JetFormer, JetFormerConfig, LinformerConfig, LinformerJetFormer
from .layers import (FeedForward, LinformerSelfAttention, SelfAttention, TokenBatchNorm,
                     TransformerBlock)

# Name -> class, for the CLI and for rebuilding a model from a saved (name, config) pair.
MODELS: dict[str, type[JetModel]] = {
    "jetformer": JetFormer,
    "linformer": LinformerJetFormer,
    "bitjetformer": BitJetFormer,
    "mlp": ParticleMLP,
    "deepsets": DeepSets,
}

__all__ = [
    "BitJetFormer", "BitLinear", "DATASET_SHAPES", "DeepSets", "DeepSetsConfig", "FeedForward",
    "JetFormer", "JetFormerConfig", "JetModel", "LinformerConfig", "LinformerJetFormer",
    "LinformerSelfAttention", "MODELS", "ParticleMLP", "ParticleMLPConfig", "SelfAttention",
    "TokenBatchNorm", "TransformerBlock", "count",
]
