"""The prep stage's entry points: prepare, ensure_prepared, load_prepared.

Prepared data lives in `run_dir/data/` (train/, test/, template.json, data_report.json,
fingerprint.json). It is built in a staging folder beside it and swapped in whole, so a crash
never leaves half of it; `fingerprint.json` is written only when no check failed, so only a
complete, sound preparation is ever reused, and only for the same data, settings and tokenizer.
"""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tunesmith.config import Config
from tunesmith.data.build import build
from tunesmith.data.fingerprint import fingerprint
from tunesmith.data.report import summary
from tunesmith.data.show import preview
from tunesmith.data.templates import TEMPLATE_FILE, Template
from tunesmith.errors import TunesmithError
from tunesmith.faults import crash_point
from tunesmith.runs import RunDir, atomic_write_json, space_for, writing

REPORT, FINGERPRINT, TEMPLATE = "data_report.json", "fingerprint.json", TEMPLATE_FILE


@dataclass
class Prepared:
    train: object  # datasets.Dataset: input_ids, labels, example, source (+ position_ids when packed)
    test: object
    template: Template


@dataclass
class PrepResult:
    report: dict
    summary: str  # the human summary, with `show` rendered examples
    train: object
    test: object
    template: Template
    cached: bool


def prepare(config: Config, *, show: int = 0, force: bool = False) -> PrepResult:
    """Prepare `config.data` into the run directory, or reuse it when nothing it depends on changed."""
    run = RunDir(Path(config.run_dir))
    with writing(run.root, "tunesmith prep"):  # one writer; a failed first prep leaves no empty run_dir
        tokenizer = _tokenizer(config)
        cached = _prepare(config, tokenizer, run.data, force)
    data_dir = run.data
    prepared = load_prepared(data_dir)
    report = json.loads((data_dir / REPORT).read_text(encoding="utf-8"))
    text = summary(report, preview(prepared.train, tokenizer, show), str(data_dir), cached)
    return PrepResult(report, text, prepared.train, prepared.test, prepared.template, cached)


def ensure_prepared(config: Config) -> Prepared:
    """The prepared data for this config: loaded when its fingerprint matches, else prepared now."""
    data_dir = RunDir(Path(config.run_dir)).data
    _prepare(config, _tokenizer(config), data_dir, force=False)
    return load_prepared(data_dir)


def load_prepared(data_dir: Path) -> Prepared:
    from datasets import load_from_disk

    data_dir = Path(data_dir)
    missing = [name for name in ("train", "test", TEMPLATE) if not (data_dir / name).exists()]
    if missing:
        raise TunesmithError(f"{data_dir}: no prepared data ({', '.join(missing)} missing): run tunesmith prep")
    return Prepared(load_from_disk(str(data_dir / "train")), load_from_disk(str(data_dir / "test")),
                    Template.load(data_dir / TEMPLATE))


def _tokenizer(config: Config):
    from tunesmith.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(config.model).path, config.trust_remote_code)


def _prepare(config: Config, tokenizer, data_dir: Path, force: bool) -> bool:
    """Build `data_dir` unless it already matches; True when it did match (cached)."""
    started = time.perf_counter()
    expected = fingerprint(config.data, tokenizer)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir.parent / ".data.lock"):
        for stale in data_dir.parent.glob(f".{data_dir.name}-*"):  # staging/old copies a killed prep left
            shutil.rmtree(stale, ignore_errors=True)
        if not force and _stored_fingerprint(data_dir) == expected["fingerprint"]:
            return True
        staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}-staging-", dir=data_dir.parent))
        try:
            with space_for(data_dir, None, staging):
                built = build(config.data, config.train.batch_size, tokenizer, staging / "work", staging / "out")
                seconds = round(time.perf_counter() - started, 2)
                built.report.update(fingerprint=expected["fingerprint"], seconds=seconds, **_peak_rss_mb())
                atomic_write_json(staging / "out" / REPORT, built.report)
                if not built.errors:
                    atomic_write_json(staging / "out" / FINGERPRINT, expected)
                crash_point("prep.built")
                _swap(staging / "out", data_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if built.errors:
        problems = "; ".join(f"{c.name}: {c.message}" for c in built.errors)
        raise TunesmithError(f"prep: training on this data would be meaningless — {problems} "
                             f"(details in {data_dir / REPORT})")
    return False


def _stored_fingerprint(data_dir: Path) -> str | None:
    try:
        return json.loads((data_dir / FINGERPRINT).read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _swap(new: Path, target: Path) -> None:
    """Replace `target` by `new` with two renames; the old copy is removed afterwards."""
    old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    crash_point("prep.swap")
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path):
    """One preparation per run directory at a time (e.g. several torchrun ranks calling ensure_prepared)."""
    if sys.platform == "win32":  # pragma: no cover - no flock there; a single process is the norm
        yield
        return
    import fcntl

    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _peak_rss_mb() -> dict[str, int]:
    """Peak resident memory of this process, and of its largest finished worker (num_proc), in MB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"peak_rss_mb": round(own / 1e6), "worker_peak_rss_mb": round(workers / 1e6)}
