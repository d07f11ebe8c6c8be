"""`tunesmith check RUN_DIR`: every way of running the model renders the same prompt, stops on the
same ids and, in fp32, generates the same answer. Also run at the end of `run` and `export`.

For a handful of test prompts (the first rows of data/test, or three built-in ones) it puts side by
side the prompt token ids of

- training: the prompt part of the prepared test row (the tokenization training used),
- eval: `encode_prompt` with the run's data template (data/template.json), as evaluate/ renders,
- generate/serve: `load_for_use(RUN_DIR)` and the template saved beside the weights (the engine's path),
- adapter/ (or model/): plain transformers, the saved tokenizer's `apply_chat_template`,
- export: plain transformers on a merged export folder (`--export DIR`), and its `model.gguf`'s chat
  template, when there is one;

the stop ids of each (the id training ended answers with must be among them), and the greedy
outputs of tunesmith's engine and of plain transformers (+ peft on adapter/, unmerged; and the
export). In fp32 the outputs must be identical; in bf16, where kernels may differ, the share of
identical outputs and the first divergence are reported. Any ✗ makes `tunesmith check` exit 1.
The result is written to RUN_DIR/check.json, which the report shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tunesmith.data.templates import Template
from tunesmith.data.tokenize import IGNORE_INDEX, encode_prompt
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir, atomic_write_json

CHECK_FILE = "check.json"
FALLBACK = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}],
    [{"role": "user", "content": "0 1 2"}, {"role": "assistant", "content": "3 4"}, {"role": "user", "content": "5"}],
]


@dataclass
class CheckResult:
    lines: list[str] = field(default_factory=list)  # the human table
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dtype: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        head = "✓ every path agrees" if self.ok else f"✗ {len(self.failures)} mismatch(es)"
        return "\n".join([*self.lines, *self.notes, head, *(f"  ✗ {f}" for f in self.failures)])

    def as_dict(self) -> dict:
        return {"ok": self.ok, "failures": self.failures, "notes": self.notes, "dtype": self.dtype,
                "summary": "all ✓" if self.ok else f"✗ {self.failures[0]}"}


def check(run_dir: str | Path, *, export: str | Path | None = None, prompts: int = 4, max_new_tokens: int = 24,
          dtype: str = "auto") -> CheckResult:
    """Compare every path on `prompts` test prompts; write RUN_DIR/check.json; return the result."""
    from tunesmith.engine import Sequence, generate, stop_token_ids
    from tunesmith.loading import load_for_use

    run = RunDir(Path(run_dir))
    if not run.config.is_file() or run.final_weights() is None:
        raise TunesmithError(f"{run.root} is not a trained run directory (config.yaml and adapter/ or model/)")
    loaded = load_for_use(run.root, dtype=dtype)
    weights = run.final_weights()
    tokenizer, policy = loaded.tokenizer, loaded.policy
    data_template = Template.load(run.template) if run.template.is_file() else loaded.template
    cases = _cases(run, prompts)
    result = CheckResult(dtype=policy.dtype)
    result.lines.append(f"check of {run.root}: {len(cases)} prompts, {policy.describe()}, greedy, "
                        f"max_new_tokens {max_new_tokens}")

    plain_paths = {"adapter/" if (weights / "adapter_config.json").is_file() else "model/": weights}
    if export is not None:
        plain_paths["export"] = Path(export)
    renders = {"eval": lambda m, i: encode_prompt(tokenizer, data_template, m, i),
               "generate/serve": lambda m, i: encode_prompt(tokenizer, loaded.template, m, i)}
    for name, folder in plain_paths.items():
        renders[name] = _chat_template_render(folder)
    gguf = Path(export) / "model.gguf" if export is not None else None
    if gguf is not None and gguf.is_file():
        renders["gguf"] = _gguf_render(gguf, folder=Path(export))

    # prompt ids, side by side
    for k, (messages, input_text, training_ids) in enumerate(cases):
        reference = training_ids if training_ids is not None else renders["eval"](messages, input_text)
        cells = [f"prompt {k}: training {'✓' if training_ids is not None else '–'} {len(reference)} ids"]
        for name, render in renders.items():
            if input_text and name not in ("eval", "generate/serve"):
                cells.append(f"{name} – (alpaca input has no chat-template form)")
                continue
            ids = render(messages, input_text)
            problem = _first_difference(reference, ids, tokenizer)
            cells.append(f"{name} {'✗' if problem else '✓'}")
            if problem:
                result.failures.append(f"prompt {k}, {name} prompt ids: {problem}")
        result.lines.append(" | ".join(cells))

    # stop ids
    taught = _taught_stops(run, prompts, tokenizer) or {tokenizer.eos_token_id}
    engine_stops = stop_token_ids(loaded.model, tokenizer, loaded.template.stop_strings)
    stops = {"eval/generate/serve": engine_stops}
    for name, folder in plain_paths.items():
        stops[name] = _generation_eos(folder)
    if "gguf" in renders:
        from tunesmith.models import gguf_metadata

        eos = gguf_metadata(gguf).get("eos_token_id")
        stops["gguf"] = {int(eos)} if eos is not None else set()
    cells = [f"stop ids: training ends answers with {sorted(taught)}"]
    for name, ids in stops.items():
        missing = taught - ids
        cells.append(f"{name} {sorted(ids)} {'✗' if missing else '✓'}")
        if missing:
            result.failures.append(f"{name} does not stop on {sorted(missing)} (training's end of answer)")
    result.lines.append(" | ".join(cells))

    # greedy outputs: tunesmith's engine vs plain transformers
    chat_cases = [(m, i) for m, i, _ in cases if not i]
    prompt_ids = [encode_prompt(tokenizer, loaded.template, m, i) for m, i in chat_cases]
    sequences = [Sequence(ids, max_new_tokens, stop_strings=loaded.template.stop_strings) for ids in prompt_ids]
    generate(loaded.model, tokenizer, sequences, engine_stops)
    for name, folder in plain_paths.items():
        model = _plain_model(run, folder, policy.torch_dtype)
        outputs = [_plain_greedy(model, ids, max_new_tokens, stops[name] or engine_stops, tokenizer.pad_token_id)
                   for ids in prompt_ids]
        same, first = 0, None
        for k, (seq, plain) in enumerate(zip(sequences, outputs, strict=True)):
            plain = plain[: len(seq.token_ids)] if seq.stopped == "stop_string" else plain
            problem = _first_difference(seq.token_ids, plain, tokenizer)
            same += problem is None
            first = first or (f"prompt {k}: {problem}" if problem else None)
        line = f"greedy outputs, tunesmith engine vs plain transformers on {name}: {same}/{len(sequences)} identical"
        result.lines.append(line + ("" if first is None else f" (first divergence: {first})"))
        if first is not None and policy.dtype == "fp32":
            result.failures.append(f"greedy output of plain transformers on {name} differs in fp32: {first}")
        elif first is not None:
            result.notes.append(f"note: in {policy.dtype} kernels may differ; --dtype fp32 compares exactly")
        del model
    atomic_write_json(run.root / CHECK_FILE, result.as_dict() | {"lines": result.lines})
    return result


def _cases(run: RunDir, limit: int) -> list[tuple[list[dict], str, list[int] | None]]:
    """(messages, alpaca input, training's prompt ids or None) for the first test rows."""
    rows = _test_rows(run, limit)
    if not rows:
        return [(messages, "", None) for messages in FALLBACK[:limit]]
    from tunesmith.evaluate.examples import examples_from_rows

    cases = []
    for example, row in zip(examples_from_rows(rows), rows, strict=False):
        trained = next((k for k, label in enumerate(row["labels"]) if label != IGNORE_INDEX), len(row["labels"]))
        cases.append((example.messages, example.input_text, list(row["input_ids"][:trained])))
    return cases


def _test_rows(run: RunDir, limit: int) -> list[dict]:
    folder = run.data / "test"
    if not folder.is_dir():
        return []
    from datasets import load_from_disk

    test = load_from_disk(str(folder))
    return [test[k] for k in range(min(limit, len(test)))]


def _taught_stops(run: RunDir, limit: int, tokenizer) -> set[int]:
    """The token training taught each test answer to end with: its first special token (EOS, which a
    chat template may follow with a newline), else its last trained token."""
    special = set(tokenizer.all_special_ids)
    taught = set()
    for row in _test_rows(run, limit):
        answer = [label for label in row["labels"] if label != IGNORE_INDEX]
        if answer:
            taught.add(next((label for label in answer if label in special), answer[-1]))
    return taught


def _first_difference(expected: list[int], got: list[int], tokenizer) -> str | None:
    if expected == got:
        return None
    k = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), min(len(expected), len(got)))

    def token(ids: list[int]) -> str:
        return repr(tokenizer.convert_ids_to_tokens(ids[k])) if k < len(ids) else "(end)"

    return f"first differing token at {k}: expected {token(expected)}, got {token(got)}"


def _chat_template_render(folder: Path):
    from transformers import AutoTokenizer

    return _render_with(AutoTokenizer.from_pretrained(folder))


def _gguf_render(gguf: Path, folder: Path):
    from transformers import AutoTokenizer

    from tunesmith.models import gguf_metadata

    plain = AutoTokenizer.from_pretrained(folder)
    plain.chat_template = gguf_metadata(gguf).get("chat_template") or None
    return _render_with(plain)


def _render_with(plain):
    """apply_chat_template as plain transformers users call it (no template at all: no ids, a mismatch)."""

    def render(messages: list[dict], input_text: str) -> list[int]:
        if not plain.chat_template:
            return []
        text = plain.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return plain(text, add_special_tokens=False).input_ids

    return render


def _generation_eos(folder: Path) -> set[int]:
    path = folder / "generation_config.json"
    if not path.is_file():
        return set()
    eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
    return set(eos) if isinstance(eos, list) else {eos} if eos is not None else set()


def _plain_model(run: RunDir, folder: Path, dtype):
    """Plain transformers (+ peft for an adapter, unmerged): what a user without tunesmith runs."""
    from transformers import AutoModelForCausalLM

    from tunesmith.models import resolve_model

    if not (folder / "adapter_config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    from peft import PeftModel

    raw = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    base = AutoModelForCausalLM.from_pretrained(resolve_model(str(raw["model"])).path, dtype=dtype)
    return PeftModel.from_pretrained(base, folder).eval()


def _plain_greedy(model, ids: list[int], max_new_tokens: int, stops: set[int], pad_id) -> list[int]:
    import torch

    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(stops),
                             pad_token_id=pad_id)
    new = out[0, len(ids):].tolist()
    end = next((k for k, token in enumerate(new) if token in stops), len(new))
    return new[:end]
