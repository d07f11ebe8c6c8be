"""What the eval benchmarks print and keep: the machine line, a markdown table, the JSON in results/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    """torch, threads and load: what a reader needs to compare two runs' seconds."""
    return f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}"


def markdown(columns: list[str], rows: list[list]) -> str:
    """A markdown table; columns whose name ends in '>' are right-aligned (the '>' is dropped)."""
    header = "| " + " | ".join(c.rstrip(">") for c in columns) + " |"
    rule = "|" + "|".join("---:" if c.endswith(">") else "---" for c in columns) + "|"
    return "\n".join([header, rule, *("| " + " | ".join(map(str, row)) + " |" for row in rows)])


def save(name: str, report) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
