"""The run directory: where each stage's files live, and atomic writes into it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.templates import TEMPLATE_FILE
from tunesmith.errors import TunesmithError
from tunesmith.faults import crash_point

LOCK_FILE = ".tunesmith.lock"
# lock files that an otherwise empty run directory may hold after a failed first stage
HOUSEKEEPING = {LOCK_FILE, ".data.lock"}
_held: dict[Path, int] = {}  # run directories this process holds the lock of -> nesting depth


@dataclass(frozen=True)
class RunDir:
    """Paths inside `runs/<name>/`; every stage finds its inputs and outputs here."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def data_report(self) -> Path:
        return self.data / "data_report.json"

    @property
    def template(self) -> Path:
        return self.data / TEMPLATE_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def train_log(self) -> Path:
        return self.root / "train_log.jsonl"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def metrics(self) -> Path:
        return self.eval / "metrics.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def final_weights(self) -> Path | None:
        """`adapter/` or `model/`, whichever training wrote."""
        for folder in (self.adapter, self.model):
            if (folder / "adapter_config.json").is_file() or (folder / "config.json").is_file():
                return folder
        return None


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with space_for(path, len(text.encode("utf-8")), Path(tmp)):
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            crash_point("atomic_write")
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def space_for(target: Path, needed: int | None, *partial: Path) -> Iterator[None]:
    """Write `target` (about `needed` bytes); on any failure remove the `partial` files/folders.

    A full disk becomes one line naming the path, the space needed and the space free, instead of a
    traceback from deep inside safetensors; whatever was written before (the last checkpoint) is kept.
    """
    try:
        yield
    except Exception as err:  # an interrupt (Ctrl-C) leaves them for the next run's sweep (remove_stale)
        for path in partial:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if not is_disk_full(err):
            raise
        need = f"it needs about {_size(needed)}, " if needed is not None else ""
        raise TunesmithError(
            f"disk full writing {target}: {need}{_size(free_bytes(target))} is free there; "
            "free some space (or use a run_dir / --out on another disk) and rerun"
        ) from None


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC / EDQUOT, including safetensors' and torch's wrappers that keep only the message."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return "No space left on device" in text or "Disk quota exceeded" in text or "os error 28" in text


def free_bytes(path: Path) -> int | None:
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return None


def tensor_bytes(tensors) -> int:
    """Bytes the tensors take on disk (safetensors stores them raw)."""
    return sum(t.numel() * t.element_size() for t in tensors)


def _size(count: int | None) -> str:
    if count is None:
        return "an unknown amount"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"  # pragma: no cover


@contextlib.contextmanager
def writing(root: Path, stage: str) -> Iterator[None]:
    """Hold the one-writer lock of run directory `root` while `stage` writes into it.

    An OS lock (flock) on `root/.tunesmith.lock`: the kernel drops it when the process ends, so a
    killed run never leaves it stuck. Re-entrant within a process (`run` holds it across train).
    A run directory this call created and that is still empty afterwards is removed again.
    """
    root = Path(root)
    key = root.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = _acquire(root / LOCK_FILE, stage)
    except OSError as err:
        raise TunesmithError(f"run_dir {root}: cannot write there ({err.strerror or err}); "
                             "choose a run_dir you can write to") from None
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        if created and {p.name for p in root.iterdir()} <= HOUSEKEEPING:
            for name in HOUSEKEEPING:  # removed while still locked, so no one else holds this inode
                (root / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                root.rmdir()
        handle.close()  # releases the flock


def _acquire(path: Path, stage: str):
    """Open and flock `path` without waiting; a holder is named in the error."""
    if sys.platform == "win32":  # pragma: no cover - no flock; a single writer is the user's job there
        return path.open("a+")
    import fcntl

    while True:
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise TunesmithError(
                f"run_dir {path.parent} is in use by {holder}: one writer per run directory; wait for it "
                "to finish, or use another run_dir (--set run_dir=...)"
            ) from None
        try:
            same = os.fstat(handle.fileno()).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file that its last holder removed while we were opening it
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} ({stage})\n")
    handle.flush()
    return handle
