"""The `tunesmith` command: a thin typer layer over the Python API.

`run`, `prep` and `train` take a YAML config or just a data file (every other setting at its
default); every command that takes a config accepts `--set section.key=value` (repeatable).
Third-party bars and warnings are off unless `-v` (tunesmith/quiet.py). User errors
(TunesmithError) print as one line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tunesmith import trust
from tunesmith.config import Config, field_help, load_config
from tunesmith.errors import TunesmithError
from tunesmith.quiet import configure as configure_output
from tunesmith.trust import TRUST_ENV

app = typer.Typer(
    help="Fine-tune a language model on your own data and prove, with numbers, whether it helped.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
console = Console(stderr=True)


def _settings_help() -> str:
    """Every config key with its default and description, generated from the pydantic models."""
    lines = ["Config keys (YAML, or --set section.key=value):"]
    lines += [f"  {key} = {default}  -- {doc}" for key, default, doc in field_help(Config)]
    return "\n\n".join(["\b\n" + "\n".join(lines)])


SETTINGS_HELP = _settings_help()
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", metavar="section.key=value",
        help="Override a config key, e.g. --set train.max_steps=20 (repeatable).",
    ),
]
ConfigArg = Annotated[Path, typer.Argument(
    metavar="DATA_OR_CONFIG",
    help="Your data (JSONL, JSON, CSV, Parquet, .txt, or a folder of them; run_dir becomes runs/<file name>) "
         "or a YAML config (.yaml) with the keys below.",
)]
DtypeOption = Annotated[
    str,
    typer.Option(help="Weights' dtype: auto (bf16 where the hardware computes it natively, else fp16 on GPU, "
                      "else fp32), bf16, fp16 or fp32. eval/compare take eval.dtype."),
]
OverwriteOption = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace trained weights already in run_dir (and the eval/report of them)."),
]
TargetArg = Annotated[str, typer.Argument(help="A run directory, exported folder, hub id, .gguf file or model name.")]


def _config(path: Path | None, overrides: list[str] | None) -> Config:
    return trust.gate(load_config(path, overrides or []))


@app.callback()
def options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show the libraries' progress bars, "
                                          "logs and warnings.")] = False,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code",
            envvar=TRUST_ENV,
            help="Allow a model's own Python code (config.json auto_map) to run. Only this flag or "
            f"{TRUST_ENV}=1 allows it, never a config file.",
        ),
    ] = False,
) -> None:
    """Fine-tune a language model on your own data and prove, with numbers, whether it helped."""
    configure_output(verbose)
    if trust_remote_code:
        trust.allow()


def _run_dir_config(run_dir: Path, overrides: list[str] | None) -> Config:
    """A run directory's resolved config (with overrides), so eval/compare see what training saw."""
    config_path = run_dir / "config.yaml" if run_dir.is_dir() else run_dir
    if not config_path.is_file():
        raise TunesmithError(f"{run_dir} is not a run directory (no config.yaml): give RUN_DIR of a `tunesmith run`")
    config = trust.gate(load_config(config_path, overrides or []))
    if run_dir.is_dir() and Path(config.run_dir).resolve() != run_dir.resolve():
        config = config.model_copy(update={"run_dir": str(run_dir)})
    return config


@app.command(epilog=SETTINGS_HELP)
def quickstart(set_: SetOption = None) -> None:
    """Run the whole cycle on the embedded model and the bundled example data."""
    from tunesmith.display import print_outcome
    from tunesmith.pipeline import quickstart as run_quickstart

    result = run_quickstart(overrides=set_ or [])
    print_outcome(result.table, result.run_dir)


@app.command(epilog=SETTINGS_HELP)
def run(config: ConfigArg, set_: SetOption = None, overwrite: OverwriteOption = False) -> None:
    """Prepare data, train, evaluate base vs few-shot vs tuned, and write the report."""
    resolved = _config(config, set_)
    from tunesmith.display import print_outcome
    from tunesmith.pipeline import run as run_pipeline

    print_outcome(run_pipeline(resolved, overwrite=overwrite).table, Path(resolved.run_dir))


@app.command(epilog=SETTINGS_HELP)
def prep(
    config: ConfigArg,
    set_: SetOption = None,
    show: Annotated[int, typer.Option(help="Print N prepared examples with masked tokens made visible.")] = 1,
) -> None:
    """Load, template, tokenize and split the data; print the data report."""
    resolved = _config(config, set_)
    from tunesmith.data.prepare import prepare
    from tunesmith.display import print_findings

    print_findings(prepare(resolved, show=show).summary)


@app.command(epilog=SETTINGS_HELP)
def train(
    config: ConfigArg,
    set_: SetOption = None,
    resume: Annotated[
        bool | None,
        typer.Option("--resume/--no-resume", help="Resume from the latest checkpoint (default: train.resume)."),
    ] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Fine-tune (LoRA or full) into the run directory; resumable."""
    resolved = _config(config, set_)
    from tunesmith.train import train as run_train
    from tunesmith.train.api import preflight

    preflight(resolved, resume=resume, overwrite=overwrite)  # refused before data/ is written
    if os.environ.get("RANK", "0") == "0":  # the data checks first (torchrun: once); training reuses the result
        from tunesmith.data.prepare import prepare
        from tunesmith.display import print_findings

        print_findings(prepare(resolved).summary)
    result = run_train(resolved, resume=resume, overwrite=overwrite)
    print(f"weights: {result.output_dir}")


@app.command(name="eval")
def eval_(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (or its config.yaml).")],
    set_: SetOption = None,
    model: Annotated[str, typer.Option(help="Which model to evaluate: tuned, base or few_shot.")] = "tuned",
) -> None:
    """Metrics of one model on the held-out split."""
    config = _run_dir_config(run_dir, set_)
    from tunesmith.evaluate import evaluate, format_table

    metrics = evaluate(config, model=model)
    print(format_table({model: metrics}))


@app.command()
def compare(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (or its config.yaml).")],
    set_: SetOption = None,
) -> None:
    """Base zero-shot vs base few-shot vs fine-tuned on the held-out split, plus the report."""
    config = _run_dir_config(run_dir, set_)
    from tunesmith.evaluate import compare as run_compare
    from tunesmith.evaluate import format_table
    from tunesmith.report import write_report

    metrics = run_compare(config)
    md, html = write_report(Path(config.run_dir))
    print(format_table(metrics))
    print(f"\nreport: {html}")


@app.command()
def score(
    predictions: Annotated[Path, typer.Argument(help="JSONL of {prompt, prediction, reference} from any system.")],
    baseline: Annotated[
        Path | None, typer.Option(help="Another system's answers to the same prompts, compared as the base.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for eval/ and the report.")] = None,
    task_type: Annotated[str, typer.Option(help="auto, extraction or expansion (which metrics lead).")] = "auto",
    extract: Annotated[str | None, typer.Option(help="Regex that pulls the answer out before matching.")] = None,
) -> None:
    """Score anyone's predictions: metrics, error tags, knowledge vs behaviour, and a report."""
    from tunesmith.evaluate import format_table
    from tunesmith.evaluate.score import score as run_score

    if task_type not in ("auto", "extraction", "expansion"):
        raise TunesmithError(f"--task-type {task_type!r}: choose auto, extraction or expansion")
    folder = out or predictions.with_name(predictions.stem + "_scored")
    metrics = run_score(predictions, folder, baseline=baseline, task_type=task_type, extract=extract)
    print(format_table(metrics))
    print(f"\nreport: {folder / 'report.html'}")


@app.command()
def pairs(
    run_dir: Annotated[Path, typer.Argument(help="An evaluated run directory (after compare or eval).")],
    model: Annotated[list[str] | None, typer.Option(help="Whose wrong answers to use (repeatable).")] = None,
    metric: Annotated[str | None, typer.Option(help="Score that decides wrong; default: the task's lead.")] = None,
    below: Annotated[float, typer.Option(help="An answer scoring under this is wrong.")] = 0.5,
    out: Annotated[Path | None, typer.Option(help="Where to write the JSONL (default RUN_DIR/pairs.jsonl).")] = None,
) -> None:
    """Preference pairs from the run's mistakes: {prompt, chosen: reference, rejected: the model's answer}."""
    from tunesmith.evaluate.pairs import make_pairs

    result = make_pairs(run_dir, tuple(model or ["tuned"]), metric, below, out)
    print(f"{result.written} pairs from {result.considered} answers ({result.metric} < {result.below}): {result.path}")
    print(f"next: tunesmith train CONFIG --set data.path={result.path} --set train.objective=dpo")


@app.command()
def chat(
    target: TargetArg,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy.")] = 0.7,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.9,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 256,
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling (repeatable answers).")] = None,
    dtype: DtypeOption = "auto",
) -> None:
    """Chat with a base or fine-tuned model in the terminal (/reset, /exit)."""
    from tunesmith.use.chat import chat as run_chat

    run_chat(target, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, system=system, seed=seed,
             dtype=dtype)


@app.command()
def generate(
    target: TargetArg,
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL or CSV of prompts.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="JSONL written in input order (default: to stdout).")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 256,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
    dtype: DtypeOption = "auto",
) -> None:
    """Batch-generate answers for a file of prompts (greedy by default, as eval); JSONL to stdout without -o."""
    import tempfile

    from tunesmith.use.generate_file import generate_file

    with tempfile.TemporaryDirectory(prefix="tunesmith-generate-") as scratch:
        written = output or Path(scratch) / "out.jsonl"
        result = generate_file(
            target, input, written, max_new_tokens=max_new_tokens, batch_size=batch_size,
            temperature=temperature, top_p=top_p, seed=seed, dtype=dtype,
        )
        if output is None:  # the JSONL is the output; the summary goes with the other messages
            sys.stdout.write(written.read_text(encoding="utf-8"))
            sys.stdout.flush()
            console.print(result.summary().replace(str(written), "stdout"), highlight=False)
        else:
            print(result.summary())


@app.command()
def serve(
    target: TargetArg,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="TUNESMITH_API_KEY", help="Require this Bearer token.")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Requests decoded together.")] = 8,
    dtype: DtypeOption = "auto",
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (sampling defaults are OpenAI's)."""
    from tunesmith.serve import serve as run_serve

    run_serve(target, host=host, port=port, api_key=api_key, max_batch=max_batch, dtype=dtype)


@app.command()
def ui(
    runs_dir: Annotated[Path, typer.Argument(help="Folder holding the run directories.")] = Path("runs"),
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8765,
    api_key: Annotated[str | None, typer.Option(envvar="TUNESMITH_API_KEY", help="Require this Bearer token.")] = None,
) -> None:
    """A local web dashboard: runs, live training, data, comparisons, a playground, new runs."""
    from tunesmith.ui import ui as run_ui

    run_ui(runs_dir, host=host, port=port, api_key=api_key)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with adapter/ or model/.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder to write the standalone model to (default: RUN_DIR/export).")] = None,
    merge: Annotated[bool, typer.Option("--merge/--no-merge", help="Merge the LoRA adapter into the base.")] = True,
    gguf: Annotated[bool, typer.Option(help="Also write a GGUF file (needs a converter).")] = False,
    dtype: Annotated[str, typer.Option(help="dtype of the written weights (the adapter is merged in fp32).")] = "fp32",
) -> None:
    """Write a standalone Hugging Face model folder (merged adapter, tokenizer, template), then `check` it."""
    from tunesmith.use.export import export as run_export

    folder = out or run_dir / "export"
    print(f"exported: {run_export(run_dir, folder, merge=merge, gguf=gguf, dtype=dtype)}")
    if (run_dir / "config.yaml").is_file():
        from tunesmith.use.check import check as run_check

        result = run_check(run_dir, export=folder)
        print(result.summary())
        if not result.ok:
            raise typer.Exit(1)


@app.command()
def check(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with adapter/ or model/.")],
    export: Annotated[Path | None, typer.Option(help="Also check this merged export folder (and its model.gguf).")]
    = None,
    prompts: Annotated[int, typer.Option(min=1, help="Test prompts to compare.")] = 4,
    dtype: DtypeOption = "auto",
) -> None:
    """Check that training, eval, generate/serve, plain transformers and the export all agree (exit 1 if not)."""
    from tunesmith.use.check import check as run_check

    result = run_check(run_dir, export=export, prompts=prompts, dtype=dtype)
    print(result.summary())
    if not result.ok:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors become one line and exit status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = [a for a in args if a in ("-v", "--verbose")]  # accepted after the command too
    args = verbose[:1] + [a for a in args if a not in ("-v", "--verbose")]
    try:
        app(args=args)
    except TunesmithError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
