"""The whole cycle, `run` = prep -> train -> compare -> report, and `quickstart` on the bundled example."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.config import Config, load_config
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir, atomic_write_json, atomic_write_text

EXAMPLE_CONFIG = "lumen_faq.yaml"


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    table: str
    timings: dict[str, float] = field(default_factory=dict)


def run(config: Config) -> RunResult:
    """Prepare, train, evaluate base / few-shot / tuned, and write report.md + report.html."""
    from tunesmith.data.prepare import prepare
    from tunesmith.evaluate import compare, format_table
    from tunesmith.report import write_report
    from tunesmith.train import train

    run_dir = RunDir(Path(config.run_dir))
    run_dir.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir.config, config.to_yaml())
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for stage, step in (
        ("prep", lambda: print(prepare(config, show=1).summary)),
        ("train", lambda: train(config)),
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
    """The bundled examples/ folder (next to src/ in a checkout or an editable install)."""
    for candidate in (Path(__file__).resolve().parents[2] / "examples", Path.cwd() / "examples"):
        if (candidate / EXAMPLE_CONFIG).is_file():
            return candidate
    raise TunesmithError(
        "quickstart: cannot find the bundled examples/ folder; run it from a tunesmith checkout "
        "(git clone, then `make quickstart`)"
    )


def quickstart(overrides: list[str] | None = None) -> RunResult:
    """`run` on the embedded model and the bundled Lumenfold FAQ data."""
    examples = example_dir()
    base = [f"data.path={examples / 'lumen_faq.jsonl'}"]
    return run(load_config(examples / EXAMPLE_CONFIG, base + list(overrides or [])))
