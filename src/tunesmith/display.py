"""Print tunesmith's own findings so the lines that matter stand out (on a terminal; plain otherwise)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text

# a line containing this -> its style
EMPHASIS = ((" ERROR ", "bold red"), (" WARNING ", "bold yellow"), ("answer length:", "bold"), ("rows:", "bold"))


def print_findings(text: str, console: Console | None = None) -> None:
    """Print a multi-line report (prep's summary), with errors, warnings and key counts emphasised."""
    console = console or Console(highlight=False, soft_wrap=True)
    for line in text.splitlines():
        style = next((style for marker, style in EMPHASIS if marker in line or line.startswith(marker)), None)
        console.print(Text(line, style=style or ""))


def report_verdict(report_md: Path) -> str | None:
    """The report's one-paragraph answer to "did fine-tuning help?" (its first bold line), if written."""
    try:
        lines = report_md.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return next((line.strip("*") for line in lines if line.startswith("**") and line.endswith("**")), None)


def print_outcome(table: str, run_dir: Path, console: Console | None = None) -> None:
    """What `run` and `quickstart` end with: the comparison table, the verdict, where the report is."""
    console = console or Console(highlight=False, soft_wrap=True)
    console.print(Text(table))
    verdict = report_verdict(run_dir / "report.md")
    if verdict:
        console.print(Text("\n" + verdict, style="bold"))
    console.print(Text(f"\nrun directory: {run_dir}\nreport: {run_dir / 'report.html'}"))
