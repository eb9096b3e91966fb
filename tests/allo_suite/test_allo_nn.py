"""All 21 kernels of Allo's own ``allo/library/nn.py`` (vendored unchanged, loaded through the
Allo-syntax source loader) instantiated, scheduled with Allo's own schedule functions where nn.py
has one, built for the CPU and compared with torch."""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def allo():
    sys.path.insert(0, os.path.join(HERE, "shim"))
    try:
        import allo
        import allo.library.nn  # noqa: F401
        yield allo
    finally:
        sys.path.remove(os.path.join(HERE, "shim"))


def _t(*a):
    return [torch.from_numpy(np.asarray(x)) for x in a]


def _rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def case(name, rng):
    """(instantiate list, inputs, torch reference function) for one kernel."""
    f32 = "float32"
    if name == "linear2d":
        M, N, K = 3, 5, 4
        x, w, b = _rand(rng, M, K), _rand(rng, N, K), _rand(rng, N)
        return [f32, f32, f32, M, N, K], [x, w, b], lambda x, w, b: F.linear(x, w, b)
    if name == "linear3d":
        B, L, D, M = 2, 3, 4, 5
        x, w, b = _rand(rng, B, L, D), _rand(rng, M, D), _rand(rng, M)
        return [f32, f32, f32, B, L, D, M], [x, w, b], lambda x, w, b: F.linear(x, w, b)
    if name in ("relu2d", "relu3d", "relu4d"):
        shape = {"relu2d": (3, 5), "relu3d": (2, 3, 4), "relu4d": (2, 2, 3, 4)}[name]
        return [f32, *shape], [_rand(rng, *shape)], F.relu
    if name == "softmax":
        L = 6
        x = _rand(rng, L, L, scale=30.0)  # large logits: the max subtraction matters
        return [f32, L], [x], lambda x: torch.softmax(x, -1)
    if name == "log_softmax":
        B, C = 3, 7
        return [f32, B, C], [_rand(rng, B, C, scale=30.0)], lambda x: torch.log_softmax(x, -1)
    if name == "layer_norm":
        L, D = 4, 8
        # nn.py computes var = E[x^2] - E[x]^2, which cancels catastrophically in float32 when the
        # variance is tiny next to the mean: that is Allo's algorithm, so test where it is sound
        x = _rand(rng, L, D) + 0.5
        return [f32, L, D], [x, _rand(rng, D), _rand(rng, D)], lambda x, g, b: F.layer_norm(x, (D,), g, b, 1e-5)
    if name == "GeLU":
        L, D = 3, 5
        return [f32, L, D], [_rand(rng, L, D, scale=3.0)], lambda x: F.gelu(x, approximate="tanh")
    if name == "residual_add":
        return [f32, 3, 4], [_rand(rng, 3, 4), _rand(rng, 3, 4)], torch.add
    if name == "scaled_dot_product_attention":
        H, L, D, M0, M1 = 2, 4, 8, 2, 2
        q, k, v = _rand(rng, L, D), _rand(rng, L, D), _rand(rng, L, D)

        def ref(q, k, v):  # nn.py's kernel: per head softmax(Q_h K_h^T) V_h (no 1/sqrt(d) scaling)
            dh = D // H
            outs = [torch.softmax(q[:, h * dh:(h + 1) * dh] @ k[:, h * dh:(h + 1) * dh].T, -1)
                    @ v[:, h * dh:(h + 1) * dh] for h in range(H)]
            return torch.cat(outs, 1)

        return [f32, H, L, D, M0, M1], [q, k, v], ref
    if name == "RoPE":
        H, L, D = 2, 3, 8
        half = D // H // 2
        x, c, s = _rand(rng, L, D), _rand(rng, L, half), _rand(rng, L, half)

        def ref(x, c, s):
            dh = D // H
            parts = []
            for h in range(H):
                x1, x2 = x[:, h * dh:h * dh + half], x[:, h * dh + half:(h + 1) * dh]
                parts += [c * x1 - s * x2, s * x1 + c * x2]
            return torch.cat(parts, 1)

        return [f32, H, L, D], [x, c, s], ref
    if name == "modulate_fused":
        L, D = 3, 4
        return [f32, L, D], [_rand(rng, L, D), _rand(rng, D), _rand(rng, D)], lambda x, sc, sh: x * (1 + sc) + sh
    if name == "conv2d":
        B, Cin, Cout, H, W, K, S, P = 1, 2, 3, 5, 6, 3, 2, 1
        Oh, Ow = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        x, w, b = _rand(rng, B, Cin, H, W), _rand(rng, Cout, Cin, K, K), _rand(rng, Cout)
        return ([f32, B, Cin, Cout, H, W, K, K, Oh, Ow, S, S, P, P], [x, w, b],
                lambda x, w, b: F.conv2d(x, w, b, stride=S, padding=P))
    if name in ("maxpool2d", "avgpool2d"):
        B, C, H, W, K, S, P = 1, 2, 5, 6, 3, 2, 1
        Oh, Ow = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        x = _rand(rng, B, C, H, W) - 5.0  # all negative: padding must not win the max
        ref = (lambda x: F.max_pool2d(x, K, S, P)) if name == "maxpool2d" else \
            (lambda x: F.avg_pool2d(x, K, S, P, count_include_pad=True))
        return [f32, B, C, H, W, K, Oh, Ow, S, P], [x], ref
    if name in ("batchnorm2d", "batchnorm1d_2d", "batchnorm1d_3d"):
        shape = {"batchnorm2d": (2, 3, 2, 4), "batchnorm1d_2d": (4, 3), "batchnorm1d_3d": (2, 3, 5)}[name]
        C = shape[1]
        g, b, m = _rand(rng, C), _rand(rng, C), _rand(rng, C)
        var = (rng.random(C) * 1e-3).astype(np.float32)  # tiny variances: eps matters
        eps = np.float32(1e-5)
        return ([f32, *shape], [_rand(rng, *shape), g, b, eps, m, var],
                lambda x, g, b, eps, m, v: F.batch_norm(x, m, v, g, b, False, 0.0, float(eps)))
    if name == "repeat_batch3d":
        B, L, C, N = 2, 3, 4, 3
        return [f32, B, L, C, N], [_rand(rng, B, L, C)], lambda x: x.repeat(N, 1, 1)
    if name == "concat":
        B, N1, N2, C = 2, 3, 2, 4
        return [f32, B, N1, N2, C], [_rand(rng, B, N1, C), _rand(rng, B, N2, C)], lambda a, b: torch.cat([a, b], 1)
    raise KeyError(name)


KERNELS = ["linear2d", "linear3d", "relu2d", "relu4d", "relu3d", "softmax", "log_softmax", "layer_norm", "GeLU",
           "residual_add", "scaled_dot_product_attention", "RoPE", "modulate_fused", "conv2d", "maxpool2d",
           "avgpool2d", "batchnorm2d", "batchnorm1d_2d", "batchnorm1d_3d", "repeat_batch3d", "concat"]
SCHEDULES = {"linear2d": "schedule_linear2d", "linear3d": "schedule_linear3d", "relu2d": "schedule_relu2d",
             "relu4d": "schedule_relu4d", "relu3d": "schedule_relu3d", "softmax": "schedule_softmax",
             "log_softmax": "schedule_log_softmax", "layer_norm": "schedule_layernorm", "GeLU": "schedule_gelu",
             "modulate_fused": "schedule_modulate_fused", "conv2d": "schedule_conv2d",
             "maxpool2d": "schedule_maxpool2d", "avgpool2d": "schedule_avgpool2d",
             "batchnorm2d": "schedule_batchnorm2d", "batchnorm1d_2d": "schedule_batchnorm1d_2d",
             "batchnorm1d_3d": "schedule_batchnorm1d_3d", "repeat_batch3d": "schedule_repeat_batch3d",
             "concat": "schedule_concat"}


def test_nn_has_21_kernels(allo):
    from allo_ext.lang.source import generic_params

    nn = sys.modules["allo.library.nn"]
    generic = sorted(n for n, v in vars(nn).items()
                     if callable(v) and getattr(v, "__module__", "") == nn.__name__ and generic_params(v))
    assert sorted(KERNELS) == generic


@pytest.mark.parametrize("name", KERNELS)
def test_allo_nn_kernel_matches_torch(allo, name):
    nn = sys.modules["allo.library.nn"]
    rng = np.random.default_rng(sum(map(ord, name)))
    inst, inputs, ref = case(name, rng)
    inst = [getattr(allo, x) if isinstance(x, str) else x for x in inst]
    s = allo.customize(getattr(nn, name), instantiate=inst)
    if name in SCHEDULES:
        getattr(nn, SCHEDULES[name])(s)
    got = s.build()(*inputs)
    want = ref(*_t(*inputs)).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
