"""Stream selected rows out of Arrow files into `save_to_disk` folders, with bounded memory.

`Dataset.save_to_disk` reads its input through a memory map, so saving a million-row split
would map (and count in the resident memory) every page of the tokenized data. Here rows are
read with plain file reads, batch by batch, and written to one Arrow stream file; the folder
around it (state.json, dataset_info.json) is the one `save_to_disk` writes for the first row,
whose data file is then replaced by the full one. `datasets.load_from_disk` reads the result
like any other saved dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

READ_ROWS = 2000


def selected_batches(files: list[str], indices: np.ndarray, columns: list[str]) -> Iterator[dict[str, list]]:
    """The rows `indices` (ascending) of the concatenated Arrow stream `files`, as dicts of columns."""
    import pyarrow as pa

    offset = 0
    for file in files:
        with pa.OSFile(file, "rb") as source:
            for batch in pa.ipc.open_stream(source):
                lo, hi = np.searchsorted(indices, [offset, offset + batch.num_rows])
                if hi > lo:
                    picked = batch.select(columns).take(pa.array(indices[lo:hi] - offset))
                    yield picked.to_pydict()
                offset += batch.num_rows


def source_files(dataset) -> list[str]:
    """The Arrow files behind a dataset made by `map` (one per worker), in row order."""
    files = [entry["filename"] for entry in dataset.cache_files]
    if not files or dataset._indices is not None:
        raise ValueError("expected a dataset read straight from its Arrow cache files")
    return files


def save_batches(batches: Iterable[dict[str, list]], features, folder: Path, rows_per_batch: int = READ_ROWS) -> int:
    """Write column batches as a `save_to_disk` folder; returns the number of rows."""
    import pyarrow as pa
    from datasets import Dataset

    stream = iter(batches)
    first = next((b for b in stream if b and len(next(iter(b.values())))), None)
    if first is None:
        Dataset.from_dict({name: [] for name in features}, features=features).save_to_disk(str(folder))
        return 0
    head = {name: values[:1] for name, values in first.items()}
    Dataset.from_dict(head, features=features).save_to_disk(str(folder))
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    (data_file,) = [folder / entry["filename"] for entry in state["_data_files"]]
    with pa.OSFile(str(data_file), "rb") as source:
        schema = pa.ipc.open_stream(source).schema
    partial = data_file.with_name(f".{data_file.name}.partial")
    rows = 0
    with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in _chain(first, stream):
            table = pa.Table.from_pydict(batch, schema=schema)
            writer.write_table(table, max_chunksize=rows_per_batch)
            rows += table.num_rows
    os.replace(partial, data_file)
    return rows


def _chain(first: dict, rest: Iterator[dict]) -> Iterator[dict]:
    yield first
    yield from rest
