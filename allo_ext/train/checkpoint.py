"""Atomic checkpoint files: a reader or a resumed run never sees a half-written file."""
from __future__ import annotations

import json
import os
import pickle
import secrets
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

CHECKPOINT_NAME = "checkpoint.pt"
BEST_MODEL_NAME = "best_model.pt"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint of ours (empty, truncated, foreign, or lacking keys)."""


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


# What a training run leaves in its directory; `clear_run` removes exactly these (never other files).
RUN_FILES = (CHECKPOINT_NAME, BEST_MODEL_NAME, "history.json", "history.png", "roc.png", "val_metrics.json",
             "test_metrics.json", "test_roc.png", "bundle.json")


def clear_run(out_dir: str | os.PathLike) -> list[Path]:
    """Remove what an earlier run left in ``out_dir`` (checkpoints, metrics, plots), so a fresh run
    never leaves an old ``best_model.pt`` behind for ``compile`` to pick up. Returns what was removed."""
    out = Path(out_dir)
    removed = []
    for name in RUN_FILES:
        p = out / name
        if p.is_file():
            p.unlink()
            removed.append(p)
    return removed


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``checkpoint.pt`` or ``best_model.pt``).

    Both hold ``model`` (a state dict) and ``model_config`` (the dict passed to ``fit``), which
    is what rebuilding a model needs: ``m = MyModel(**ck["model_config"]);
    m.load_state_dict(ck["model"])``. Loading uses ``weights_only=True``: no code is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train with fit(..., out_dir=...) first")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint; retrain into its directory")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives since torch 1.6
        raise CheckpointError(f"{path} is not a torch checkpoint (not a zip archive): corrupt, truncated or another "
                              f"kind of file; retrain, or restore it from a copy")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses pickled objects other than tensors and plain containers.
        raise CheckpointError(f"{path} is not an allo-ext checkpoint: it holds Python objects that are not "
                              f"loaded for safety ({str(e).splitlines()[0][:160]})") from e
    except (RuntimeError, EOFError, OSError, ValueError, UnicodeDecodeError, KeyError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{path} is corrupt or truncated, or not a torch file ({first}); "
                              f"retrain, or restore it from a copy") from e
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path} is not an allo-ext checkpoint (it holds a {type(ck).__name__}, not a dict)")
    version = ck.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}, this allo_ext reads {FORMAT_VERSION}; "
            f"retrain or use the allo_ext version that wrote it"
        )
    missing = [k for k in ("model", "model_config") if k not in ck]
    if missing or not isinstance(ck["model"], dict):
        raise CheckpointError(f"{path} lacks {' and '.join(missing) or 'a model state dict'}: not a checkpoint "
                              f"written by allo_ext.train.fit")
    return ck
