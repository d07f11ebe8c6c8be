"""The prep stage step by step: load -> template -> tokenize -> split -> check -> pack -> save.

Everything streams through Arrow files in `work` (memory-mapped); only per-example numbers
(lengths, flags, dedup keys) are held in memory as numpy arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunesmith.config import DataConfig
from tunesmith.data import checks as ck
from tunesmith.data import preference
from tunesmith.data.answer_length import auto_max_new_tokens
from tunesmith.data.dedup import duplicate_count, find_leakage, prompt_keys, prompt_text
from tunesmith.data.load import LoadResult, load_rows
from tunesmith.data.markers import first_marker, template_markers
from tunesmith.data.pack import pack_stream
from tunesmith.data.readers import saved_splits
from tunesmith.data.report import assemble, document_counts
from tunesmith.data.split import split_by_document
from tunesmith.data.store import save_batches, selected_batches, source_files
from tunesmith.data.templates import TEMPLATE_FILE, Template, resolve_template
from tunesmith.data.tokenize import Encoder
from tunesmith.errors import TunesmithError

OUT_COLUMNS = ["input_ids", "labels", "example", "source"]
NUMBERS = ["prompt_tokens", "response_tokens", "response_kept", "trained_tokens", "length",
           "eos_in_labels", "double_bos", "eos_masked", "exact_key", "normal_key", "window", "marker"]
PAD_SAMPLE = 8  # examples collated to check that padding leaves EOS labels alone


@dataclass
class Built:
    report: dict
    template: Template
    errors: list[ck.Check]


@dataclass
class Part:
    """One split: rows `indices` of an encoded dataset (which has no indices mapping of its own)."""

    dataset: object
    indices: np.ndarray

    def numbers(self, pairs: bool = False) -> dict[str, np.ndarray]:
        table = self.dataset.data
        names = NUMBERS + (preference.NUMBERS if pairs else [])
        out = {name: table.column(name).to_numpy()[self.indices] for name in names}
        flat = table.column("minhash").combine_chunks().flatten().to_numpy()
        out["minhash"] = flat.reshape(len(table), -1)[self.indices]
        return out

    def sources(self, positions: np.ndarray) -> list[str]:
        import pyarrow as pa

        taken = self.dataset.data.column("source").take(pa.array(self.indices[positions], type=pa.int64()))
        return taken.to_pylist()

    def prompts(self, positions: np.ndarray) -> list[str]:
        import pyarrow as pa

        taken = self.dataset.data.column("example").take(pa.array(self.indices[positions], type=pa.int64()))
        return [prompt_text(json.loads(e)) for e in taken.to_pylist()]

    def first(self, count: int) -> list[dict]:
        """input_ids and labels of the first `count` examples."""
        batches = selected_batches(source_files(self.dataset), self.indices[:count], ["input_ids", "labels"])
        return [{"input_ids": ids, "labels": labels} for b in batches
                for ids, labels in zip(b["input_ids"], b["labels"], strict=True)]


class RowMap:
    """The batched `datasets.map` function: tokenize, flag and key every example."""

    def __init__(self, encoder: Encoder, pairs: bool = False):
        self.encoder = encoder
        self.pairs = pairs  # preference rows: also tokenize the rejected side
        self.bos_id = encoder.tokenizer.bos_token_id
        self.eos_id = encoder.tokenizer.eos_token_id
        self.markers = template_markers(encoder.template, encoder.tokenizer.all_special_tokens)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        examples, stored, sources, windows, encoded = [], [], [], [], []
        originals = [json.loads(e) for e in batch["example"]]
        for example, text, source, rows in zip(originals, batch["example"], batch["source"],
                                               self._encode(originals, batch["source"]), strict=True):
            for number, row in enumerate(rows, 1):  # a long raw text: one row per window, with its own text
                split = len(rows) > 1
                if split:
                    example = {"text": self.encoder.tokenizer.decode(row.input_ids, skip_special_tokens=True)}
                    text = json.dumps(example, ensure_ascii=False)
                examples.append(example)
                stored.append(text)
                sources.append(f"{source}#{number}" if split else source)
                windows.append(number if split else 0)
                encoded.append(row)
        flags = [ck.example_flags(e.input_ids, e.labels, self.bos_id, self.eos_id) for e in encoded]
        out = {
            "example": stored,
            "source": sources,
            "window": windows,
            "input_ids": [e.input_ids for e in encoded],
            "labels": [e.labels for e in encoded],
            "prompt_tokens": [e.prompt_tokens for e in encoded],
            "response_tokens": [e.response_tokens for e in encoded],
            "response_kept": [e.response_kept for e in encoded],
            "trained_tokens": [sum(1 for y in e.labels if y != -100) for e in encoded],
            "length": [len(e.input_ids) for e in encoded],
        }
        out.update({name: [f[name] for f in flags] for name in ("eos_in_labels", "double_bos", "eos_masked")})
        prompts = [prompt_text(e) for e in examples]
        out["marker"] = [-1 if "text" in e else first_marker(p, self.markers) for e, p in zip(examples, prompts,
                                                                                           strict=True)]
        out.update(prompt_keys(prompts))
        if self.pairs:
            out.update(preference.encode_rejected(self.encoder, examples, encoded))
        return out

    def _encode(self, examples: list[dict], sources: list[str]) -> list[list]:
        try:
            return self.encoder.encode_rows(examples)
        except TunesmithError as err:  # a template refused one example: name it
            for example, source in zip(examples, sources, strict=True):
                try:
                    self.encoder.encode(example)
                except TunesmithError as one:
                    raise TunesmithError(f"{source}: {one}") from None
            raise err from None


def encode_rows(rows, encoder: Encoder, num_proc: int, pairs: bool = False):
    from datasets import Features, List, Value

    ints = List(Value("int32"))
    features = Features({
        "example": Value("string"), "source": Value("string"), "input_ids": ints, "labels": ints,
        **{name: Value("int32") for name in NUMBERS[:5]}, **{name: Value("bool") for name in NUMBERS[5:8]},
        "exact_key": Value("int64"), "normal_key": Value("int64"), "minhash": List(Value("uint32")),
        "window": Value("int32"), "marker": Value("int32"),
        **(_pair_features(ints, Value) if pairs else {}),
    })
    procs = max(1, min(num_proc, len(rows) // 1000))  # datasets runs even num_proc=1 in a worker: pass None
    return rows.map(RowMap(encoder, pairs), batched=True, batch_size=500, features=features,
                    remove_columns=rows.column_names, num_proc=procs if procs > 1 else None,
                    new_fingerprint=f"tunesmith-encode-{id(rows)}",
                    desc="tokenizing")


def build(data: DataConfig, batch_size: int, tokenizer, work: Path, out: Path) -> Built:
    """Prepare `data` into `out` (train/, test/, template.json) and return the report."""
    test_path, test_split, test_source = held_out_source(data)
    loaded = _load(data, data.path, data.format, work, "train" if test_split else None)
    template = resolve_template(data.template, tokenizer)
    encoder = Encoder(tokenizer, template, data.max_length, data.truncation_side, data.train_on_prompt,
                      data.window_overlap)
    pairs = loaded.chosen_format == "preference"
    if pairs and data.packing:
        raise TunesmithError("data.packing: preference pairs cannot be packed; set data.packing: false")
    rows_loaded = len(loaded.rows)
    encoded = encode_rows(loaded.rows, encoder, data.num_proc, pairs)
    loaded.rows = None  # unmap the raw rows: they are all in `encoded` now
    test_loaded = None
    if test_path:
        test_loaded = _load(data, test_path, loaded.chosen_format, work, test_split)
        rows_loaded += len(test_loaded.rows)
        test_encoded = encode_rows(test_loaded.rows, encoder, data.num_proc, pairs)
        test_loaded.rows = None
        train, test = Part(encoded, np.arange(len(encoded))), Part(test_encoded, np.arange(len(test_encoded)))
    else:
        windows = encoded.data.column("window").to_numpy()
        train_idx, test_idx = split_by_document(windows, data.test_size, data.seed)
        train, test = Part(encoded, train_idx), Part(encoded, test_idx)
    numbers, test_numbers = train.numbers(pairs), test.numbers(pairs)
    keep = (numbers["length"] > 0) & (numbers["trained_tokens"] > 0)
    if pairs:
        keep &= numbers["rejected_response_kept"] > 0
    leakage = find_leakage(numbers, test_numbers, train.prompts, test.prompts)
    found = _checks(data, tokenizer, template, loaded, train, numbers, leakage, test)
    if pairs:
        found += preference.check_pairs(numbers, train.sources)
    train_rows = save_split(train, keep, out / "train", data.max_length if data.packing else None)
    save_split(test, None, out / "test", None)
    template.save(out / TEMPLATE_FILE)
    report = assemble(
        data=data, batch_size=batch_size, tokenizer=tokenizer, template=template, loaded=loaded,
        test_loaded=test_loaded, rows_loaded=rows_loaded,
        numbers=numbers, keep=keep, n_test=len(test.indices), n_train_rows=train_rows, leakage=leakage,
        test_sources=test.sources, train_sources=train.sources, within_train=duplicate_count(numbers["exact_key"]),
        checks=found, test_source=test_source, answer_length=auto_max_new_tokens(test_numbers["response_tokens"]),
        documents=document_counts(numbers["window"], test_numbers["window"], numbers["trained_tokens"][keep])
        if loaded.chosen_format == "text" else None,
    )
    return Built(report, template, [c for c in found if c.status == "error"])


def save_split(part: Part, keep: np.ndarray | None, folder: Path, pack_to: int | None) -> int:
    """Stream the kept rows of a split into a `save_to_disk` folder (packed when `pack_to` is set)."""
    from datasets import Features, List, Value

    indices = part.indices if keep is None else part.indices[keep]
    pairs = preference.COLUMNS[0] in part.dataset.column_names
    out_columns = OUT_COLUMNS + (preference.COLUMNS if pairs else [])
    batches = selected_batches(source_files(part.dataset), indices, out_columns)
    columns = dict.fromkeys(OUT_COLUMNS[:2] + (preference.COLUMNS if pairs else []), List(Value("int32")))
    if pack_to:
        batches = pack_stream(batches, pack_to)
        columns["position_ids"] = List(Value("int32"))
    features = Features({**columns, "example": Value("string"), "source": Value("string")})
    return save_batches(batches, features, folder)


def held_out_source(data: DataConfig) -> tuple[str | None, str | None, str]:
    """(test file, its split, how the report names it): data.test_path, a saved DatasetDict's own 'test'
    split, or None for a seeded split of data.path by data.test_size."""
    if data.test_path:
        return data.test_path, None, f"data.test_path ({data.test_path})"
    if {"train", "test"} <= set(saved_splits(Path(data.path))):
        return data.path, "test", "the 'test' split of the saved dataset (data.test_size not used)"
    return None, None, f"a seeded split of data.path (data.test_size={data.test_size}, data.seed={data.seed})"


def _load(data: DataConfig, path: str, fmt: str, work: Path, split: str | None = None) -> LoadResult:
    return load_rows(path, fmt, data.fields, data.on_bad_rows, system_prompt=data.system_prompt, work_dir=work,
                     max_bad_fraction=data.max_bad_rows_fraction, split=split)


def _checks(data, tokenizer, template, loaded, train: Part, numbers, leakage, test: Part) -> list[ck.Check]:
    test_sources, n_test = test.sources, len(test.indices)
    sample = train.first(PAD_SAMPLE)
    return [
        ck.check_eos(numbers["eos_in_labels"], tokenizer.eos_token, train.sources),
        ck.check_pad_eos(tokenizer.pad_token_id, tokenizer.eos_token_id, numbers["eos_masked"], sample,
                         train.sources),
        ck.check_double_bos(numbers["double_bos"], tokenizer.bos_token, train.sources),
        ck.check_truncation(numbers["response_tokens"], numbers["response_kept"], data.max_length, train.sources),
        ck.check_leakage(leakage, n_test, test_sources),
        ck.check_masked(numbers["length"], numbers["trained_tokens"], train.sources),
        ck.check_template(template, tokenizer, text_only=loaded.chosen_format == "text"),
        ck.check_double_template(numbers["marker"], template_markers(template, tokenizer.all_special_tokens),
                                 template.name, train.sources),
    ]


def _pair_features(ints, value) -> dict:
    """Columns RowMap adds for preference rows (data/preference.py)."""
    return {"rejected_input_ids": ints, "rejected_labels": ints, "rejected_response_kept": value("int32"),
            "rejected_response_tokens": value("int32"), "same_answer": value("bool"),
            "same_after_truncation": value("bool")}
