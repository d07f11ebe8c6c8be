"""The run configuration: pydantic models that are the single source of defaults and help text.

A YAML file is validated against `Config`; `--set section.key=value` overrides are applied
before validation. Errors name the field, show what was given, and hint at the fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunesmith.errors import TunesmithError

EMBEDDED_MODEL = "smollm2-135m-instruct"


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraConfig(Section):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: float = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input (0 = off, as in peft).")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules to adapt: 'all-linear' or a list of module names."
    )
    use_dora: bool = Field(False, description="DoRA: learn each weight's magnitude apart from its direction (peft).")
    use_rslora: bool = Field(False, description="rsLoRA: scale adapters by alpha / sqrt(r) instead of alpha / r.")


class PreferenceConfig(Section):
    """Settings of the preference objectives (train.objective dpo, orpo or simpo)."""

    beta: float = Field(0.1, gt=0, description="DPO: how strongly the policy is held to the reference model.")
    orpo_lambda: float = Field(0.1, gt=0, description="ORPO: weight of the odds-ratio term beside the SFT loss.")
    simpo_beta: float = Field(2.0, gt=0, description="SimPO: scale of the length-normalised reward.")
    simpo_gamma: float = Field(1.0, ge=0, description="SimPO: target reward margin between chosen and rejected.")


class DataConfig(Section):
    path: str = Field("examples/lumen_faq.jsonl", description="Training data: a file or a folder.")
    test_path: str | None = Field(None, description="Separate test data; if set, test_size is ignored.")
    format: Literal["auto", "qa", "alpaca", "prompt_completion", "messages", "text", "preference"] = Field(
        "auto", description="Row shape; 'auto' guesses from the columns and says what it chose."
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Map canonical field names to your columns, e.g. {question: q, answer: a}.",
    )
    template: str = Field(
        "auto",
        description="Prompt template: auto, alpaca, qa, chatml, none, or a format string with {prompt}.",
    )
    system_prompt: str | None = Field(None, description="System message added to every example.")
    max_length: int = Field(512, ge=8, description="Maximum tokens per example (prompt + response).")
    truncation_side: Literal["left", "right"] = Field("right", description="Which end truncation cuts.")
    train_on_prompt: bool = Field(False, description="Also compute the loss on prompt tokens.")
    packing: bool = Field(False, description="Pack examples into full rows (no cross-attention).")
    test_size: float = Field(0.1, gt=0, description="Held-out share (< 1) or count (>= 1) of examples "
                             "(of documents, for raw text split into windows: a document stays on one side).")
    seed: int = Field(42, description="Seed of the train/test split.")
    on_bad_rows: Literal["auto", "error", "skip"] = Field(
        "auto",
        description="Rows that cannot be used: 'auto' skips them when they are at most data.max_bad_rows_fraction "
        "of the file and stops otherwise; 'error' always stops; 'skip' always skips. Skipped rows are listed, "
        "with line and reason, in the data report.",
    )
    max_bad_rows_fraction: float = Field(
        0.01, ge=0, le=1, description="With on_bad_rows: auto, the largest share of bad rows that is skipped."
    )
    window_overlap: int = Field(
        0, ge=0,
        description="Raw text longer than max_length is split into windows of max_length tokens; each window "
        "after the first repeats this many tokens of the one before as (untrained) context.",
    )
    num_proc: int = Field(1, ge=1, description="Processes for tokenization.")

    @model_validator(mode="after")
    def _test_size_is_count_or_fraction(self) -> DataConfig:
        if self.test_size >= 1 and self.test_size != int(self.test_size):
            raise ValueError("test_size must be a fraction below 1 or a whole count of examples")
        if self.window_overlap >= self.max_length:
            raise ValueError(f"window_overlap ({self.window_overlap}) must be below max_length ({self.max_length})")
        return self


class TrainConfig(Section):
    method: Literal["lora", "full", "qlora"] = Field("lora", description="Fine-tuning method.")
    objective: Literal["sft", "dpo", "orpo", "simpo"] = Field(
        "sft", description="sft: next-token loss on responses; dpo, orpo, simpo: preference tuning on "
        "{prompt, chosen, rejected} rows."
    )
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig)
    neftune_alpha: float | None = Field(
        None, gt=0, description="NEFTune: uniform noise of this scale on input embeddings while training (e.g. 5)."
    )
    epochs: float = Field(3, gt=0, description="Passes over the training split.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step, per device.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warmup.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="'auto' picks bf16 where the hardware has it, else fp16 on GPU, else fp32."
    )
    full_weights: Literal["auto", "bf16-master", "fp32-autocast"] = Field(
        "auto", description="How method 'full' holds the weights when it computes in bf16: 'bf16-master' = bf16 "
        "weights (no per-step casts) and fp32 master copies that AdamW updates, checkpoints save and the saved "
        "model is; 'fp32-autocast' = fp32 weights cast to bf16 by autocast every step; 'auto' = fp32-autocast, "
        "measured faster and leaner on a CPU (bench/README.md); bf16-master needs one process."
    )
    gradient_checkpointing: bool | Literal["auto"] = Field(
        "auto", description="Trade compute for memory; 'auto' lets the memory estimate decide."
    )
    compile: bool | Literal["auto"] = Field(
        "auto",
        description="torch.compile each transformer layer (fuses the small element-wise ops); 'auto' = when "
        "the estimated training time pays back the compile time.",
    )
    fuse_projections: bool = Field(
        True, description="One matrix product per layer for q/k/v and one for gate/up (LoRA A matrices likewise); "
        "the same numbers as separate products with fewer operations (bench/README.md has what it measured)."
    )
    share_prefix: bool = Field(
        True, description="Run the leading tokens that every row of a micro-batch shares and trains none of (a chat "
        "template's system prompt) once per micro-batch instead of once per row; the same loss and gradients. "
        "Not for packed rows (data.packing).",
    )
    attention: Literal["auto", "sdpa", "eager", "short_rows"] = Field(
        "auto",
        description="Attention kernel. 'auto': SDPA, and on a CPU tunesmith's short-row kernel (SDPA's fused "
        "forward, a matmul backward) for batches up to short_rows_max_width tokens; 'sdpa', 'eager', "
        "'short_rows': that kernel for every batch ('short_rows' runs SDPA off a CPU).",
    )
    short_rows_max_width: int = Field(
        256, ge=0, description="With attention 'auto' on a CPU: the widest batch, in tokens, that uses the "
        "short-row kernel (the cross-over measured on a 2-core CPU; see bench/README.md). 0 = never."
    )
    remeasure_hardware: bool = Field(
        False, description="Probe this machine's matmul and element-wise speeds again, instead of using the "
        "figures cached for it in $TUNESMITH_HOME/hardware.json (the training header shows which)."
    )
    lora: LoraConfig = Field(default_factory=LoraConfig)
    log_every: int = Field(5, ge=1, description="Steps between train_log.jsonl records.")
    eval_every: int | None = Field(None, ge=1, description="Steps between eval-loss measurements.")
    eval_generate: int = Field(
        0, ge=0, description="Test examples answered at each eval (and at the end); their task metric "
        "(ROUGE-L or F1) is logged beside eval loss. 0 = off."
    )
    best_metric: Literal["eval_loss", "generation"] = Field(
        "eval_loss", description="What keep_best and early stopping follow: eval loss, or the eval_generate metric."
    )
    save_every: int = Field(50, ge=1, description="Steps between checkpoints.")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    early_stopping_patience: int | None = Field(None, ge=1, description="Evals without improvement.")
    keep_best: bool = Field(False, description="Final model = the checkpoint with the best eval loss.")
    resume: Literal["auto", "never", "always"] = Field("auto", description="Resume from a checkpoint.")
    fsdp: bool = Field(False, description="Shard with FSDP under torchrun (else DDP).")
    report_to: Literal["none", "tensorboard", "wandb"] = Field("none", description="Extra logging.")
    seed: int = Field(42, description="Seed for data order, adapter init and dropout.")

    @model_validator(mode="after")
    def _generation_metric_needs_examples(self) -> TrainConfig:
        if self.best_metric == "generation" and not self.eval_generate:
            raise ValueError("best_metric 'generation' needs eval_generate > 0 (test examples to answer)")
        return self


class JudgeConfig(Section):
    base_url: str = Field(description="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field(description="Model name the judge endpoint serves.")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (none = no key).")
    max_tokens: int = Field(96, ge=8, description="Tokens the judge may write per verdict.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for one judge reply.")


class EvalConfig(Section):
    max_new_tokens: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="Generation limit per answer; 'auto' = from the test answers' token lengths (their p95 "
        "x 1.25 + 8, between 32 and 512), printed by prep and recorded in data_report.json.",
    )
    batch_size: int = Field(16, ge=1, description="Prompts generated together.")
    few_shot: int = Field(3, ge=0, description="Examples from train put in the prompt-engineering baseline.")
    extract: str | None = Field(None, description="Regex that pulls the answer out before matching.")
    task_type: Literal["auto", "extraction", "expansion"] = Field("auto", description="Which metrics lead.")
    max_examples: int | None = Field(None, ge=1, description="Evaluate at most this many test examples.")
    choices_path: str | None = Field(
        None, description="Multiple-choice JSONL scored by log-likelihood ({question, choices, answer} or ARC's shape)."
    )
    forgetting: bool = Field(
        True, description="Score base and tuned on the bundled general-knowledge set (ARC-Easy): what tuning cost."
    )
    forgetting_size: int = Field(200, ge=1, le=200, description="Questions of the bundled set scored (at most 200).")
    judge: JudgeConfig | None = Field(
        None, description="An OpenAI-compatible model that grades answers: {base_url, model, api_key_env}."
    )
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="dtype eval/compare/check run the model in ('auto': bf16 where the hardware computes "
        "it natively, else fp16 on GPU, else fp32; chat/generate/serve/export take --dtype)."
    )


class Config(Section):
    model: str = Field(EMBEDDED_MODEL, description="Hub id, local folder, .gguf file, or the embedded default.")
    run_dir: str = Field("runs/quickstart", description="Where everything this run writes goes.")
    trust_remote_code: bool = Field(False, description="Allow model code from the hub (off for safety).")
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# ---------------------------------------------------------------- loading and overrides


def parse_override(item: str) -> tuple[list[str], Any]:
    """`train.max_steps=20` -> (['train', 'max_steps'], 20). Values are parsed as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise TunesmithError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.max_steps=20")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError):
        value = raw
    if value is None and raw.strip() not in ("null", "~", "None"):
        value = raw  # e.g. a regex starting with '#', which YAML would read as a comment
    elif value == "None":
        value = None
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted key in a nested dict (copying nothing the caller keeps)."""
    for item in overrides:
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise TunesmithError(f"--set {item!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return raw


CONFIG_SUFFIXES = (".yaml", ".yml")


def is_config_file(path: str | Path) -> bool:
    """A YAML config (by its extension); anything else given where a config goes is a data file or folder."""
    return Path(path).suffix.lower() in CONFIG_SUFFIXES


def data_file_defaults(path: str | Path) -> dict[str, Any]:
    """The config of `tunesmith run my_data.jsonl`: every default, this data, run_dir runs/<file name stem>."""
    data = Path(path)
    if not data.exists():
        raise TunesmithError(
            f"{path} does not exist: give a data file (JSONL, JSON, CSV, Parquet, .txt), a folder of them, "
            "or a YAML config (.yaml)"
        )
    stem = data.stem if data.is_file() else data.resolve().name
    return {"run_dir": f"runs/{stem or 'data'}", "data": {"path": str(path)}}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """A YAML config, or a data file with every other setting at its default; `--set` overrides; validated.

    `path` ending in .yaml/.yml is read as a config; any other path is the training data
    (`data.path`), with `run_dir` = runs/<its name without extension>.
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None and not is_config_file(path):
        raw, source = data_file_defaults(path), str(path)
    elif path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TunesmithError(f"config file {path} does not exist") from None
        except OSError as err:
            raise TunesmithError(f"cannot read config {path}: {err.strerror}") from None
        except UnicodeDecodeError as err:
            raise TunesmithError(f"{path}: not UTF-8 text (byte {err.start + 1}); save the config as UTF-8") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise TunesmithError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
        except RecursionError:
            raise TunesmithError(f"{path}: nested too deeply to be a tunesmith config") from None
        if not isinstance(raw, dict):
            raise TunesmithError(f"{path}: the config must be a mapping of keys to values")
    raw = apply_overrides(raw, overrides or [])
    return validate_config(raw, source, overrides or [])


def validate_config(raw: dict[str, Any], source: str = "config", overrides: list[str] = ()) -> Config:
    """Validate; each error is blamed on the `--set` that gave the value, else on `source`."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        errors = _merge_union_errors(err.errors())
        lines = list(dict.fromkeys(_blame(e, source, overrides) + _describe(e) for e in errors))
        more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
        raise TunesmithError("; ".join(lines[:5]) + more) from None


def _blame(error: dict[str, Any], source: str, overrides: list[str]) -> str:
    field = ".".join(str(p) for p in error["loc"])
    for item in reversed(overrides):  # the last --set of a key is the one that counts
        key = item.partition("=")[0].strip()
        if field == key or field.startswith(key + ".") or key.startswith(field + "."):
            return f"--set {_clip(item)}: "
    return f"{source}: "



def _merge_union_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A value that fits no member of a union (int | 'auto') gives one error per member, each with the
    member's name appended to the field path: make it one error on the field, listing what fits."""
    merged: dict[tuple, dict[str, Any]] = {}
    for error in errors:
        loc = tuple(str(p) for p in error["loc"])
        field_path = _field_path(loc)
        if field_path == loc or error["type"] == "extra_forbidden":
            merged[loc] = error
            continue
        first = merged.setdefault(field_path, {**error, "loc": field_path, "msg": "", "type": "union"})
        first["msg"] += (" or " if first["msg"] else "") + error["msg"].removeprefix("Input should be ")
    for error in merged.values():
        if error["type"] == "union":
            error["msg"] = "Input should be " + error["msg"]
    return list(merged.values())


def _field_path(loc: tuple[str, ...]) -> tuple[str, ...]:
    """The part of a pydantic error location that names config fields (without union-member names)."""
    model: type[BaseModel] | None = Config
    for index, part in enumerate(loc):
        field = model.model_fields.get(part) if model else None
        if field is None:
            return loc[:index] if index else loc
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None:
            return loc[:index + 1]
    return loc


def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as `field: problem (hint)`."""
    loc = [str(p) for p in error["loc"]]
    field = ".".join(loc)
    if error["type"] == "extra_forbidden":
        section = _section_at(loc[:-1])
        names = list(section.model_fields) if section else []
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        hint = f"did you mean '{'.'.join(loc[:-1] + close)}'?" if close else "known keys: " + ", ".join(names)
        return f"unknown key '{field}' ({hint})"
    msg = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    shown = "" if isinstance(given, dict) else f", got {_clip(repr(given))}"
    return f"{field or 'config'}: {msg}{shown}"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _section_at(path: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def field_help(model: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, description) for every leaf setting; `--help` prints this."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += field_help(annotation, f"{prefix}{name}.")
        else:
            default = field.get_default(call_default_factory=True)
            options = choices(annotation)
            doc = field.description or ""
            rows.append((f"{prefix}{name}", repr(default), f"{doc} One of: {', '.join(options)}." if options else doc))
    return rows


def choices(annotation: Any) -> list[str]:
    """The allowed values of a field whose type is a Literal (or a bool/Literal union), else []."""
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    parts = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    if not any(get_origin(part) is Literal for part in parts):
        return []
    out: list[str] = []
    for part in parts:
        out += ["true", "false"] if part is bool else choices(part) or [_kind_of(part)]
    return out


def _kind_of(annotation: Any) -> str:
    """How --help names a non-literal member of a union: 'a number', 'null', ..."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return {int: "a whole number", float: "a number", str: "text", type(None): "null"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))
