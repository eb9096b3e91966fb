"""Frontend behaviour: errors, warnings, batch handling and the extension API."""
import numpy as np
import pytest
import torch

import allo_ext
from allo_ext.frontend import UnsupportedOpError, from_pytorch, register_lowering, trace
from allo_ext.frontend.importer import LOWERINGS
from allo_ext.lang import CallError, exp, grid
from allo_ext.models import ParticleMLP


class _Cumsum(torch.nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=1)  # a line the error must point at


def test_unsupported_op_names_op_line_and_registration_api():
    with pytest.raises(UnsupportedOpError) as e:
        from_pytorch(_Cumsum().eval(), torch.randn(2, 4))
    msg = str(e.value)
    assert "aten.cumsum" in msg
    assert "test_frontend.py" in msg and "torch.cumsum(x, dim=1)" in msg
    assert "register_lowering" in msg


def test_training_mode_is_compiled_in_eval_mode_with_a_warning():
    torch.manual_seed(0)
    m = ParticleMLP(n_particles=4, n_features=3)
    m.train()
    x = torch.randn(3, 4, 3)
    with pytest.warns(UserWarning, match="training mode") as rec:
        f = from_pytorch(m, x)
    assert rec[0].filename == __file__, "the warning must point at the caller's line"
    assert m.training, "the user's model must not be switched behind their back"
    with torch.no_grad():
        ref = m.eval()(x).numpy()
    np.testing.assert_allclose(f(x.numpy()), ref, rtol=1e-5, atol=1e-5)


def test_any_batch_size_and_input_checks():
    torch.manual_seed(1)
    m = ParticleMLP(n_particles=4, n_features=3).eval()
    f = from_pytorch(m, torch.randn(2, 4, 3), batch_size=8)
    for b in (1, 8, 9, 17):
        x = torch.randn(b, 4, 3)
        with torch.no_grad():
            np.testing.assert_allclose(f(x), m(x).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(CallError, match=r"\(B, 4, 3\).*\(2, 5, 3\)"):
        f(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(CallError, match="float64"):
        f(np.zeros((2, 4, 3), np.float64))


class _Sinh(torch.nn.Module):
    def forward(self, x):
        return torch.sinh(x) * 2.0


def sinh_kernel(T, shape):
    def sinh_k(X: T[shape]) -> T[shape]:
        Z: T[shape]
        for i in grid(*shape, name="t"):
            Z[i] = 0.5 * (exp(X[i]) - exp(-X[i]))
        return Z

    return sinh_k


def test_register_lowering_extends_the_frontend():
    assert "aten.sinh" not in LOWERINGS and "aten.sinh.default" not in LOWERINGS

    @register_lowering("aten.sinh.default")
    def _lower_sinh(ctx, node, x):
        return ctx.call(sinh_kernel(ctx.dtype, x.type.shape), x)

    try:
        x = torch.randn(3, 5)
        f = from_pytorch(_Sinh().eval(), x)
        np.testing.assert_allclose(f(x.numpy()), (torch.sinh(x) * 2).numpy(), rtol=1e-5, atol=1e-6)
    finally:
        del LOWERINGS["aten.sinh.default"]


def test_trace_gives_a_schedule_of_kernel_calls():
    m = ParticleMLP(n_particles=4, n_features=3).eval()
    s = trace(m, torch.randn(2, 4, 3))
    text = str(s.module)
    assert "func.func @forward" in text and "call @linear2d" in text
    assert "memref.global" in text  # weights are constants
    assert isinstance(s, allo_ext.Schedule)


def test_batchnorms_next_to_linears_are_folded():
    """JetFormer's attention norm (before q/k/v), the FFN's second norm (after linear_0) and the head
    norm fold into their linears; only the FFN's first norm (after a residual add, before ReLU) stays."""
    from allo_ext.models import JetFormer
    from allo_ext.testing import perturb_norm_stats

    torch.manual_seed(0)
    m = perturb_norm_stats(JetFormer.tiny(), 1).eval()
    text = str(trace(m, torch.randn(2, 8, 3)).module)
    assert text.count("call @batchnorm") == m.config.n_blocks
    x = torch.randn(16, 8, 3)
    with torch.no_grad():
        np.testing.assert_allclose(from_pytorch(m, x)(x), m(x).numpy(), rtol=1e-5, atol=1e-5)


class _Half(torch.nn.Module):
    def forward(self, x):
        return x.to(torch.float64) * 2


def test_dtype_conversion_is_refused_not_dropped():
    with pytest.raises(UnsupportedOpError, match=r"aten\.to.*conversion from torch\.float32 to torch\.float64"):
        from_pytorch(_Half().eval(), torch.randn(2, 3))
