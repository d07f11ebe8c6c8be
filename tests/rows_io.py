"""Writing and loading small data files in data tests."""

import json

from tunesmith.data.load import load_rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def load(path, **kwargs):
    return load_rows(path, work_dir=path.parent / "work", **kwargs)
