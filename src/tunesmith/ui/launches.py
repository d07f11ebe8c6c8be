"""Runs started from the page: `python -m tunesmith run CONFIG` as a child process, recorded in files.

Each launch leaves `RUNS_DIR/.ui/<name>.json` (pid, command, exit code once it ends), the config it ran
(`<name>.yaml`) and its output (`<name>.log`). The run itself is an ordinary run directory that
`tunesmith train CONFIG --resume` can continue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.runs import atomic_write_json, atomic_write_text

LAUNCH_DIR = ".ui"


def _record(runs_dir: Path, name: str) -> Path:
    return runs_dir / LAUNCH_DIR / f"{name}.json"


def launch(runs_dir: Path, name: str, config: Config) -> dict:
    """Start the whole cycle (prep, train, compare, report) for `config` in the background."""
    folder = runs_dir / LAUNCH_DIR
    if (Path(config.run_dir) / "config.yaml").exists():
        raise TunesmithError(f"{config.run_dir} already holds a run: choose another name")
    config_path = folder / f"{name}.yaml"
    atomic_write_text(config_path, config.to_yaml())
    log_path = folder / f"{name}.log"
    command = [sys.executable, "-m", "tunesmith", "run", str(config_path)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    record = {"name": name, "run_dir": config.run_dir, "pid": process.pid, "command": command,
              "started": time.time(), "returncode": None, "log": str(log_path)}
    atomic_write_json(_record(runs_dir, name), record)
    threading.Thread(target=_wait, args=(process, _record(runs_dir, name)), daemon=True).start()
    return record


def _wait(process: subprocess.Popen, record_path: Path) -> None:
    returncode = process.wait()
    record = json.loads(record_path.read_text(encoding="utf-8"))
    atomic_write_json(record_path, {**record, "returncode": returncode, "ended": time.time()})


def state(runs_dir: Path, run_root: Path) -> dict | None:
    """The launch record of the run in `run_root`, with `running` (its process is alive), or None."""
    for path in (runs_dir / LAUNCH_DIR).glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if Path(record.get("run_dir", "")).resolve() == run_root.resolve():
            alive = record.get("returncode") is None and _alive(record.get("pid"))
            return {**record, "running": alive}
    return None


def launched_dirs(runs_dir: Path) -> list[Path]:
    dirs = []
    for path in (runs_dir / LAUNCH_DIR).glob("*.json"):
        try:
            dirs.append(Path(json.loads(path.read_text(encoding="utf-8"))["run_dir"]))
        except (OSError, ValueError, KeyError):
            continue
    return dirs


def output_tail(runs_dir: Path, run_root: Path, chars: int = 4000) -> str:
    record = state(runs_dir, run_root)
    if not record:
        return ""
    try:
        return Path(record["log"]).read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
