"""`tunesmith generate MODEL --input FILE --output FILE`: batched generation over a file of prompts.

Writes one JSON line per input row, in input order: the row, the generation, why it stopped and
token counts, or an `error` for a row that could not be used (the other rows go on).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine import Sequence, context_length, generate, stop_token_ids
from tunesmith.errors import TunesmithError
from tunesmith.evaluate.progress import Progress
from tunesmith.loading import LoadedModel, load_for_use
from tunesmith.runs import atomic_write_text
from tunesmith.use.rows import PromptRow, read_prompt_rows


@dataclass
class GenerateFileResult:
    output_path: Path
    rows: int  # input rows (= output lines)
    generated: int  # rows answered
    errors: list[str] = field(default_factory=list)  # "FILE:LINE: problem" for each row skipped

    def summary(self, shown: int = 10) -> str:
        """What the CLI prints: the output file, counts, and the first skipped rows with their lines."""
        lines = [f"wrote {self.rows} lines to {self.output_path}: {self.generated} generated, "
                 f"{len(self.errors)} rows skipped"]
        lines += [f"  {error}" for error in self.errors[:shown]]
        if len(self.errors) > shown:
            lines.append(f"  ... and {len(self.errors) - shown} more (their lines in the output have an 'error')")
        return "\n".join(lines)


def generate_file(
    target: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    show_progress: bool = True,
    dtype: str = "auto",
) -> GenerateFileResult:
    """Load `target` and answer every prompt in `input_path` (see module doc)."""
    if max_new_tokens < 1 or batch_size < 1:
        raise TunesmithError("--max-new-tokens and --batch-size must be at least 1")
    rows = read_prompt_rows(Path(input_path))  # fail on a bad file before loading the model
    loaded = load_for_use(target, dtype=dtype)
    print(f"loaded {loaded.describe()}", file=sys.stderr)
    return generate_rows(loaded, rows, Path(output_path), max_new_tokens=max_new_tokens,
                         batch_size=batch_size, temperature=temperature, top_p=top_p, seed=seed,
                         show_progress=show_progress)


def generate_rows(loaded: LoadedModel, rows: list[PromptRow], output_path: Path, *,
                  max_new_tokens: int, batch_size: int, temperature: float, top_p: float,
                  seed: int | None = None, show_progress: bool = False) -> GenerateFileResult:
    """Generate for already-read rows with an already-loaded model; write the output file atomically."""
    stops = loaded.template.stop_strings
    stop_ids = stop_token_ids(loaded.model, loaded.tokenizer, stops)
    limit = context_length(loaded.model)
    sequences: dict[int, Sequence] = {}
    for position, row in enumerate(rows):
        if row.error is None:
            ids = _prompt_ids(loaded, row, limit)
            if row.error is None:
                row_seed = None if seed is None else seed + position
                sequences[position] = Sequence(ids, min(max_new_tokens, limit - len(ids)), temperature, top_p,
                                               stops, row_seed)
    with Progress(show_progress) as bar, bar.task("generate", len(sequences)) as advance:
        generate(loaded.model, loaded.tokenizer, list(sequences.values()), stop_ids, batch_size=batch_size,
                 progress=advance)
    for position, sequence in sequences.items():
        if sequence.error:
            rows[position].error = f"generation failed: {sequence.error}"
    lines = [json.dumps(_output_record(row, sequences.get(position)), ensure_ascii=False)
             for position, row in enumerate(rows)]
    atomic_write_text(output_path, "".join(line + "\n" for line in lines))
    errors = [f"{row.source}: {row.error}" for row in rows if row.error]
    return GenerateFileResult(output_path, len(rows), sum(1 for s in sequences.values() if not s.error), errors)


def _prompt_ids(loaded: LoadedModel, row: PromptRow, limit: int) -> list[int]:
    """Prompt ids of a row; a problem is recorded on the row instead of raised."""
    try:
        if row.text is not None:
            ids = loaded.tokenizer(row.text).input_ids
        else:
            ids = encode_prompt(loaded.tokenizer, loaded.template, row.messages, row.input_text)
    except TunesmithError as err:
        row.error = str(err)
        return []
    if not ids:
        row.error = "the prompt is empty"
    elif len(ids) >= limit:
        row.error = f"the prompt is {len(ids)} tokens; the model's context is {limit}"
    return ids


def _output_record(row: PromptRow, sequence: Sequence | None) -> dict:
    if sequence is None or sequence.error:
        return {"line": _line(row), "input": row.row, "generation": None, "error": row.error}
    return {"line": _line(row), "input": row.row, "generation": sequence.text, "finish_reason": sequence.finish_reason,
            "prompt_tokens": len(sequence.prompt_ids), "new_tokens": len(sequence.token_ids)}


def _line(row: PromptRow) -> int | str:
    """The line (or row) number of a "file:line" source."""
    number = row.source.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else row.source
