"""CPU calls at any batch size: whole chunks on the compiled module, the rest on smaller modules
compiled on first use, never a padding jet (issue 10, section 3)."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from allo_ext.frontend import from_pytorch
from allo_ext.frontend.compile import batch_plan
from allo_ext.models import JetFormer, ParticleMLP


@given(n=st.integers(0, 5000), log_chunk=st.integers(0, 10), extra=st.integers(0, 3))
def test_batch_plan_adds_up_with_few_sizes(n, log_chunk, extra):
    chunk = (1 << log_chunk) + extra  # chunks that are powers of two and chunks that are not
    plan = batch_plan(n, chunk)
    assert sum(plan) == n
    full, rest = plan[: n // chunk], plan[n // chunk:]
    assert full == [chunk] * (n // chunk)
    # the rest: distinct powers of two, largest first, one per set bit of n % chunk
    assert all(p & (p - 1) == 0 and 0 < p < chunk for p in rest)
    assert rest == sorted(set(rest), reverse=True)
    assert len(rest) == bin(n % chunk).count("1")


def test_batch_plan_examples():
    assert batch_plan(1, 256) == [1]
    assert batch_plan(3, 256) == [2, 1]
    assert batch_plan(257, 256) == [256, 1]
    assert batch_plan(1024, 256) == [256] * 4
    assert batch_plan(0, 256) == []
    assert batch_plan(13, 8) == [8, 4, 1]


def _ref(m, x):
    with torch.no_grad():
        return m(x).numpy()


def test_small_batches_run_small_modules_and_match_torch():
    torch.manual_seed(3)
    m = ParticleMLP(n_particles=4, n_features=3).eval()
    f = from_pytorch(m, torch.randn(2, 4, 3), batch_size=8)
    seen = 0
    for n, plan in [(1, [1]), (3, [2, 1]), (8, [8]), (13, [8, 4, 1]), (9, [8, 1])]:
        x = torch.randn(n, 4, 3) * 3
        np.testing.assert_allclose(f(x), _ref(m, x), rtol=1e-5, atol=1e-5)
        assert f.last_plan == plan
        seen += n
        assert f.jets_computed == seen, "a call computed jets it was not given (padding)"
    assert sorted(f.modules) == [1, 2, 4, 8]
    for size, mod in f.modules.items():  # each module really is compiled for its size
        assert mod.arg_types[0].shape[0] == size and mod.res_types[0].shape[0] == size
    assert set(f.timings["lazy_build_s"]) == {1, 2, 4}
    f(torch.randn(5, 4, 3))
    assert sorted(f.modules) == [1, 2, 4, 8], "modules are compiled once and kept"


def test_lazy_modules_come_from_the_model_as_compiled():
    """Training the user's model on after compiling must not leak into modules built later."""
    torch.manual_seed(4)
    m = ParticleMLP(n_particles=4, n_features=3).eval()
    x = torch.randn(3, 4, 3)
    before = _ref(m, x)
    f = from_pytorch(m, x, batch_size=4)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    np.testing.assert_allclose(f(x), before, rtol=1e-5, atol=1e-5)  # [2, 1]: both built after the change
    assert f.last_plan == [2, 1]


@pytest.mark.slow
def test_jetformer_at_batch_1_3_257():
    """The class token and attention at the sizes a trigger sees: one jet, a few, one over a chunk."""
    torch.manual_seed(0)
    m = JetFormer.tiny().eval()
    f = from_pytorch(m, torch.randn(2, 8, 3))
    assert f.chunk == 256
    g = torch.Generator().manual_seed(1)
    for n, plan in [(1, [1]), (3, [2, 1]), (257, [256, 1])]:
        x = torch.randn(n, 8, 3, generator=g)
        out = f(x.numpy())
        np.testing.assert_allclose(out, _ref(m, x), rtol=1e-4, atol=1e-5)
        assert f.last_plan == plan
    assert f.jets_computed == 261
