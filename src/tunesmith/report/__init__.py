"""report stage: report.md and report.html, the answer to "did fine-tuning help?".

`write_report(run_dir)` reads only files in the run directory (eval/, train_log.jsonl, data/,
config.yaml, timings.json), so it can be rerun at any time without a model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tunesmith.runs import RunDir, atomic_write_text


def write_report(run_dir: Path) -> tuple[Path, Path]:
    """Write report.md (charts as PNGs in report_files/) and a self-contained report.html.

    Raises:
        TunesmithError: If the run has no eval/metrics.json yet.
    """
    from tunesmith.report.collect import collect
    from tunesmith.report.render import CHART_DIR, build_charts, render

    run = RunDir(Path(run_dir))
    data = collect(run.root)
    chart_list = build_charts(data)
    for chart in chart_list:
        if chart["png"]:
            _atomic_write_bytes(run.root / CHART_DIR / f"{chart['key']}.png", chart["png"])
    markdown, html = render(data, chart_list)
    atomic_write_text(run.report_md, markdown)
    atomic_write_text(run.report_html, html)
    return run.report_md, run.report_html


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
