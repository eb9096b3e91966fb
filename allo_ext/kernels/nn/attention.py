"""Multi-head self-attention with its projections: ``attention`` (torch ``nn.MultiheadAttention``)
and ``linformer_attention`` (keys and values projected along the sequence axis, Linformer-style).

Both are a chain of four stage kernels that the public kernel calls, so each stage is its own
function (a dataflow stage for HLS) and the Linformer reuses three of them:

- ``attention_qkv``: q, k, v projections, torch Linear layout (``y = x W^T + b``);
- ``linformer_seq_proj`` (Linformer only): ``k' = E k``, ``v' = F v`` over the sequence axis;
- ``attention_heads``: per batch, head and query row, ``softmax(q k^T / sqrt(D)) v`` with the
  row max subtracted before ``exp``; head ``h`` owns channels ``h*D .. h*D+D-1`` as in torch;
- ``attention_out``: the output projection with its bias.

The stages carry the ``attention`` registry tag, so ``apply_schedules`` schedules each of them
with ``_schedule_attention``, whose rules are keyed by loop name.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import functools
import math

import numpy as np

from ...lang import exp, grid, table
from ..registry import kernel, schedule_of
from .shape import KernelArgumentError, check_shape, schedule_latency

__all__ = ["attention", "linformer_attention", "attention_lanes"]


def _check_heads(kname, B, L, C, H):
    check_shape(kname, (B, L, C, H), "(B, L, C, H)")
    if C % H:
        raise KernelArgumentError(f"{kname}: C={C} channels cannot be split into H={H} heads "
                                  f"(C % H must be 0; head dim D = C / H)")


def _stage(fn):
    fn.__allo_kernel__ = "attention"
    return fn


# ---------------------------------------------------------------------------------------------- stages
@functools.lru_cache(maxsize=None)
def _qkv(T, B, L, C):
    def attention_qkv(X: T[B, L, C], Wq: T[C, C], Wk: T[C, C], Wv: T[C, C], bq: T[C], bk: T[C],
                      bv: T[C]) -> (T[B, L, C], T[B, L, C], T[B, L, C]):
        Q: T[B, L, C]
        K: T[B, L, C]
        V: T[B, L, C]
        for b, l, o in grid(B, L, C, name="qkv"):
            aq: T = bq[o]
            ak: T = bk[o]
            av: T = bv[o]
            for c in range(C, name="qkv_red"):
                aq += X[b, l, c] * Wq[o, c]
                ak += X[b, l, c] * Wk[o, c]
                av += X[b, l, c] * Wv[o, c]
            Q[b, l, o] = aq
            K[b, l, o] = ak
            V[b, l, o] = av
        return Q, K, V

    return _stage(attention_qkv)


@functools.lru_cache(maxsize=None)
def _seq_proj(T, B, L, C, S):
    def linformer_seq_proj(K: T[B, L, C], V: T[B, L, C], E: T[S, L], F: T[S, L]) -> (T[B, S, C], T[B, S, C]):
        Kp: T[B, S, C]
        Vp: T[B, S, C]
        for b, s, c in grid(B, S, C, name="sp"):
            ak: T = 0.0
            av: T = 0.0
            for l in range(L, name="sp_red"):
                ak += E[s, l] * K[b, l, c]
                av += F[s, l] * V[b, l, c]
            Kp[b, s, c] = ak
            Vp[b, s, c] = av
        return Kp, Vp

    return _stage(linformer_seq_proj)


@functools.lru_cache(maxsize=None)
def _heads(T, B, L, S, C, H):
    if T.is_fixed:
        return _heads_fixed(T, B, L, S, C, H)
    D = C // H
    scale = 1.0 / math.sqrt(D)

    def attention_heads(Q: T[B, L, C], K: T[B, S, C], V: T[B, S, C]) -> T[B, L, C]:
        O: T[B, L, C]
        P: T[S]
        for b, h, l in grid(B, H, L, name="attn"):
            mx: T = float("-inf")
            for m in range(S, name="score"):
                acc: T = 0.0
                for d in range(D, name="qk"):
                    acc += Q[b, l, h * D + d] * K[b, m, h * D + d]
                sc: T = acc * scale
                P[m] = sc
                mx = max(mx, sc)
            tot: T = 0.0
            for m in range(S, name="softmax"):
                e: T = exp(P[m] - mx)
                P[m] = e
                tot += e
            for m in range(S, name="norm"):
                P[m] = P[m] / tot
            for d in range(D, name="pv"):
                pv: T = 0.0
                for m in range(S, name="pv_red"):
                    pv += P[m] * V[b, m, h * D + d]
                O[b, l, h * D + d] = pv
        return O

    return _stage(attention_heads)


@functools.lru_cache(maxsize=None)
def _heads_fixed(T, B, L, S, C, H):
    """Fixed point has no ``exp``: the scores of every head go through the table-based softmax kernel
    (``fixed_softmax.py``: max subtraction, exp and 1/x tables sized from T), so the attention has the
    same numbers as a torch model's softmax compiled at T, and an integer form for llvm and rtl.
    Scores -> softmax -> P V are three calls inside this stage; ``scale`` is a constant of T."""
    from .activation import softmax

    D = C // H
    scale = 1.0 / math.sqrt(D)
    sm = softmax(T, (B, H, L, S))

    def attention_scores(Q: T[B, L, C], K: T[B, S, C]) -> T[B, H, L, S]:
        Sc: T[B, H, L, S]
        for b, h, l, m in grid(B, H, L, S, name="score"):
            acc: T = 0.0
            for d in range(D, name="qk"):
                acc += Q[b, l, h * D + d] * K[b, m, h * D + d]
            Sc[b, h, l, m] = acc * T(scale)
        return Sc

    def attention_pv(P: T[B, H, L, S], V: T[B, S, C]) -> T[B, L, C]:
        O: T[B, L, C]
        for b, h, l, d in grid(B, H, L, D, name="pv"):
            pv: T = 0.0
            for m in range(S, name="pv_red"):
                pv += P[b, h, l, m] * V[b, m, h * D + d]
            O[b, l, h * D + d] = pv
        return O

    scores, mix = _stage(attention_scores), _stage(attention_pv)

    def attention_heads(Q: T[B, L, C], K: T[B, S, C], V: T[B, S, C]) -> T[B, L, C]:
        P = sm(scores(Q, K))
        O = mix(P, V)
        return O

    return _stage(attention_heads)


def _zeros(T, C):
    """Zero q/k/v biases as a constant of T (a float64 array would not match a fixed-point signature)."""
    return table(np.zeros(C), T) if T.is_fixed else np.zeros(C, dtype=T.numpy)


@functools.lru_cache(maxsize=None)
def _out(T, B, L, C):
    def attention_out(O: T[B, L, C], Wo: T[C, C], bo: T[C]) -> T[B, L, C]:
        Z: T[B, L, C]
        for b, l, o in grid(B, L, C, name="out"):
            acc: T = bo[o]
            for c in range(C, name="out_red"):
                acc += O[b, l, c] * Wo[o, c]
            Z[b, l, o] = acc
        return Z

    return _stage(attention_out)


# ---------------------------------------------------------------------------------------------- kernels
@kernel()
def attention(T, B, L, C, H, qkv_bias=False):
    _check_heads("attention", B, L, C, H)
    return _attention(T, B, L, C, H, bool(qkv_bias))


@functools.lru_cache(maxsize=None)
def _attention(T, B, L, C, H, qkv_bias):
    qkv, heads, out = _qkv(T, B, L, C), _heads(T, B, L, L, C, H), _out(T, B, L, C)
    if qkv_bias:
        def attention(X: T[B, L, C], Wq: T[C, C], Wk: T[C, C], Wv: T[C, C], bq: T[C], bk: T[C], bv: T[C],
                      Wo: T[C, C], bo: T[C]) -> T[B, L, C]:
            Q, K, V = qkv(X, Wq, Wk, Wv, bq, bk, bv)
            O = heads(Q, K, V)
            Z = out(O, Wo, bo)
            return Z
    else:
        # Zero biases as a constant: the accumulators start from them instead of 0.0, at no extra cost.
        zero = _zeros(T, C)

        def attention(X: T[B, L, C], Wq: T[C, C], Wk: T[C, C], Wv: T[C, C], Wo: T[C, C], bo: T[C]) -> T[B, L, C]:
            Q, K, V = qkv(X, Wq, Wk, Wv, zero, zero, zero)
            O = heads(Q, K, V)
            Z = out(O, Wo, bo)
            return Z

    return attention


@kernel()
def linformer_attention(T, B, L, C, H, K):
    _check_heads("linformer_attention", B, L, C, H)
    check_shape("linformer_attention", (K,), "K")
    return _linformer(T, B, L, C, H, K)


@functools.lru_cache(maxsize=None)
def _linformer(T, B, L, C, H, S):
    qkv, proj, heads, out = _qkv(T, B, L, C), _seq_proj(T, B, L, C, S), _heads(T, B, L, S, C, H), _out(T, B, L, C)
    zero = _zeros(T, C)

    def linformer_attention(X: T[B, L, C], Wq: T[C, C], Wk: T[C, C], Wv: T[C, C], E: T[S, L], F: T[S, L],
                            Wo: T[C, C], bo: T[C]) -> T[B, L, C]:
        Q, K, V = qkv(X, Wq, Wk, Wv, zero, zero, zero)
        Kp, Vp = proj(K, V, E, F)
        O = heads(Q, Kp, Vp)
        Z = out(O, Wo, bo)
        return Z

    return linformer_attention


LANES = 8  # float32 vector lanes on the CPU (VECTORIZE in backends/llvm.py)


@kernel()
def attention_lanes(T, B, L, S, C, H, scale):
    """The CPU form of the heads stage, ``softmax(q k^T * scale) v`` per jet and head (a model's
    ``/ c`` comes as ``scale = 1 / c``, exact for JetFormer's c = 2): ``Q: (B, L, C)``, ``K, V: (B, S, C)``
    with head ``h`` owning channels ``h*D .. h*D+D-1`` (torch's ``view(B, L, H, D).transpose(1, 2)``),
    out ``(B, L, C)`` (the inverse). ``LANES`` jets run side by side, one per vector lane: each
    group's q, k and v are copied to lane-major scratch once (scalar copies), every product,
    the softmax (row max subtracted; ``exp`` a vector polynomial on the CPU, ``vector_exp.py``)
    and the mix with v run on lane vectors, and the result is copied back. This replaces the
    transposes, two bmm, the scale and the softmax kernels of the unfused chain: JetFormer's 9x4
    heads give those kernels no vector width of their own, and their copies were most of the cost.
    Each score sums over d in order; the probabilities are ``e * (1 / sum)`` (<= 1 ulp from
    ``e / sum``). ``B`` must be a multiple of ``LANES``; float only."""
    _check_heads("attention_lanes", B, L, C, H)
    check_shape("attention_lanes", (S,), "S")
    if T.is_fixed:
        raise KernelArgumentError(f"attention_lanes: {T} is fixed point; the fixed-point heads stage is attention's")
    if B % LANES:
        raise KernelArgumentError(f"attention_lanes: B={B} jets is not a multiple of {LANES} lanes")
    G, N, D = B // LANES, LANES, C // H
    mult = float(np.float32(scale))

    def attention_lanes(Q: T[B, L, C], K: T[B, S, C], V: T[B, S, C]) -> T[B, L, C]:
        O: T[B, L, C]
        QT: T[L, C, N]
        KT: T[S, C, N]
        VT: T[S, C, N]
        OT: T[L, C, N]
        P: T[S, N]
        m: T[N]
        tot: T[N]
        inv: T[N]
        for g in range(G, name="grp"):
            for n in range(N, name="ldq"):
                for i in range(L, name="ldq_i"):
                    for c in range(C, name="ldq_c"):
                        QT[i, c, n] = Q[g * N + n, i, c]
            for n2 in range(N, name="ldkv"):
                for j in range(S, name="ldkv_j"):
                    for c2 in range(C, name="ldkv_c"):
                        KT[j, c2, n2] = K[g * N + n2, j, c2]
                        VT[j, c2, n2] = V[g * N + n2, j, c2]
            for h in range(H, name="head"):
                for i2 in range(L, name="row"):
                    for n3 in range(N, name="init"):
                        m[n3] = float("-inf")
                        tot[n3] = 0.0
                    for j2 in range(S, name="score"):
                        for n4 in range(N, name="zero"):
                            P[j2, n4] = 0.0
                        for d in range(D, name="qk"):
                            for n5 in range(N, name="qk_n"):
                                P[j2, n5] += QT[i2, h * D + d, n5] * KT[j2, h * D + d, n5]
                        for n6 in range(N, name="scale"):
                            P[j2, n6] = P[j2, n6] * mult
                            m[n6] = max(m[n6], P[j2, n6])
                    for j3 in range(S, name="exp"):
                        for n7 in range(N, name="exp_n"):
                            e: T = exp(P[j3, n7] - m[n7])
                            P[j3, n7] = e
                            tot[n7] += e
                    for n8 in range(N, name="inv"):
                        inv[n8] = 1.0 / tot[n8]
                    for j4 in range(S, name="norm"):
                        for n9 in range(N, name="norm_n"):
                            P[j4, n9] = P[j4, n9] * inv[n9]
                    for d2 in range(D, name="pv"):
                        for n10 in range(N, name="pv_zero"):
                            OT[i2, h * D + d2, n10] = 0.0
                        for j5 in range(S, name="pv_red"):
                            for n11 in range(N, name="pv_n"):
                                OT[i2, h * D + d2, n11] += P[j5, n11] * VT[j5, h * D + d2, n11]
            for n12 in range(N, name="st"):
                for i3 in range(L, name="st_i"):
                    for c3 in range(C, name="st_c"):
                        O[g * N + n12, i3, c3] = OT[i3, c3, n12]
        return O

    return attention_lanes


# ---------------------------------------------------------------------------------------------- schedule
_REDUCTIONS = ("qkv_red.c", "sp_red.l", "qk.d", "pv_red.m", "out_red.c")
_ELEMENTWISE = ("softmax.m", "norm.m")


@schedule_of(attention)
def _schedule_attention(s, fn, profile):
    """default: rules by loop name, so one schedule serves every stage (and the wrappers, which have no
    loops): pipeline the reductions and the elementwise softmax loops. latency: ``schedule_latency``, and
    the wrappers become dataflow regions, so that back-to-back calls overlap their stages (each stage is
    called once, so this costs no extra hardware)."""
    if profile == "latency":
        schedule_latency(s, fn)
        if not s.get_loops(fn):
            s.dataflow(fn)
        return
    loops = s.get_loops(fn)
    for loop in _REDUCTIONS + _ELEMENTWISE:
        if loop in loops:
            s.pipeline(f"{fn}:{loop}")


schedule_of(linformer_attention)(_schedule_attention)
