"""Kernels of allo_ext.kernels.nn (linear, norm, elementwise, activation) against torch on llvm.

References are plain torch (torch.nn.functional and tensor ops), never the kernels' own code.
Each property test also draws the schedule profile, so the latency profile's unrolled loops are
checked for correctness as well.
"""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import allo_ext
from allo_ext import float32
from allo_ext.kernels import apply_schedules
from allo_ext.kernels import nn as K
from allo_ext.lang import AlloError

TOL = dict(rtol=1e-5, atol=1e-5)

dims = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)
profiles = st.sampled_from(["default", "latency"])


def shapes(min_rank=1, max_rank=4):
    return st.lists(dims, min_size=min_rank, max_size=max_rank).map(tuple)


def randn(rng, *shape, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


def build(k, profile="default"):
    s = allo_ext.customize(k)
    apply_schedules(s, profile)
    return s, s.build(target="llvm")


def run(k, *args, profile="default"):
    return build(k, profile)[1](*args)


def check(got, want):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != torch's {want.shape}"
    np.testing.assert_allclose(got, want, **TOL)


def t(a):
    return torch.from_numpy(np.asarray(a))


# ---------------------------------------------------------------------- products
@given(m=dims, k=dims, n=dims, bias=st.booleans(), seed=seeds, profile=profiles)
def test_linear2d(m, k, n, bias, seed, profile):
    rng = np.random.default_rng(seed)
    x, w, b = randn(rng, m, k), randn(rng, n, k), randn(rng, n)
    if bias:
        check(run(K.linear2d(float32, m, k, n), x, w, b, profile=profile), F.linear(t(x), t(w), t(b)))
    else:
        check(run(K.linear2d(float32, m, k, n, bias=False), x, w, profile=profile), F.linear(t(x), t(w)))


@given(b_=dims, l_=dims, k=dims, n=dims, bias=st.booleans(), seed=seeds, profile=profiles)
def test_linear3d(b_, l_, k, n, bias, seed, profile):
    rng = np.random.default_rng(seed)
    x, w, b = randn(rng, b_, l_, k), randn(rng, n, k), randn(rng, n)
    if bias:
        check(run(K.linear3d(float32, b_, l_, k, n), x, w, b, profile=profile), F.linear(t(x), t(w), t(b)))
    else:
        check(run(K.linear3d(float32, b_, l_, k, n, bias=False), x, w, profile=profile), F.linear(t(x), t(w)))


@given(m=dims, k=dims, n=dims, seed=seeds, profile=profiles)
def test_matmul(m, k, n, seed, profile):
    rng = np.random.default_rng(seed)
    a, b = randn(rng, m, k), randn(rng, k, n)
    check(run(K.matmul(float32, m, k, n), a, b, profile=profile), torch.matmul(t(a), t(b)))


@given(b_=dims, m=dims, k=dims, n=dims, seed=seeds, profile=profiles)
def test_bmm(b_, m, k, n, seed, profile):
    rng = np.random.default_rng(seed)
    a, b = randn(rng, b_, m, k), randn(rng, b_, k, n)
    check(run(K.bmm(float32, b_, m, k, n), a, b, profile=profile), torch.bmm(t(a), t(b)))


# The CPU ("ikj") loop order: weights transposed to [in, out] for the linears, 4-row blocks with
# a tail (m up to 10 covers m % 4 = 0..3), and the same per-output summation order.
@given(m=st.integers(1, 10), k=dims, n=dims, bias=st.booleans(), seed=seeds)
def test_linear2d_cpu_order(m, k, n, bias, seed):
    rng = np.random.default_rng(seed)
    x, w, b = randn(rng, m, k), randn(rng, n, k), randn(rng, n)
    wt = np.ascontiguousarray(w.T)
    k_ = K.linear2d(float32, m, k, n, bias=bias, loop_order="ikj")
    got = run(k_, x, wt, b) if bias else run(k_, x, wt)
    check(got, F.linear(t(x), t(w), t(b) if bias else None))


@given(b_=dims, l_=dims, k=dims, n=dims, bias=st.booleans(), seed=seeds)
def test_linear3d_cpu_order(b_, l_, k, n, bias, seed):
    rng = np.random.default_rng(seed)
    x, w, b = randn(rng, b_, l_, k), randn(rng, n, k), randn(rng, n)
    wt = np.ascontiguousarray(w.T)
    k_ = K.linear3d(float32, b_, l_, k, n, bias=bias, loop_order="ikj")
    got = run(k_, x, wt, b) if bias else run(k_, x, wt)
    check(got, F.linear(t(x), t(w), t(b) if bias else None))


@given(b_=dims, m=dims, k=dims, n=dims, seed=seeds)
def test_matmul_bmm_cpu_order(b_, m, k, n, seed):
    rng = np.random.default_rng(seed)
    a, b = randn(rng, m, k), randn(rng, k, n)
    check(run(K.matmul(float32, m, k, n, loop_order="ikj"), a, b), torch.matmul(t(a), t(b)))
    a3, b3 = randn(rng, b_, m, k), randn(rng, b_, k, n)
    check(run(K.bmm(float32, b_, m, k, n, loop_order="ikj"), a3, b3), torch.bmm(t(a3), t(b3)))


def test_loop_order_is_checked():
    with pytest.raises(ValueError, match="loop_order must be 'ijk' or 'ikj'"):
        K.matmul(float32, 2, 2, 2, loop_order="kij")


def test_linear2d_hand_computed():
    x = np.array([[1, 2, 3]], dtype=np.float32)
    w = np.array([[1, 0, 0], [0, 1, 1]], dtype=np.float32)
    b = np.array([10, 20], dtype=np.float32)
    np.testing.assert_array_equal(run(K.linear2d(float32, 1, 3, 2), x, w, b), [[11, 25]])


def test_float64_instances():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    got = run(K.linear2d(allo_ext.float64, 2, 4, 3), x, w, b)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, F.linear(t(x), t(w), t(b)).numpy(), rtol=1e-12, atol=1e-12)
    g, be = rng.standard_normal(4), rng.standard_normal(4)
    np.testing.assert_allclose(run(K.layernorm(allo_ext.float64, (2, 4)), x, g, be),
                               F.layer_norm(t(x), (4,), t(g), t(be)).numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- softmax family
@given(shape=shapes(1, 4), seed=seeds, profile=profiles)
def test_softmax(shape, seed, profile):
    x = randn(np.random.default_rng(seed), *shape, scale=3.0)
    check(run(K.softmax(float32, shape), x, profile=profile), F.softmax(t(x), dim=-1))


@given(data=st.data(), shape=shapes(1, 4), seed=seeds, profile=profiles)
def test_log_softmax_any_dim(data, shape, seed, profile):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = randn(np.random.default_rng(seed), *shape, scale=3.0)
    check(run(K.log_softmax(float32, shape, dim=dim), x, profile=profile), F.log_softmax(t(x), dim=dim))


# exp(80) still fits in float32; exp(100) does not, so 100 catches a kernel that skips the max.
@pytest.mark.parametrize("big", [80.0, 100.0])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_softmax_at_large_magnitudes(dim, big):
    x = np.array([[big, -big, 0.0], [-big, -big, big]], dtype=np.float32)
    got = run(K.log_softmax(float32, (2, 3), dim=dim), x)
    assert np.isfinite(got).all()
    check(got, F.log_softmax(t(x), dim=dim))
    if dim == -1:  # hand-computed: exp(-big) and exp(-2 big) vanish next to exp(0) in float32
        np.testing.assert_allclose(got[0], [0.0, -2 * big, -big], **TOL)


def test_softmax_large_inputs_do_not_overflow():
    x = np.array([[100.0, 100.0], [-100.0, 0.0]], dtype=np.float32)
    got = run(K.softmax(float32, (2, 2)), x)
    np.testing.assert_allclose(got[0], [0.5, 0.5], **TOL)
    check(got, F.softmax(t(x), dim=-1))


# ---------------------------------------------------------------------- normalisation
@given(b_=dims, c=dims, seed=seeds, profile=profiles)
def test_batchnorm1d_2d(b_, c, seed, profile):
    rng = np.random.default_rng(seed)
    x, g, be, mu = randn(rng, b_, c), randn(rng, c), randn(rng, c), randn(rng, c)
    var = np.asarray(rng.uniform(0.1, 3.0, c), dtype=np.float32)
    want = F.batch_norm(t(x), t(mu), t(var), t(g), t(be), training=False, eps=1e-5)
    check(run(K.batchnorm1d_2d(float32, b_, c), x, g, be, mu, var, profile=profile), want)


@given(b_=dims, c=dims, l_=dims, seed=seeds, profile=profiles, eps=st.sampled_from([1e-5, 1e-3]))
def test_batchnorm1d_3d(b_, c, l_, seed, profile, eps):
    rng = np.random.default_rng(seed)
    x, g, be, mu = randn(rng, b_, c, l_), randn(rng, c), randn(rng, c), randn(rng, c)
    var = np.asarray(rng.uniform(0.1, 3.0, c), dtype=np.float32)
    want = F.batch_norm(t(x), t(mu), t(var), t(g), t(be), training=False, eps=eps)
    check(run(K.batchnorm1d_3d(float32, b_, c, l_, eps=eps), x, g, be, mu, var, profile=profile), want)


def test_batchnorm1d_3d_matches_module_in_eval():
    rng = np.random.default_rng(1)
    bn = torch.nn.BatchNorm1d(3).eval()
    with torch.no_grad():
        bn.weight.copy_(t(randn(rng, 3)))
        bn.bias.copy_(t(randn(rng, 3)))
        bn.running_mean.copy_(t(randn(rng, 3)))
        bn.running_var.copy_(t(np.asarray(rng.uniform(0.5, 2, 3), dtype=np.float32)))
    x = randn(rng, 2, 3, 4)
    args = [p.detach().numpy() for p in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]
    check(run(K.batchnorm1d_3d(float32, 2, 3, 4), x, *args), bn(t(x)))


@given(shape=shapes(1, 4), seed=seeds, profile=profiles)
def test_layernorm(shape, seed, profile):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x, g, b = randn(rng, *shape, scale=2.0) + 5.0, randn(rng, c), randn(rng, c)
    check(run(K.layernorm(float32, shape), x, g, b, profile=profile), F.layer_norm(t(x), (c,), t(g), t(b), eps=1e-5))


# ---------------------------------------------------------------------- activations
@given(shape=shapes(0, 4), seed=seeds)
def test_silu(shape, seed):
    x = randn(np.random.default_rng(seed), *shape, scale=4.0)
    check(run(K.silu(float32, shape), x), F.silu(t(x)))


@given(shape=shapes(0, 4), seed=seeds, approximate=st.sampled_from(["none", "tanh"]))
def test_gelu(shape, seed, approximate):
    x = randn(np.random.default_rng(seed), *shape, scale=3.0)
    check(run(K.gelu(float32, shape, approximate=approximate), x), F.gelu(t(x), approximate=approximate))


def test_gelu_tanh_uses_exact_constant():
    # At x = 1 the constants 0.797724 (torch-mlir) and sqrt(2/pi) differ by 2.5e-5 in the result.
    x = np.array([1.0], dtype=np.float32)
    got = run(K.gelu(float32, (1,), approximate="tanh"), x)[0]
    c = np.sqrt(2 / np.pi)
    want = 0.5 * (1 + np.tanh(c * (1 + 0.044715)))
    assert abs(got - want) < 2e-7
    assert abs(got - 0.5 * (1 + np.tanh(0.797724 * (1 + 0.044715)))) > 1e-5


# ---------------------------------------------------------------------- broadcasting elementwise
OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


@st.composite
def broadcast_pair(draw):
    """Two numpy-broadcastable shapes: suffixes of one output shape, some dims squeezed to 1."""
    out = draw(shapes(0, 4))

    def operand():
        rank = draw(st.integers(0, len(out)))
        tail = out[len(out) - rank:]
        return tuple(1 if draw(st.booleans()) else d for d in tail)

    return operand(), operand()


@given(op=st.sampled_from(sorted(OPS)), pair=broadcast_pair(), seed=seeds)
def test_binary_broadcast(op, pair, seed):
    sa, sb = pair
    rng = np.random.default_rng(seed)
    a = randn(rng, *sa)
    b = randn(rng, *sb)
    if op == "div":  # keep quotients moderate so atol is meaningful
        b = np.asarray(np.sign(b) * (np.abs(b) + 0.5), dtype=np.float32)
    check(run(getattr(K, op)(float32, sa, sb), a, b), OPS[op](t(a), t(b)))


@pytest.mark.parametrize("sa,sb,out", [((2, 3), (3,), (2, 3)), ((), (2, 1), (2, 1)), ((4, 1, 3), (2, 1), (4, 2, 3)),
                                       ((), (), ())])
def test_broadcast_shapes_hand_checked(sa, sb, out):
    a = np.asarray(np.arange(np.prod(sa, dtype=int)).reshape(sa) + 1, dtype=np.float32)
    b = np.asarray(np.arange(np.prod(sb, dtype=int)).reshape(sb) * 10, dtype=np.float32)
    got = run(K.add(float32, sa, sb), a, b)
    assert got.shape == out
    check(got, t(a) + t(b))


def test_same_shaped_instances_compile_to_one_function():
    a1, a2 = K.add(float32, (2, 3), (3,)), K.add(float32, (2, 3), (3,))

    def twice(A: float32[2, 3], B: float32[3]) -> float32[2, 3]:
        Y = a1(A, B)
        Z = a2(Y, B)
        return Z

    s = allo_ext.customize(twice)
    assert [k for k in s.kernels() if k.startswith("add")] == ["add"]
    assert apply_schedules(s) == ["add"]
    assert pipelined(s)["add"] == {"ew.i1"}
    rng = np.random.default_rng(3)
    a, b = randn(rng, 2, 3), randn(rng, 3)
    check(s.build(target="llvm")(a, b), t(a) + 2 * t(b))


# ---------------------------------------------------------------------- factory errors
@pytest.mark.parametrize("factory", [K.add, K.sub, K.mul, K.div])
def test_incompatible_broadcast_names_both_shapes(factory):
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\).*dimension -1") as e:
        factory(float32, (2, 3), (4,))
    assert isinstance(e.value, AlloError)


def test_broadcast_shape_helper():
    assert K.broadcast_shape((4, 1, 3), (2, 1)) == (4, 2, 3)
    assert K.broadcast_shape((), (2,)) == (2,)
    with pytest.raises(K.KernelArgumentError, match=r"broadcast: shapes \(2,\) and \(3,\)"):
        K.broadcast_shape((2,), (3,))


@pytest.mark.parametrize("dim", [2, -3, 1.0])
def test_log_softmax_bad_dim(dim):
    with pytest.raises(ValueError, match=r"dim must be an int in \[-2, 1\].*rank 2, got"):
        K.log_softmax(float32, (3, 4), dim=dim)


@pytest.mark.parametrize("make, match", [
    (lambda: K.softmax(float32, ()), r"softmax: shape must have rank >= 1, got \(\)"),
    (lambda: K.layernorm(float32, (2, 0)), r"layernorm: shape \(2, 0\) must hold positive ints"),
    (lambda: K.linear2d(float32, 2, 0, 3), r"linear2d: size K must be a positive int, got 0"),
    (lambda: K.batchnorm1d_2d(float32, 2, 3, eps=-1.0), r"eps must be a non-negative float, got -1.0"),
    (lambda: K.gelu(float32, (2,), approximate="fast"), r"approximate must be one of \('none', 'tanh'\).*'fast'"),
])
def test_bad_factory_arguments(make, match):
    with pytest.raises(AlloError, match=match):
        make()


# ---------------------------------------------------------------------- schedules
_LOOP_ATTRS = re.compile(r"\} \{([^{}]*loop_name = \"([^\"]+)\"[^{}]*)\}")


def _loops_with(s, attr):
    """kernel -> names of its loops carrying ``attr``, read from the printed module."""
    out = {}
    for m in re.finditer(r"func\.func @(\w+)\(.*?\n  \}", str(s.module), re.S):
        out[m.group(1)] = {n for body, n in _LOOP_ATTRS.findall(m.group(0)) if attr in body}
    return out


def pipelined(s):
    return _loops_with(s, "hls.pipeline_ii = 1")


def unrolled(s):
    return _loops_with(s, "hls.unroll")


@pytest.mark.parametrize("make, profile, pipe, unroll", [
    (lambda: K.linear2d(float32, 2, 8, 3), "default", {"mm.j"}, set()),
    # latency (schedule_latency, budget 128 innermost bodies): a nest of <= 128 bodies is unrolled whole;
    # otherwise the outermost loop whose iteration runs <= 128 bodies is pipelined, the loops inside unrolled;
    # a loop around innermost loops only is pipelined even over budget, its inner loops left to Vitis.
    (lambda: K.linear2d(float32, 2, 8, 3, bias=False), "latency", set(), {"mm.i", "mm.j", "k"}),
    (lambda: K.linear3d(float32, 2, 3, 17, 4), "latency", {"mm.l"}, {"mm.j", "k"}),
    (lambda: K.linear3d(float32, 2, 3, 200, 4), "latency", {"mm.j"}, set()),  # one row exceeds the budget
    (lambda: K.bmm(float32, 2, 3, 4, 5), "latency", set(), {"mm.n", "mm.i", "mm.j", "k"}),
    (lambda: K.matmul(float32, 2, 3, 4), "default", {"mm.j"}, set()),
    (lambda: K.softmax(float32, (2, 3, 4)), "default", {"max.c", "sum.c", "norm.c"}, set()),
    (lambda: K.softmax(float32, (2, 3, 4)), "latency", set(), {"row.o0", "row.o1", "max.c", "sum.c", "norm.c"}),
    (lambda: K.log_softmax(float32, (2, 30), dim=1), "latency", {"row.o0"}, {"max.c", "sum.c", "norm.c"}),
    (lambda: K.log_softmax(float32, (2, 200), dim=1), "latency", {"row.o0"}, set()),
    (lambda: K.layernorm(float32, (3, 4)), "latency", set(), {"row.o0", "sum.c", "var.c", "norm.c"}),
    (lambda: K.batchnorm1d_2d(float32, 2, 3), "default", {"stat.c", "bn.c"}, set()),
    (lambda: K.batchnorm1d_3d(float32, 2, 3, 4), "latency", set(), {"stat.c", "bn.b", "bn.c", "bn.l"}),
    (lambda: K.add(float32, (2, 1, 3), (4, 1)), "default", {"ew.i2"}, set()),
    (lambda: K.mul(float32, (), ()), "default", set(), set()),
    (lambda: K.gelu(float32, (2, 3)), "default", {"gelu.i1"}, set()),
    (lambda: K.silu(float32, (5,)), "default", {"silu.i0"}, set()),
])
def test_apply_schedules_marks_expected_loops(make, profile, pipe, unroll):
    k = make()
    s = allo_ext.customize(k)
    assert apply_schedules(s, profile) == [k.__name__]
    assert pipelined(s)[k.__name__] == pipe
    assert unrolled(s)[k.__name__] == unroll


def test_scheduled_kernel_still_matches_torch():
    rng = np.random.default_rng(7)
    x, w, b = randn(rng, 3, 40), randn(rng, 5, 40), randn(rng, 5)
    s, f = build(K.linear2d(float32, 3, 40, 5), "latency")
    assert unrolled(s)["linear2d"] == {"k"} and pipelined(s)["linear2d"] == {"mm.j"}
    check(f(x, w, b), F.linear(t(x), t(w), t(b)))
    y = randn(rng, 2, 3, 4)
    s, f = build(K.log_softmax(float32, (2, 3, 4), dim=1), "latency")
    assert unrolled(s)["log_softmax"] == {"row.o0", "row.o1", "max.c", "sum.c", "norm.c"}
    check(f(y), F.log_softmax(t(y), dim=1))
