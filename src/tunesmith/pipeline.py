"""The whole cycle, `run` = prep -> train -> compare -> report, and `quickstart` on the bundled example."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith import runs
from tunesmith.config import Config, load_config
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir, atomic_write_json

EXAMPLE_CONFIG = "lumen_faq.yaml"


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    table: str
    timings: dict[str, float] = field(default_factory=dict)


def run(config: Config, *, overwrite: bool = False) -> RunResult:
    """Prepare, train, evaluate base / few-shot / tuned, and write report.md + report.html.

    The run directory is locked for the whole cycle, and whether training may start there (resume,
    finished, refused) is decided before data/ is written; train records config.yaml."""
    run_dir = RunDir(Path(config.run_dir))
    with runs.writing(run_dir.root, "tunesmith run"):
        return _run(config, run_dir, overwrite)


def _run(config: Config, run_dir: RunDir, overwrite: bool) -> RunResult:
    from tunesmith.data.prepare import prepare
    from tunesmith.display import print_findings
    from tunesmith.evaluate import compare, format_table
    from tunesmith.report import write_report
    from tunesmith.train import train
    from tunesmith.train.api import preflight

    preflight(config, overwrite=overwrite)  # refuses (resume mismatch, finished weights) before any write
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for stage, step in (
        ("prep", lambda: print_findings(prepare(config, show=1).summary)),
        ("train", lambda: train(config, overwrite=overwrite)),
        ("compare", lambda: compare(config)),
    ):
        begun = time.perf_counter()
        step()
        timings[stage] = round(time.perf_counter() - begun, 1)
    import json

    metrics = json.loads(run_dir.metrics.read_text(encoding="utf-8"))
    from tunesmith.use.check import check

    begun = time.perf_counter()
    print(check(run_dir.root, dtype=config.eval.dtype).summary())  # every path runs what was evaluated
    timings["check"] = round(time.perf_counter() - begun, 1)
    timings["total"] = round(time.perf_counter() - started, 1)
    atomic_write_json(run_dir.root / "timings.json", timings)
    write_report(run_dir.root)
    return RunResult(run_dir.root, metrics, format_table(metrics), timings)


def example_dir() -> Path:
    """The example bundled inside the package (examples/ in a checkout links to the same files)."""
    folder = Path(__file__).resolve().parent / "examples"
    if not (folder / EXAMPLE_CONFIG).is_file():
        raise TunesmithError(
            f"quickstart: the bundled example is missing from {folder}; reinstall tunesmith "
            "(pip install --force-reinstall tunesmith)"
        )
    return folder


def quickstart(overrides: list[str] | None = None, *, overwrite: bool = False) -> RunResult:
    """`run` on the embedded model and the bundled Lumenfold FAQ data."""
    examples = example_dir()
    base = [f"data.path={examples / 'lumen_faq.jsonl'}"]
    return run(load_config(examples / EXAMPLE_CONFIG, base + list(overrides or [])), overwrite=overwrite)
