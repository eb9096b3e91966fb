"""Atomic checkpoint files: a reader or a resumed run never sees a half-written file."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Callable

import torch

CHECKPOINT_NAME = "checkpoint.pt"
BEST_MODEL_NAME = "best_model.pt"
FORMAT_VERSION = 1


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``.

    ``os.replace`` is atomic on POSIX within one filesystem, so a SIGKILL or power cut leaves
    either the old file or the new one, never a mix. The temp file name starts with '.' and ends
    in '.tmp', so leftovers from a killed writer are never mistaken for checkpoints.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it creates mode 0600 files, while these should honour the umask.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda f: torch.save(obj, f), "wb")


def atomic_json_save(obj: Any, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2)), "w")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``checkpoint.pt`` or ``best_model.pt``).

    Both hold ``model`` (a state dict) and ``model_config`` (the dict passed to ``fit``), which
    is what rebuilding a model needs: ``m = MyModel(**ck["model_config"]);
    m.load_state_dict(ck["model"])``. Loading uses ``weights_only=True``: no code is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train with fit(..., out_dir=...) first")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    version = ck.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {version!r}, this allo_ext reads {FORMAT_VERSION}; "
            f"retrain or use the allo_ext version that wrote it"
        )
    return ck
