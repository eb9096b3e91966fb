"""Where commands write: checked before any long work starts, never over a user's files.

- :func:`check_output_file`: a file to create (refuses a directory, an existing file unless
  ``force``, and a parent that cannot be written).
- :func:`check_output_dir`: a directory to write into. A directory allo-ext wrote before carries a
  marker (``.allo-ext``); a non-empty directory without it is someone else's and is refused unless
  ``force``.
- :func:`run_lock`: an exclusive lock on a directory for the duration of a run, so two trainings
  into one directory cannot interleave their checkpoints.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

MARKER = ".allo-ext"
LOCK = ".allo-ext.lock"


class OutputError(ValueError):
    """An output path that cannot or must not be written; the message says what to do instead."""


def _writable_dir(d: Path, what: str) -> None:
    """``d`` exists (or can be created) and a file can be created in it."""
    probe = d
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{what}: {probe} is a file, so {d} cannot be created; choose another path")
    # Try it rather than ask os.access: root passes every permission check but not a read-only mount.
    try:
        fd, name = tempfile.mkstemp(prefix=".allo-ext-probe-", dir=probe)
    except OSError as e:
        raise OutputError(f"{what}: cannot write in {probe} ({e.strerror or e}); choose a writable location") from None
    os.close(fd)
    os.unlink(name)


def check_output_file(path: str | os.PathLike, *, force: bool = False, what: str = "--out",
                      hint: str = "--force") -> Path:
    """A file we are about to write: not a directory, not an existing file unless ``force``,
    in a writable directory. Raises OutputError before any work is done."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{what} {p} is a directory; give a file name such as {p / 'out'}")
    if p.exists() and not force:
        raise OutputError(f"{what} {p} already exists; refusing to overwrite it (pass {hint} to replace it)")
    _writable_dir(p.parent, what)
    return p


def check_output_dir(path: str | os.PathLike, *, force: bool = False, what: str = "--out",
                     ours: Iterable[str] = (), hint: str = "--force") -> Path:
    """A directory we are about to write into. It may be missing, empty, ours (has MARKER or only
    names from ``ours``), or anything with ``force``. Raises OutputError otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p} is a file, not a directory; choose a directory path")
    _writable_dir(p, what)
    if p.is_dir() and not force:
        entries = [e.name for e in p.iterdir()]
        known = set(ours) | {MARKER, LOCK}
        foreign = [e for e in entries if e not in known and not e.startswith(".")]
        if foreign and MARKER not in entries:
            shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
            raise OutputError(f"{what} {p} is not empty and was not written by allo-ext ({shown}); refusing "
                              f"to write into it: choose an empty or new directory, or pass {hint}")
    return p


def mark_dir(path: str | os.PathLike) -> None:
    """Mark a directory as written by allo-ext (so a later run may write into it again)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    (p / MARKER).write_text("written by allo-ext; a directory with this file may be overwritten by allo-ext\n")


@contextlib.contextmanager
def run_lock(path: str | os.PathLike, what: str = "run directory") -> Iterator[Path]:
    """Hold an exclusive, non-blocking lock on ``path`` (a directory) while the block runs.
    A second holder (another process, or another open in this one) gets an OutputError at once."""
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    lock = d / LOCK
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise OutputError(f"{what} {d} is in use by {holder}; wait for it to finish or choose another "
                              "directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        yield d
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def remove_if_unused(path: str | os.PathLike) -> bool:
    """Remove a directory that holds nothing but our marker and lock (a run that failed early)."""
    p = Path(path)
    if not p.is_dir() or any(e.name not in (MARKER, LOCK) for e in p.iterdir()):
        return False
    for e in p.iterdir():
        e.unlink()
    p.rmdir()
    return True
