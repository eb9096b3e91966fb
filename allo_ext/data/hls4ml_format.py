"""The hls4ml LHC jet dataset format: constants, a lazy reader and a writer.

A file holds `jetConstituentList` (N, P, 16) float32, particles sorted by pT and zero-padded
(P = 150 in the public 150-particle release), and `jets` (N, 59) whose columns [-6:-1] are the
one-hot labels g, q, W, Z, t. Reading never loads more than one chunk of one file at a time.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

CONSTITUENTS_KEY = "jetConstituentList"
JETS_KEY = "jets"

FEATURE_NAMES: tuple[str, ...] = (
    "px", "py", "pz", "E", "E_rel", "pT", "pT_rel", "eta", "eta_rel", "eta_rot",
    "phi", "phi_rel", "phi_rot", "deltaR", "costheta", "costheta_rel",
)
DEFAULT_FEATURES: tuple[str, ...] = ("pT_rel", "eta_rel", "phi_rel")
CLASS_NAMES: tuple[str, ...] = ("g", "q", "W", "Z", "t")
N_PARTICLES = 150

# Column layout of `jets`, as published in the dataset's `jetFeatureNames`. Only the label
# columns (-6:-1) are needed to read a file; the rest document what each column holds.
JET_FEATURE_NAMES: tuple[str, ...] = (
    "j_ptfrac", "j_pt", "j_eta", "j_mass",
    "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_tau1_b2", "j_tau2_b2", "j_tau3_b2",
    "j_tau32_b1", "j_tau32_b2", "j_zlogz", "j_c1_b0", "j_c1_b1", "j_c1_b2", "j_c2_b1",
    "j_c2_b2", "j_d2_b1", "j_d2_b2", "j_d2_a1_b1", "j_d2_a1_b2", "j_m2_b1", "j_m2_b2",
    "j_n2_b1", "j_n2_b2",
    "j_tau1_b1_mmdt", "j_tau2_b1_mmdt", "j_tau3_b1_mmdt", "j_tau1_b2_mmdt",
    "j_tau2_b2_mmdt", "j_tau3_b2_mmdt", "j_tau32_b1_mmdt", "j_tau32_b2_mmdt",
    "j_c1_b0_mmdt", "j_c1_b1_mmdt", "j_c1_b2_mmdt", "j_c2_b1_mmdt", "j_c2_b2_mmdt",
    "j_d2_b1_mmdt", "j_d2_b2_mmdt", "j_d2_a1_b1_mmdt", "j_d2_a1_b2_mmdt",
    "j_m2_b1_mmdt", "j_m2_b2_mmdt", "j_n2_b1_mmdt", "j_n2_b2_mmdt",
    "j_mass_trim", "j_mass_mmdt", "j_mass_prun", "j_mass_sdb2", "j_mass_sdm1",
    "j_multiplicity", "j_g", "j_q", "j_w", "j_z", "j_t", "j_undef",
)
N_JET_COLUMNS = len(JET_FEATURE_NAMES)  # 59
LABEL_COLUMNS = slice(-6, -1)


class JetFormatError(ValueError):
    """A file does not follow the hls4ml jet format, or a request does not fit the files."""


PathLike = str | os.PathLike


def feature_indices(features: Sequence[str]) -> list[int]:
    """Positions of `features` in FEATURE_NAMES; unknown names list the valid ones."""
    if isinstance(features, str):
        features = (features,)
    if len(features) == 0:
        raise JetFormatError("no features requested; choose from: " + ", ".join(FEATURE_NAMES))
    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown:
        raise JetFormatError(
            f"unknown feature name(s) {unknown}; valid names are: {', '.join(FEATURE_NAMES)}")
    return [FEATURE_NAMES.index(f) for f in features]


def _check_file(path: Path, f: h5py.File) -> tuple[int, int]:
    """Validate keys and shapes; return (n_jets, n_particles)."""
    expected = {CONSTITUENTS_KEY: "(N, P, 16), P = 150 in the public dataset",
                JETS_KEY: f"(N, {N_JET_COLUMNS})"}
    for key, shape in expected.items():
        if key not in f:
            raise JetFormatError(
                f"{path}: missing key {key!r} (expected shape {shape}); "
                f"keys found: {sorted(f.keys())}")
    for key in expected:
        if not isinstance(f[key], h5py.Dataset):
            raise JetFormatError(f"{path}: {key!r} is an HDF5 {type(f[key]).__name__.lower()}, not a dataset "
                                 f"(array); this is not an hls4ml-format jet file")
    cons, jets = f[CONSTITUENTS_KEY], f[JETS_KEY]
    if cons.ndim != 3 or cons.shape[2] != len(FEATURE_NAMES):
        raise JetFormatError(
            f"{path}: key {CONSTITUENTS_KEY!r} has shape {cons.shape}, expected (N, P, "
            f"{len(FEATURE_NAMES)}) with features {', '.join(FEATURE_NAMES)}")
    if jets.ndim != 2 or jets.shape[1] != N_JET_COLUMNS:
        raise JetFormatError(
            f"{path}: key {JETS_KEY!r} has shape {jets.shape}, expected (N, {N_JET_COLUMNS}) "
            f"with one-hot labels {'/'.join(CLASS_NAMES)} in columns [-6:-1]")
    if cons.shape[0] != jets.shape[0]:
        raise JetFormatError(
            f"{path}: {CONSTITUENTS_KEY!r} has {cons.shape[0]} jets but {JETS_KEY!r} has "
            f"{jets.shape[0]}; both must have the same first dimension N")
    return int(cons.shape[0]), int(cons.shape[1])


def _list_files(source: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".h5", ".hdf5"))
            if not files:
                raise FileNotFoundError(f"{path}: directory has no .h5 or .hdf5 files")
            return files
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        return [path]
    files = [Path(p) for p in source]
    if not files:
        raise FileNotFoundError("empty list of jet files")
    for p in files:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
    return files


def labels_from_onehot(onehot: np.ndarray, where: str = "") -> np.ndarray:
    """Class indices (0..4 in CLASS_NAMES order) from the (n, 5) one-hot block."""
    good = (onehot.sum(axis=1) == 1) & ((onehot == 0) | (onehot == 1)).all(axis=1)
    if not good.all():
        bad = int(np.flatnonzero(~good)[0])
        raise JetFormatError(
            f"{where}row {bad} of {JETS_KEY!r} columns [-6:-1] is {onehot[bad].tolist()}, "
            f"not a one-hot label over {'/'.join(CLASS_NAMES)}")
    return onehot.argmax(axis=1).astype(np.int64)


@dataclass(frozen=True)
class JetFiles:
    """One file, a directory of files, or a list of files, opened lazily.

    Only metadata (shapes) is read on construction. `indices` in the methods below are
    global row numbers: file 0's rows first, then file 1's, in sorted-name order.
    """

    files: tuple[Path, ...]
    sizes: tuple[int, ...]
    n_particles: tuple[int, ...]

    @classmethod
    def open(cls, source: PathLike | Sequence[PathLike]) -> "JetFiles":
        files = _list_files(source)
        sizes, parts = [], []
        for path in files:
            try:
                f = h5py.File(path, "r")
            except OSError as err:
                raise JetFormatError(f"{path}: not a readable HDF5 file ({err})") from err
            with f:
                n, p = _check_file(path, f)
            sizes.append(n)
            parts.append(p)
        return cls(tuple(files), tuple(sizes), tuple(parts))

    def __len__(self) -> int:
        return sum(self.sizes)

    def iter_chunks(
        self,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        n_particles: int = N_PARTICLES,
        chunk_size: int = 4096,
        indices: np.ndarray | None = None,
        one_hot: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (X, y) chunks: X (n, n_particles, len(features)) float32, y class indices
        (or (n, 5) one-hot). Chunks never span two files. With `indices`, only those global
        rows are returned, in increasing order."""
        feat = feature_indices(features)
        if n_particles < 1:
            raise JetFormatError(f"n_particles must be >= 1, got {n_particles}")
        if chunk_size < 1:
            raise JetFormatError(f"chunk_size must be >= 1, got {chunk_size}")
        for path, p in zip(self.files, self.n_particles):
            if n_particles > p:
                raise JetFormatError(
                    f"{path}: key {CONSTITUENTS_KEY!r} holds {p} particles per jet, "
                    f"but n_particles={n_particles} were asked for")
        # h5py reads a fancy index only when it is increasing: read sorted, then reorder.
        read_feat = sorted(set(feat))
        reorder = [read_feat.index(i) for i in feat]
        if read_feat == list(range(read_feat[0], read_feat[-1] + 1)):
            read_feat = slice(read_feat[0], read_feat[-1] + 1)  # plain slicing is faster
        wanted = None
        if indices is not None:
            wanted = np.unique(np.asarray(indices, dtype=np.int64))
            if wanted.size and (wanted[0] < 0 or wanted[-1] >= len(self)):
                raise JetFormatError(
                    f"row indices must lie in [0, {len(self)}), got [{wanted[0]}, {wanted[-1]}]")
        start = 0
        for path, n in zip(self.files, self.sizes):
            rows = None
            if wanted is not None:
                lo, hi = np.searchsorted(wanted, [start, start + n])
                rows = wanted[lo:hi] - start
                if rows.size == 0:
                    start += n
                    continue
            with h5py.File(path, "r") as f:
                cons, jets = f[CONSTITUENTS_KEY], f[JETS_KEY]
                for a in range(0, n, chunk_size):
                    b = min(a + chunk_size, n)
                    if rows is not None:
                        sel = rows[(rows >= a) & (rows < b)]
                        if sel.size == 0:
                            continue
                        # Read the smallest contiguous block that covers the selection.
                        a, b = int(sel[0]), int(sel[-1]) + 1
                        keep = sel - a
                    try:
                        x = cons[a:b, :n_particles, read_feat][:, :, reorder]
                        onehot = jets[a:b, LABEL_COLUMNS]
                    except OSError as err:  # a damaged chunk: h5py's message names no file or row
                        raise JetFormatError(f"{path}: rows {a}..{b - 1} cannot be read, the file is damaged "
                                             f"({str(err).splitlines()[0]}); regenerate or re-download it") from err
                    if rows is not None:
                        x, onehot = x[keep], onehot[keep]
                    x = np.ascontiguousarray(x, dtype=np.float32)
                    if one_hot:
                        y = onehot.astype(np.float32)
                    else:
                        y = labels_from_onehot(onehot, where=f"{path}: ")
                    yield x, y
            start += n

    def load(self, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        """All requested rows at once; takes the same keywords as `iter_chunks`."""
        xs, ys = [], []
        for x, y in self.iter_chunks(**kwargs):
            xs.append(x)
            ys.append(y)
        if not xs:
            feats = kwargs.get("features", DEFAULT_FEATURES)
            n_p = kwargs.get("n_particles", N_PARTICLES)
            shape_y = (0, len(CLASS_NAMES)) if kwargs.get("one_hot") else (0,)
            return (np.zeros((0, n_p, len(feats)), np.float32),
                    np.zeros(shape_y, np.float32 if kwargs.get("one_hot") else np.int64))
        return np.concatenate(xs), np.concatenate(ys)


def iter_chunks(source: PathLike | Sequence[PathLike], **kwargs
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate (X, y) chunks of a file, a directory of files or a list of files.
    Keywords: features, n_particles, chunk_size, indices, one_hot (see JetFiles.iter_chunks)."""
    return JetFiles.open(source).iter_chunks(**kwargs)


def load(source: PathLike | Sequence[PathLike], *,
         features: Sequence[str] = DEFAULT_FEATURES,
         n_particles: int = N_PARTICLES,
         indices: np.ndarray | None = None,
         one_hot: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read (X, y): X (N, n_particles, len(features)) float32, y class indices (int64)
    in CLASS_NAMES order, or (N, 5) one-hot with `one_hot=True`."""
    return JetFiles.open(source).load(features=features, n_particles=n_particles,
                                      indices=indices, one_hot=one_hot)


def make_jets_array(labels: np.ndarray, **columns: np.ndarray) -> np.ndarray:
    """Build the (N, 59) `jets` array from class indices and optional named columns
    (any of JET_FEATURE_NAMES, e.g. j_pt=..., j_mass=...); other columns stay zero."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES))):
        raise JetFormatError(
            f"labels must be a 1-D array of class indices 0..{len(CLASS_NAMES) - 1} "
            f"({'/'.join(CLASS_NAMES)}), got shape {labels.shape}")
    jets = np.zeros((labels.size, N_JET_COLUMNS), np.float32)
    jets[np.arange(labels.size), N_JET_COLUMNS - 6 + labels] = 1.0
    for name, values in columns.items():
        if name not in JET_FEATURE_NAMES[:-6]:
            raise JetFormatError(
                f"unknown jet column {name!r}; valid: {', '.join(JET_FEATURE_NAMES[:-6])}")
        jets[:, JET_FEATURE_NAMES.index(name)] = values
    return jets


def write(path: PathLike, constituents: np.ndarray, jets: np.ndarray, *,
          attrs: dict | None = None, compression_level: int = 4) -> Path:
    """Write an hls4ml-format file (gzip). `constituents` is (N, P, 16), `jets` (N, 59).
    Also stores `particleFeatureNames` and `jetFeatureNames` as the public files do.
    The file is byte-identical for identical inputs (no HDF5 timestamps)."""
    path = Path(path)
    constituents = np.asarray(constituents)
    jets = np.asarray(jets)
    if constituents.ndim != 3 or constituents.shape[2] != len(FEATURE_NAMES):
        raise JetFormatError(
            f"{path}: {CONSTITUENTS_KEY!r} to write has shape {constituents.shape}, expected "
            f"(N, P, {len(FEATURE_NAMES)})")
    if jets.ndim != 2 or jets.shape[1] != N_JET_COLUMNS:
        raise JetFormatError(
            f"{path}: {JETS_KEY!r} to write has shape {jets.shape}, expected (N, {N_JET_COLUMNS})")
    if jets.shape[0] != constituents.shape[0]:
        raise JetFormatError(
            f"{path}: {CONSTITUENTS_KEY!r} has {constituents.shape[0]} jets but {JETS_KEY!r} "
            f"has {jets.shape[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    opts = dict(compression="gzip", compression_opts=compression_level, track_times=False)
    with h5py.File(path, "w", track_order=True) as f:
        f.create_dataset(CONSTITUENTS_KEY, data=constituents.astype(np.float32), **opts)
        f.create_dataset(JETS_KEY, data=jets.astype(np.float32), **opts)
        f.create_dataset("particleFeatureNames", track_times=False,
                         data=np.array([n.encode() for n in FEATURE_NAMES]))
        f.create_dataset("jetFeatureNames", track_times=False,
                         data=np.array([n.encode() for n in JET_FEATURE_NAMES]))
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path
