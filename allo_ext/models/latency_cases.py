"""Small models for the latency route (target="rtl", schedule="latency"), shared by its tests and
bench/latency.py: one kernel (or one JetFormer.tiny piece) each, with BatchNorm statistics that are
not the identity (an identity norm would hide a wrong fold or scale) and inputs drawn where
fixed-point bugs show."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def randomise_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every BatchNorm gets random running statistics and affine parameters; returns ``model.eval()``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                mod.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.05)
                mod.weight.copy_(1 + 0.3 * torch.randn(c, generator=g))
                mod.bias.copy_(0.2 * torch.randn(c, generator=g))
    return model.eval()


def hard_inputs(n: int, shape: tuple, seed: int = 0) -> np.ndarray:
    """Gaussian rows, a row near the 16-bit range (wrap), a row of values below the last bit, zeros."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + tuple(shape)).astype(np.float32) * 2
    x[0] = 0
    if n > 1:
        x[1] = 20.0 * np.sign(rng.normal(size=shape))  # overflows ap_fixed<16,6> after one layer: WRAP shows
    if n > 2:
        x[2] = rng.uniform(-2e-3, 2e-3, size=shape)  # around the last bit (2**-10): TRN vs RND shows
    if n > 3:
        x[3] = -31.9
    return x


class Softmax(nn.Module):
    def forward(self, x):
        return torch.softmax(x, -1)


class LogSoftmax(nn.Module):
    def forward(self, x):
        return torch.log_softmax(x, -1)


class Gram(nn.Module):
    """x @ x^T per item: an activation-activation product (multipliers, as QK^T)."""

    def forward(self, x):
        return torch.bmm(x, x.transpose(1, 2))


class CrossProduct(nn.Module):
    """a @ b^T of the two halves of each token: products of distinct activations (QK^T's shape). A Gram
    matrix would repeat every off-diagonal product, which synthesis merges."""

    def forward(self, x):
        h = x.shape[-1] // 2
        return torch.bmm(x[..., :h], x[..., h:].transpose(1, 2))


class Matmul(nn.Module):
    """x @ W with a constant W (a registered buffer): a constant-matrix product through aten.matmul."""

    def __init__(self, k: int, n: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(k, n, generator=g) * 0.4)

    def forward(self, x):
        return torch.matmul(x, self.w)


class SliceConcat(nn.Module):
    """Slices and a concat (wiring) around an add: [x[:, :h] + x[:, h:], x[:, :h]]."""

    def forward(self, x):
        h = x.shape[-1] // 2
        return torch.cat([x[:, :h] + x[:, h:], x[:, :h]], dim=-1)


def _seeded(fn, seed=0):
    torch.manual_seed(seed)
    return fn()


def kernel_cases() -> dict:
    """name -> (model builder, per-item input shape): one library kernel each, small enough that Yosys
    synthesises its Verilog in well under a minute."""
    return {
        "linear 8->8": (lambda: _seeded(lambda: nn.Linear(8, 8).eval()), (8,)),
        "linear 16->5": (lambda: _seeded(lambda: nn.Linear(16, 5).eval(), 1), (16,)),
        "linear 3->8 on 4 tokens": (lambda: _seeded(lambda: nn.Linear(3, 8).eval(), 2), (4, 3)),
        "relu": (lambda: nn.ReLU().eval(), (16,)),
        "matmul 6x4 @ W": (lambda: Matmul(4, 4).eval(), (6, 4)),
        "bmm a b^T": (lambda: CrossProduct().eval(), (4, 6)),
        "softmax": (lambda: Softmax().eval(), (2, 4)),
        "log_softmax": (lambda: LogSoftmax().eval(), (5,)),
        "batchnorm": (lambda: randomise_norms(nn.BatchNorm1d(8), 3), (8,)),
        "slice+concat": (lambda: SliceConcat().eval(), (8,)),
    }


def piece_cases() -> dict:
    """name -> (model builder, per-item input shape): attention and FFN at C=4 on 5 tokens. Yosys needs
    tens of minutes on each (the attention's multipliers and tables)."""
    from .layers import FeedForward, SelfAttention

    def attention():
        m = SelfAttention(4, 2).eval()
        with torch.no_grad():
            m.q.weight.mul_(3.0)  # peaked scores: softmax rows with entries far below the maximum
        return m

    return {
        "attention C=4 H=2": (lambda: _seeded(attention, 1), (5, 4)),
        "FFN C=4": (lambda: _seeded(lambda: randomise_norms(FeedForward(4, 8, "batch", "relu")), 0), (5, 4)),
    }


def jetformer_block(seed: int = 0) -> nn.Module:
    """One JetFormer.tiny transformer block (C=8, 2 heads; input 9 tokens x 8: 8 particles + class token)."""
    from .jetformer import JetFormer

    torch.manual_seed(seed)
    return randomise_norms(JetFormer.tiny().blocks[0], seed)
