"""What every on-disk build cache shares: where it lives, how an artefact is fingerprinted, and how a
file is written so that a crash or a concurrent writer never leaves a torn entry behind.

Each cache (csim libraries, RTL simulators, Yosys reports) keeps its own entry layout and validity rule;
only these three pieces are common.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def cache_root(kind: str) -> Path:
    """``$ALLO_EXT_CACHE/<kind>``, by default ``~/.cache/allo_ext/<kind>``."""
    base = os.environ.get("ALLO_EXT_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "allo_ext") / kind


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside ``path``, then rename over it (atomic on POSIX within one filesystem)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
