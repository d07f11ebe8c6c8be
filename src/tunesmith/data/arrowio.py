"""Write rows to an Arrow stream file in batches and memory-map it back as a `datasets.Dataset`.

Rows never pile up in memory: at most one batch is held, so a file larger than memory works.
"""

from __future__ import annotations

import uuid
from pathlib import Path

WRITE_BATCH = 10_000


class ArrowRows:
    """Append rows (dicts with the schema's columns); `finish` returns the memory-mapped Dataset."""

    def __init__(self, folder: Path, schema, prefix: str = "rows"):
        import pyarrow as pa

        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{prefix}-{uuid.uuid4().hex[:8]}.arrow"
        self.schema = schema
        self.sink = pa.OSFile(str(self.path), "wb")
        self.writer = pa.ipc.new_stream(self.sink, schema)
        self.columns: dict[str, list] = {name: [] for name in schema.names}
        self.pending = 0

    def add(self, row: dict) -> None:
        for name, values in self.columns.items():
            values.append(row[name])
        self.pending += 1
        if self.pending >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            self.writer.write_batch(pa.record_batch(list(self.columns.values()), schema=self.schema))
        self.columns = {name: [] for name in self.schema.names}
        self.pending = 0

    def finish(self):
        from datasets import Dataset

        self._flush()
        self.writer.close()
        self.sink.close()
        return Dataset.from_file(str(self.path))


def text_schema():
    """(example, source): the loader's output."""
    import pyarrow as pa

    return pa.schema([("example", pa.string()), ("source", pa.string())])
