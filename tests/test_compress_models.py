"""allo_ext.compress: pruning (compiles and matches), the paper's size accounting (by hand),
1-bit QAT (bitlinear kernel, csim against torch), particle orderings, explain."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from allo_ext.cli import app
from allo_ext.compress.data import load_jets
from allo_ext.compress.explain import attention_by_class, class_embeddings
from allo_ext.compress.ordering import fixed_projection, order_particles, set_fixed_projections
from allo_ext.compress.prune import PruneConfig, load_pruned, prune, save_pruned, widths
from allo_ext.compress.quantize import check_compiled, qat_config, quantize_report
from allo_ext.compress.size import size_kb, size_report
from allo_ext.models import BitJetFormer, JetFormer, LinformerJetFormer, count
from allo_ext.train.schedules import make_scheduler

from allo_ext.data import make_jets_array, write

runner = CliRunner()


def write_jets(path, n: int, n_part: int = 8, seed: int = 0):
    g = np.random.default_rng(seed)
    y = g.integers(0, 5, size=n)
    cons = g.normal(size=(n, n_part, 16)).astype(np.float32)
    cons[:, :, 6] += 0.8 * y[:, None]  # pT_rel carries the class
    write(path, cons, make_jets_array(y))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("compress")
    return {"train": write_jets(d / "train.h5", 400, seed=0), "test": write_jets(d / "test.h5", 120, seed=1),
            "dir": d}


# ----------------------------------------------------------------------------------- size
def test_size_by_hand_c8():
    # 1 block, C=8, 2 heads, 8 x 3. Parameters: embed 3*8+8, class token 8, norm_attn 16,
    # q/k/v 3*64, out 64+8, ffn norm_0 16, linear_0 128, norm_1 32, linear_1 128, head_norm 16,
    # head 40+5 = 685; buffers (mean, var, counter): 17 + 17 + 33 + 17 = 84.
    m = BitJetFormer.tiny(n_blocks=1, dim=8, n_heads=2)
    assert size_kb(m) == (685 + 84) * 4 / 1024
    # 1-bit: q/k/v/out 64 weights -> 8 bytes each, linear_0/1 128 -> 16 bytes each, out's bias
    # dropped; the other 769 - 4*64 - 8 - 2*128 = 249 numbers stay at 4 bytes.
    assert size_kb(m, one_bit=True) == (4 * 8 + 2 * 16 + 249 * 4) / 1024


def test_size_by_hand_rounds_bytes_up():
    # C=6: q/k/v/out are 36 weights -> ceil(36/8) = 5 bytes; linear_0/1 72 -> 9 bytes.
    # Others: embed 24, cls 6, norm_attn 12, norm_0 12, norm_1 24, head_norm 12, head 35
    # = 125 parameters, buffers 13 + 13 + 25 + 13 = 64.
    m = BitJetFormer.tiny(n_blocks=1, dim=6, n_heads=2)
    assert size_kb(m, one_bit=True) == (4 * 5 + 2 * 9 + (125 + 64) * 4) / 1024
    assert size_kb(m) == (125 + 6 + 4 * 36 + 2 * 72 + 64) * 4 / 1024


def test_size_matches_the_issue_targets_for_3_64_2():
    r = size_report(BitJetFormer.tiny(n_blocks=3, dim=64, n_heads=2))
    assert round(r["full_precision_kb"], 2) == 400.31
    assert round(r["one_bit_kb"], 2) == 27.56


def test_qat_schedule_is_plateau_08_5_min_1e4():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = make_scheduler(opt, qat_config(10), steps_per_epoch=3)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (sched.factor, sched.patience, sched.min_lrs) == (0.8, 5, [1e-4])
    for _ in range(200):  # never improving: the lr decays to the floor and stays there
        sched.step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)


# ------------------------------------------------------------------------------- quantize
@pytest.mark.csim
def test_trained_bitjetformer_compiles_with_bitlinear_and_matches_torch(files):
    from allo_ext.compress.quantize import train_bitjetformer

    cfg = qat_config(1, progress=False)
    cfg.save_plots = False
    r = train_bitjetformer(files["train"], files["dir"] / "qat", n_blocks=1, dim=8, n_heads=2, config=cfg)
    assert isinstance(r.model, BitJetFormer)
    x, _ = r.bundle.load_data(files["test"], n=64)
    rep = quantize_report(r.model, x)
    assert rep["bitlinear_calls"] == 6  # q, k, v, out, linear_0, linear_1
    for backend in ("llvm", "csim"):
        assert rep["compiled"][backend]["max_abs_err"] < 1e-4, rep["compiled"]
        assert rep["compiled"][backend]["argmax_agree"] == 1.0


# ---------------------------------------------------------------------------------- prune
@pytest.mark.csim
def test_pruning_reduces_flops_keeps_heads_and_compiles(files, tmp_path):
    data = load_jets(files["train"], files["test"])
    torch.manual_seed(0)
    model = JetFormer.tiny(n_blocks=2)
    cls_before = model.cls_token.detach().clone()
    model, rep = prune(model, data, PruneConfig(ratio=0.5, steps=2, finetune_epochs=0), progress=False,
                       log=lambda _: None)
    # Uniform 50% of the attention and FFN widths: the paper's -47% FLOPs for this shape family.
    assert rep["after"]["flops"] < 0.6 * rep["before"]["flops"]
    assert rep["after"]["flops"] == count(model, 8, 3)["flops"]
    for w in widths(model):
        assert w["heads"] == 2 and w["head_dim"] == 2 and w["ffn"] == 8
    # Class token, embedding width and the 5-way head are untouched.
    assert torch.equal(model.cls_token.detach(), cls_before)
    assert model.head.weight.shape == (5, 8) and model.embed.out_features == 8
    x = data.x_test[:48]
    res = check_compiled(model, x)
    for backend in ("llvm", "csim"):
        assert res[backend]["max_abs_err"] < 1e-5, res
        assert res[backend]["argmax_agree"] == 1.0
    # Save and reload: same outputs.
    from allo_ext.bundle import ModelBundle

    bundle = ModelBundle.for_model(JetFormer.tiny(n_blocks=2), data.features, 8, data.normaliser)
    save_pruned(model, bundle, tmp_path / "p.pt")
    again, _ = load_pruned(tmp_path / "p.pt")
    with torch.no_grad():
        torch.testing.assert_close(again(torch.from_numpy(x)), model.eval()(torch.from_numpy(x)), rtol=0, atol=0)


def test_head_dim_rescale_keeps_the_function():
    """Narrowing heads without the q rescale would change the softmax temperature; with it, the
    pruned model equals the original with the removed channels zeroed."""
    from allo_ext.compress.prune import _fix_heads

    torch.manual_seed(1)
    m = JetFormer.tiny(n_blocks=1).eval()
    x = torch.randn(16, 8, 3)
    attn = m.blocks[0].attn
    keep = torch.tensor([0, 1, 4, 5])  # two dims of each of the 2 heads (head_dim 4)
    ref = JetFormer.tiny(n_blocks=1).eval()
    ref.load_state_dict(m.state_dict())
    drop = torch.tensor([2, 3, 6, 7])
    with torch.no_grad():
        for lin in (ref.blocks[0].attn.q, ref.blocks[0].attn.k, ref.blocks[0].attn.v):
            lin.weight[drop] = 0.0
        for name in ("q", "k", "v"):
            old = getattr(attn, name)
            new = torch.nn.Linear(8, 4, bias=False)
            new.weight.copy_(old.weight[keep])
            setattr(attn, name, new)
        out = torch.nn.Linear(4, 8)
        out.weight.copy_(attn.out.weight[:, keep])
        out.bias.copy_(attn.out.bias)
        attn.out = out
    _fix_heads(m)
    assert attn.head_dim == 2
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------- ordering
def test_orderings():
    feats = ("pT_rel", "eta_rel", "phi_rel")
    x = np.zeros((1, 4, 3), np.float32)
    x[0, :3] = [[0.5, 0.1, 0.0], [0.3, 0.0, 0.5], [0.1, 0.3, 0.4]]  # pt * dR: 0.05, 0.15, 0.05
    kt = order_particles(x, feats, "kt")
    np.testing.assert_array_equal(kt[0, 0], x[0, 1])
    assert not kt[0, 3].any()  # padding stays last
    rnd = order_particles(x, feats, "random", seed=3)
    assert not rnd[0, 3].any()
    assert sorted(map(tuple, rnd[0, :3])) == sorted(map(tuple, x[0, :3]))
    assert order_particles(x, feats, "pt") is x
    with pytest.raises(ValueError, match="unknown particle ordering"):
        order_particles(x, feats, "eta")


@pytest.mark.parametrize("kind", ["leading", "pool"])
def test_fixed_projections_average_tokens(kind):
    p = fixed_projection(kind, 9, 4)
    assert p.shape == (4, 9)
    torch.testing.assert_close(p.sum(1), torch.ones(4))
    assert p[0, 0] == 1 and p[0, 1:].abs().sum() == 0  # class token row
    m = LinformerJetFormer.tiny()
    assert set_fixed_projections(m, kind) == 4
    e = m.blocks[0].attn.e_proj.weight
    assert not e.requires_grad and torch.equal(e, p)


# -------------------------------------------------------------------------------- explain
def test_attention_by_class_is_the_per_class_mean():
    torch.manual_seed(0)
    m = JetFormer.tiny(n_blocks=2).eval()
    x = np.random.default_rng(0).normal(size=(30, 8, 3)).astype(np.float32)
    y = np.array([0, 1, 2] * 10)
    maps = attention_by_class(m, x, y, n_classes=5, batch_size=7)
    assert maps.shape == (2, 5, 2, 9, 9)
    with torch.no_grad():
        direct = m.attention_maps(torch.from_numpy(x[y == 1]))[1].mean(0).numpy()
    np.testing.assert_allclose(maps[1, 1], direct, rtol=1e-5, atol=1e-6)
    assert np.isnan(maps[:, 4]).all()  # a class with no jets has no mean
    emb = class_embeddings(m, x)
    assert emb.shape == (30, 8)


def test_explain_cli_writes_plots(files, tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(files["train"]), "--out", str(run), "--epochs", "1",
                            "--config", "n_blocks=2", "--no-progress"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "explain"
    r = runner.invoke(app, ["explain", str(run), "--data", str(files["test"]), "--n", "100", "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in ("attention_block0.png", "attention_block1.png", "embeddings_pca.png", "explain.npz"):
        assert (out / name).stat().st_size > 1000
    # Never writes into a directory allo-ext did not write without --force, and says so in one line.
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    r = runner.invoke(app, ["explain", str(run), "--data", str(files["test"]), "--out", str(foreign)])
    assert r.exit_code == 1 and "--force" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
