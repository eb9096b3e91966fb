"""Jet generation: hand-computed features, truth matching, and Pythia8 + FastJet runs."""
import hashlib
import importlib.util
import math
import sys

import h5py
import numpy as np
import pytest

from allo_ext.data import CLASS_NAMES, FEATURE_NAMES, load
from allo_ext.data import generate as gen_mod
from allo_ext.data.generate import GeneratorsMissingError, generate
from allo_ext.data.jet_features import constituent_features
from allo_ext.data.truth import is_matched, last_copy, truth_objects

COL = {n: i for i, n in enumerate(FEATURE_NAMES)}


# ---- features and truth matching, no generator needed -------------------------------------

def test_features_of_a_two_particle_jet_by_hand():
    # p1 = 100 GeV along x, p2 = 50 GeV along y, both massless and at eta = 0.
    p4 = np.array([[0.0, 50.0, 0.0, 50.0], [100.0, 0.0, 0.0, 100.0]])
    feats, jet = constituent_features(p4, n_particles=4)
    jet_pt = math.sqrt(100**2 + 50**2)
    jet_phi = math.atan2(50, 100)
    assert jet["pt"] == pytest.approx(jet_pt)
    assert jet["mass"] == pytest.approx(100.0)  # sqrt(150^2 - 100^2 - 50^2)
    assert jet["eta"] == pytest.approx(0.0)
    hard, soft = feats[0], feats[1]  # sorted by pT: p1 first
    assert hard[COL["pT"]] == pytest.approx(100) and soft[COL["pT"]] == pytest.approx(50)
    assert hard[COL["pT_rel"]] == pytest.approx(100 / jet_pt)
    assert soft[COL["E_rel"]] == pytest.approx(50 / 150)
    assert hard[COL["phi_rel"]] == pytest.approx(-jet_phi)
    assert soft[COL["phi_rel"]] == pytest.approx(math.pi / 2 - jet_phi)
    assert soft[COL["phi"]] == pytest.approx(math.pi / 2)
    assert hard[COL["eta_rel"]] == pytest.approx(0, abs=1e-7)
    assert soft[COL["deltaR"]] == pytest.approx(math.pi / 2 - jet_phi)
    assert hard[COL["costheta"]] == pytest.approx(0, abs=1e-7)
    assert hard[COL["costheta_rel"]] == pytest.approx(100 / jet_pt)  # p1.P / (|p1||P|)
    assert soft[COL["costheta_rel"]] == pytest.approx(50 / jet_pt)
    # Spread only along phi, so the principal axis is phi: eta_rot = phi_rel, phi_rot = 0.
    assert hard[COL["eta_rot"]] == pytest.approx(-jet_phi)
    assert soft[COL["eta_rot"]] == pytest.approx(math.pi / 2 - jet_phi)
    assert hard[COL["phi_rot"]] == pytest.approx(0, abs=1e-7)
    assert np.all(feats[2:] == 0)


def test_phi_wraps_across_pi():
    # Two particles at phi = +-(pi - 0.1): the jet is at phi = pi, each 0.1 away.
    a = math.pi - 0.1
    p4 = np.array([[10 * math.cos(a), 10 * math.sin(a), 0, 10],
                   [10 * math.cos(a), -10 * math.sin(a), 0, 10]])
    feats, _ = constituent_features(p4, n_particles=2)
    assert sorted(abs(feats[:, COL["phi_rel"]])) == pytest.approx([0.1, 0.1], abs=1e-6)


def _record(rows):
    """Event record from (id, status, d1, d2, px, py, pz) rows."""
    arr = np.array(rows, dtype=np.float64)
    return {"id": arr[:, 0].astype(int), "status": arr[:, 1].astype(int),
            "d1": arr[:, 2].astype(int), "d2": arr[:, 3].astype(int),
            "px": arr[:, 4], "py": arr[:, 5], "pz": arr[:, 6]}


def test_truth_follows_w_to_its_last_copy():
    rec = _record([
        (90, -11, 0, 0, 0, 0, 0),       # 0 system
        (24, -22, 2, 2, 0, 500, 0),     # 1 hard-process W, pointing along +y
        (24, -44, 3, 4, 0, 500, 0),     # 2 recoil copy, then W -> W gamma
        (24, -51, 5, 6, 500, 0, 0),     # 3 last copy: now along +x
        (22, 51, 0, 0, 0, 1, 0),        # 4 photon
        (1, -23, 0, 0, 250, 20, 0),     # 5 quark
        (-2, -23, 0, 0, 250, -20, 0),   # 6 antiquark
    ])
    assert last_copy(1, rec["id"], rec["d1"], rec["d2"]) == 3
    cands = truth_objects("W", rec)
    assert len(cands) == 1
    (w_eta, w_phi), q1, q2 = cands[0]
    assert w_phi == pytest.approx(0.0)  # the last copy's direction, not the first one's
    assert q1[1] == pytest.approx(math.atan2(20, 250))
    assert is_matched(0.0, 0.0, cands)
    assert not is_matched(0.0, math.pi / 2, cands)  # the first copy's direction does not match
    assert truth_objects("Z", rec) == [] and truth_objects("t", rec) == []


def test_truth_requires_every_top_decay_quark_inside():
    rec = _record([
        (90, -11, 0, 0, 0, 0, 0),
        (6, -22, 2, 3, 1000, 0, 0),     # 1 top -> W b
        (24, -22, 4, 5, 700, 0, 0),     # 2 W -> q q'
        (5, -23, 0, 0, 300, 100, 0),    # 3 b at phi ~ 0.32
        (2, -23, 0, 0, 350, -50, 0),    # 4
        (-1, -23, 0, 0, 350, 0, 350),   # 5 at eta ~ 0.88
    ])
    cands = truth_objects("t", rec)
    assert len(cands) == 1 and len(cands[0]) == 4
    assert not is_matched(0.0, 0.0, cands)  # quark 5 is 0.88 away in eta
    assert is_matched(0.3, 0.0, cands)


def test_light_quark_truth_excludes_charm_and_gluons():
    rec = _record([
        (90, -11, 0, 0, 0, 0, 0),
        (21, -23, 0, 0, 100, 0, 0),
        (4, -23, 0, 0, -100, 0, 0),
        (3, -23, 0, 0, 0, 100, 0),
    ])
    assert len(truth_objects("g", rec)) == 1
    (q,), = truth_objects("q", rec)
    assert q[1] == pytest.approx(math.pi / 2)


def test_missing_extra_error_names_extra_and_pins(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # makes `import pythia8mc` fail
    with pytest.raises(GeneratorsMissingError) as e:
        generate(5, tmp_path / "x.h5", use_cache=False, progress=False)
    msg = str(e.value)
    assert "allo-ext[generate]" in msg and "pythia8mc==8.317.2" in msg
    assert "fastjet==3.5.2.0" in msg
    assert isinstance(e.value, ImportError)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown or no classes.*'b'"):
        generate(5, "x.h5", classes=("W", "b"), use_cache=False)
    with pytest.raises(ValueError, match="n_jets must be >= 1"):
        generate(0, "x.h5", use_cache=False)


# ---- real generation ----------------------------------------------------------------------

# A skip, not a failure: the GPL generators are an optional extra (`make install` has them).
needs_generators = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("pythia8mc", "fastjet")),
    reason="needs the optional extra: pip install 'allo-ext[generate]'")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two jets per class, in process and with two workers, same seed."""
    d = tmp_path_factory.mktemp("gen")
    one = generate(10, d / "one.h5", seed=11, mpi=False, workers=1, use_cache=False,
                   progress=False)
    two = generate(10, d / "two.h5", seed=11, mpi=False, workers=2, use_cache=False,
                   progress=False)
    return one, two


@needs_generators
def test_shapes_labels_and_kinematics(small):
    path, _ = small
    with h5py.File(path) as f:
        cons, jets = f["jetConstituentList"][:], f["jets"][:]
        assert f.attrs["mpi"] == False  # noqa: E712 (numpy bool)
    assert cons.shape == (10, 150, 16) and jets.shape == (10, 59)
    labels = jets[:, -6:-1]
    assert np.all(labels.sum(axis=1) == 1)
    assert labels.sum(axis=0).tolist() == [2, 2, 2, 2, 2]
    assert np.all(jets[:, -1] == 0)
    x, y = load(path)
    assert np.bincount(y).tolist() == [2, 2, 2, 2, 2]
    pt, eta, mass, mult = jets[:, 1], jets[:, 2], jets[:, 3], jets[:, 52]
    assert np.all((pt >= 800) & (pt <= 1200)) and np.all(np.abs(eta) < 2) and np.all(mass > 0)
    for c, j in zip(cons, jets):
        n = int(np.count_nonzero(c[:, COL["E"]]))
        assert n == min(int(j[52]), 150) and np.all(c[n:] == 0)
        p_t = c[:n, COL["pT"]]
        assert np.all(np.diff(p_t) <= 0)  # sorted by pT
        np.testing.assert_allclose(p_t, np.hypot(c[:n, 0], c[:n, 1]), rtol=1e-4)
        np.testing.assert_allclose(c[:n, COL["pT_rel"]], p_t / j[1], rtol=1e-4)
        assert np.all(c[:n, COL["E"]] > 1e-3)
        if j[52] <= 150:  # all constituents stored: the jet is their sum
            s = c[:n, :4].astype(np.float64).sum(axis=0)
            assert math.hypot(s[0], s[1]) == pytest.approx(j[1], rel=1e-4)
            assert math.sqrt(max(s[3]**2 - s[0]**2 - s[1]**2 - s[2]**2, 0)) == pytest.approx(
                j[3], rel=1e-3, abs=0.05)
    assert x.shape == (10, 150, 3)


@needs_generators
def test_same_seed_identical_whatever_the_workers(small, tmp_path):
    one, two = small
    assert _sha(one) == _sha(two)
    other = generate(10, tmp_path / "other.h5", seed=12, mpi=False, workers=1, use_cache=False,
                     progress=False)
    assert not np.array_equal(load(other)[0], load(one)[0])


@needs_generators
def test_cache_serves_a_repeated_request(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = generate(5, None, classes=("W",), seed=2, mpi=False, workers=1, cache_dir=cache,
                     progress=False)
    assert first.parent == cache and first.exists()

    def refuse(*a, **k):
        raise AssertionError("regenerated a cached request")

    monkeypatch.setattr(gen_mod, "_run_all", refuse)
    out = generate(5, tmp_path / "copy.h5", classes=("W",), seed=2, mpi=False, cache_dir=cache,
                   progress=False)
    assert _sha(out) == _sha(first)
    with pytest.raises(AssertionError, match="regenerated"):  # a different seed is not cached
        generate(5, None, classes=("W",), seed=3, mpi=False, cache_dir=cache, progress=False)


@pytest.mark.slow
@needs_generators
def test_mass_peaks_and_multiplicity_per_class(tmp_path):
    """400 jets, MPI off (~4 s on 2 idle cores): the labels carry the expected physics."""
    path = generate(400, tmp_path / "phys.h5", seed=5, mpi=False, workers=2, use_cache=False,
                    progress=False)
    with h5py.File(path) as f:
        jets = f["jets"][:]
    y = jets[:, -6:-1].argmax(axis=1)
    mass = {c: jets[y == i, 3] for i, c in enumerate(CLASS_NAMES)}
    mult = {c: jets[y == i, 52] for i, c in enumerate(CLASS_NAMES)}
    med = {c: float(np.median(m)) for c, m in mass.items()}
    assert all(len(m) == 80 for m in mass.values())
    # Pythia truth masses 80.4 (W), 91.2 (Z), 172.5 (t); jets add radiation on top.
    assert 72 < med["W"] < 92, med
    assert 84 < med["Z"] < 102, med
    assert 160 < med["t"] < 200, med
    assert med["W"] < med["Z"] < med["t"]
    assert np.mean((mass["W"] > 65) & (mass["W"] < 100)) > 0.6
    assert np.mean((mass["t"] > 140) & (mass["t"] < 210)) > 0.6
    # Gluon jets radiate more than quark jets (colour factor 3 vs 4/3).
    assert mult["g"].mean() > 1.3 * mult["q"].mean(), (mult["g"].mean(), mult["q"].mean())


@needs_generators
@pytest.mark.parametrize("how", ["bitflip", "truncate", "swap"])
def test_a_damaged_cache_entry_is_regenerated(tmp_path, how):
    """The jet cache keeps a SHA-256 beside each entry: a damaged entry is regenerated, never served."""
    cache = tmp_path / "cache"
    first = generate(5, None, classes=("W",), seed=2, mpi=False, workers=1, cache_dir=cache, progress=False)
    good = _sha(first)
    other = generate(5, None, classes=("W",), seed=4, mpi=False, workers=1, cache_dir=cache, progress=False)
    data = bytearray(first.read_bytes())
    if how == "bitflip":
        data[len(data) // 2] ^= 0x01
        first.write_bytes(bytes(data))
    elif how == "truncate":
        first.write_bytes(bytes(data[: len(data) // 2]))
    else:
        first.write_bytes(other.read_bytes())
    out = generate(5, tmp_path / "copy.h5", classes=("W",), seed=2, mpi=False, workers=1, cache_dir=cache,
                   progress=False)
    assert _sha(out) == good and _sha(first) == good
