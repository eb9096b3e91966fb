"""The hls4ml jet format: write/read round trip, lazy reading, normalisation, split, errors."""
import json

import h5py
import numpy as np
import pytest

from allo_ext.data import (
    FEATURE_NAMES,
    JetFiles,
    JetFormatError,
    Normaliser,
    iter_chunks,
    load,
    load_split,
    make_jets_array,
    split_indices,
    write,
)

# Positions written out by hand from the published feature order:
# px py pz E E_rel pT pT_rel eta eta_rel eta_rot phi phi_rel phi_rot deltaR costheta costheta_rel
PT_REL, ETA_REL, PHI_REL = 6, 8, 11


def fake_jets(n, seed, n_particles=150, min_real=3):
    """Random constituents with a zero-padded tail of random length, and random labels."""
    rng = np.random.default_rng(seed)
    cons = rng.normal(size=(n, n_particles, 16)).astype(np.float32)
    n_real = rng.integers(min_real, n_particles + 1, size=n)
    for i, k in enumerate(n_real):
        cons[i, k:] = 0.0
    labels = rng.integers(0, 5, size=n)
    jets = np.zeros((n, 59), np.float32)
    jets[:, :53] = rng.normal(size=(n, 53))
    jets[np.arange(n), 53 + labels] = 1.0
    return cons, jets, labels


@pytest.fixture
def one_file(tmp_path):
    cons, jets, labels = fake_jets(20, seed=1)
    path = write(tmp_path / "a.h5", cons, jets)
    return path, cons, jets, labels


def test_feature_names_in_published_order():
    assert FEATURE_NAMES == ("px", "py", "pz", "E", "E_rel", "pT", "pT_rel", "eta", "eta_rel",
                             "eta_rot", "phi", "phi_rel", "phi_rot", "deltaR", "costheta",
                             "costheta_rel")


def test_round_trip_all_features(one_file):
    path, cons, jets, labels = one_file
    x, y = load(path, features=FEATURE_NAMES)
    np.testing.assert_array_equal(x, cons)
    np.testing.assert_array_equal(y, labels)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["jets"][:], jets)
        assert f["jetConstituentList"].compression == "gzip"
        assert [n.decode() for n in f["particleFeatureNames"][:]] == list(FEATURE_NAMES)
        assert f["jetFeatureNames"][-6:-1].tolist() == [b"j_g", b"j_q", b"j_w", b"j_z", b"j_t"]


def test_default_features_first_n_and_subset_order(one_file):
    path, cons, _, labels = one_file
    x, y = load(path, n_particles=8)
    assert x.shape == (20, 8, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x, cons[:, :8, [PT_REL, ETA_REL, PHI_REL]])
    # An unsorted subset comes back in the order asked for.
    x, _ = load(path, features=("phi", "px", "E"), n_particles=30)
    np.testing.assert_array_equal(x, cons[:, :30, [10, 0, 3]])
    _, onehot = load(path, n_particles=1, one_hot=True)
    np.testing.assert_array_equal(onehot, np.eye(5, dtype=np.float32)[labels])


def test_make_jets_array_label_columns():
    jets = make_jets_array(np.array([2, 0, 4]), j_pt=np.array([900.0, 1000.0, 1100.0]),
                           j_mass=np.array([80.0, 10.0, 175.0]))
    assert jets.shape == (3, 59)
    # [-6:-1] = columns 53..57 = g q W Z t; column 58 (j_undef) stays 0.
    np.testing.assert_array_equal(jets[0, 53:], [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(jets[1, 53:], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(jets[2, 53:], [0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(jets[:, 1], [900, 1000, 1100])  # j_pt is column 1
    np.testing.assert_array_equal(jets[:, 3], [80, 10, 175])  # j_mass is column 3


@pytest.fixture
def three_files(tmp_path):
    parts = [fake_jets(n, seed=10 + i) for i, n in enumerate((7, 5, 9))]
    d = tmp_path / "dir"
    for i, (c, j, _) in enumerate(parts):
        write(d / f"part{i}.h5", c, j)
    (d / "notes.txt").write_text("not a jet file")
    cons = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[2] for p in parts])
    return d, cons, labels


def test_directory_chunks_never_span_files(three_files):
    d, cons, labels = three_files
    chunks = list(iter_chunks(d, chunk_size=4, n_particles=10))
    assert [len(y) for _, y in chunks] == [4, 3, 4, 1, 4, 4, 1]
    x = np.concatenate([c for c, _ in chunks])
    np.testing.assert_array_equal(x, cons[:, :10, [PT_REL, ETA_REL, PHI_REL]])
    np.testing.assert_array_equal(np.concatenate([y for _, y in chunks]), labels)
    assert len(JetFiles.open(d)) == 21


def test_directory_reads_lazily(three_files, monkeypatch):
    """Every HDF5 read returns at most one chunk of rows and only the particles asked for."""
    d, cons, _ = three_files
    shapes = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        out = original(self, key)
        if self.name == "/jetConstituentList":
            shapes.append(out.shape)
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    indices = np.array([0, 3, 8, 19, 20])
    x, _ = load(d, n_particles=5, indices=indices, features=("E",))
    np.testing.assert_array_equal(x, cons[indices][:, :5, [3]])
    assert shapes and all(s[1] == 5 and s[2] == 1 for s in shapes)
    # Rows 0..3 from file 0, row 8 (file 1 row 1), rows 19, 20 (file 2 rows 7, 8).
    assert sorted(s[0] for s in shapes) == [1, 2, 4]
    shapes.clear()
    for _ in iter_chunks(d, chunk_size=3, n_particles=2):
        pass
    assert max(s[0] for s in shapes) == 3


def test_split_sizes_and_determinism():
    tr, va = split_indices(1000, 0.1, seed=3)
    assert (len(tr), len(va)) == (900, 100)
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(1000))
    tr2, va2 = split_indices(1000, 0.1, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    _, va3 = split_indices(1000, 0.1, seed=4)
    assert not np.array_equal(va, va3)
    assert len(split_indices(25, 0.1)[1]) == 3  # 2.5 rounds up
    assert len(split_indices(7, 0.1)[1]) == 1


def test_normaliser_matches_numpy_on_train_split(three_files):
    d, cons, labels = three_files
    tr, va = split_indices(21, 0.1, seed=5)
    feats = ("pT_rel", "eta_rel", "phi_rel", "E")
    cols = [PT_REL, ETA_REL, PHI_REL, 3]
    norm = Normaliser.fit(iter_chunks(d, chunk_size=2, n_particles=40, features=feats,
                                      indices=tr), features=feats)
    ref = cons[tr][:, :40][:, :, cols].astype(np.float64)
    real = np.any(ref != 0, axis=-1)
    np.testing.assert_allclose(norm.mean, ref[real].mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(norm.std, ref[real].std(axis=0), rtol=1e-12)
    assert norm.count == real.sum()

    # Serialisable: survives JSON.
    back = Normaliser.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.mean, norm.mean)
    np.testing.assert_array_equal(back.std, norm.std)
    assert back.features == feats

    split = load_split(d, features=feats, n_particles=40, seed=5, chunk_size=3)
    assert split.x_train.shape == (19, 40, 4) and split.x_val.shape == (2, 40, 4)
    np.testing.assert_array_equal(split.y_train, labels[tr])
    np.testing.assert_array_equal(split.y_val, labels[va])
    expect = np.where(real[..., None], (ref - ref[real].mean(0)) / ref[real].std(0), 0.0)
    np.testing.assert_allclose(split.x_train, expect, rtol=1e-5, atol=1e-5)
    # Validation rows use the train statistics, not their own.
    ref_va = cons[va][:, :40][:, :, cols].astype(np.float64)
    real_va = np.any(ref_va != 0, axis=-1)
    np.testing.assert_allclose(split.x_val[real_va],
                               (ref_va[real_va] - ref[real].mean(0)) / ref[real].std(0),
                               rtol=1e-5, atol=1e-5)
    assert np.all(split.x_val[~real_va] == 0)


def test_normaliser_without_padding_skip_counts_every_entry():
    x = np.array([[[1.0, 0.0], [0.0, 0.0]], [[3.0, 2.0], [5.0, 4.0]]])
    norm = Normaliser(features=("a", "b"), skip_padding=False).update(x[:1]).update(x[1:])
    flat = x.reshape(-1, 2)
    np.testing.assert_allclose(norm.mean, [9 / 4, 6 / 4])
    np.testing.assert_allclose(norm.std, flat.std(axis=0))


# ---- errors -------------------------------------------------------------------------------

def _h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
    return path


def test_missing_key_names_file_key_and_shape(tmp_path):
    p = _h5(tmp_path / "nojets.h5", jetConstituentList=np.zeros((4, 150, 16), np.float32))
    with pytest.raises(JetFormatError) as e:
        load(p)
    msg = str(e.value)
    assert "nojets.h5" in msg and "'jets'" in msg and "(N, 59)" in msg
    assert "jetConstituentList" in msg  # the keys found are listed


def test_wrong_jets_shape_names_expected_and_found(tmp_path):
    p = _h5(tmp_path / "bad.h5", jetConstituentList=np.zeros((4, 150, 16), np.float32),
            jets=np.zeros((4, 58), np.float32))
    with pytest.raises(JetFormatError) as e:
        JetFiles.open(p)
    msg = str(e.value)
    assert "bad.h5" in msg and "'jets'" in msg and "(4, 58)" in msg and "(N, 59)" in msg


def test_wrong_constituent_shape_names_expected_and_found(tmp_path):
    p = _h5(tmp_path / "bad16.h5", jetConstituentList=np.zeros((4, 150, 15), np.float32),
            jets=np.zeros((4, 59), np.float32))
    with pytest.raises(JetFormatError) as e:
        load(p)
    msg = str(e.value)
    assert "bad16.h5" in msg and "'jetConstituentList'" in msg
    assert "(4, 150, 15)" in msg and "(N, P, 16)" in msg


def test_row_count_mismatch(tmp_path):
    p = _h5(tmp_path / "rows.h5", jetConstituentList=np.zeros((4, 150, 16), np.float32),
            jets=np.zeros((3, 59), np.float32))
    with pytest.raises(JetFormatError, match=r"rows\.h5.*4 jets.*'jets' has 3"):
        load(p)


def test_bad_file_in_directory_is_named(three_files):
    d, _, _ = three_files
    _h5(d / "zz_broken.h5", jets=np.zeros((2, 59), np.float32))
    with pytest.raises(JetFormatError, match="zz_broken.h5.*'jetConstituentList'"):
        load(d)


def test_unknown_feature_lists_valid_names(one_file):
    path, _, _, _ = one_file
    with pytest.raises(JetFormatError) as e:
        load(path, features=("pT_rel", "pt"))
    msg = str(e.value)
    assert "'pt'" in msg and "pT_rel" in msg and "costheta_rel" in msg and "eta_rot" in msg


def test_too_many_particles_requested(tmp_path):
    cons, jets, _ = fake_jets(3, seed=2, n_particles=30)
    p = write(tmp_path / "p30.h5", cons, jets)
    assert load(p, n_particles=30)[0].shape == (3, 30, 3)
    with pytest.raises(JetFormatError, match=r"p30\.h5.*30 particles.*n_particles=150"):
        load(p)


def test_bad_label_row_is_reported(tmp_path):
    cons, jets, _ = fake_jets(3, seed=2)
    jets[1, 53:58] = [1, 1, 0, 0, 0]
    p = write(tmp_path / "lab.h5", cons, jets)
    with pytest.raises(JetFormatError, match=r"lab\.h5.*row 1.*one-hot"):
        load(p)


def test_not_hdf5_and_missing_path(tmp_path):
    p = tmp_path / "junk.h5"
    p.write_text("hello")
    with pytest.raises(JetFormatError, match="junk.h5.*not a readable HDF5"):
        load(p)
    with pytest.raises(FileNotFoundError, match="nothere"):
        load(tmp_path / "nothere")


def test_writer_rejects_wrong_shapes(tmp_path):
    with pytest.raises(JetFormatError, match=r"\(2, 150, 3\).*\(N, P, 16\)"):
        write(tmp_path / "w.h5", np.zeros((2, 150, 3)), np.zeros((2, 59)))
    with pytest.raises(JetFormatError, match=r"2 jets.*has 3"):
        write(tmp_path / "w.h5", np.zeros((2, 150, 16)), np.zeros((3, 59)))
