"""Helper for the compress benchmarks: the first N jets of a cached generator file as its own file
(h5py row copy), so short benchmark budgets train on fewer jets with the same data pipeline."""
from __future__ import annotations

from pathlib import Path

import h5py


def subset(src: Path, n: int, out_dir: Path) -> Path:
    out = out_dir / f"{src.stem}_first{n}.h5"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    with h5py.File(src, "r") as f, h5py.File(tmp, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        for key in f.keys():
            ds = f[key]
            if isinstance(ds, h5py.Dataset) and ds.ndim >= 1 and ds.shape[0] >= n and key in ("jetConstituentList", "jets"):
                g.create_dataset(key, data=ds[:n], compression="gzip", compression_opts=4)
            else:
                g.create_dataset(key, data=ds[()])
    tmp.rename(out)
    return out
