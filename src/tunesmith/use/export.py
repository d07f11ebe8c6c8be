"""`tunesmith export RUN_DIR --merge --out DIR`: a standalone Hugging Face model folder from a run.

The LoRA adapter is merged into the base weights; the folder holds safetensors weights, the
tokenizer with its chat template set to the *training* template, a generation config whose EOS
ids stop where training taught the model to stop, and template.json for tunesmith itself.
Plain `transformers` loads it without tunesmith. `--gguf` also writes model.gguf with
llama.cpp's converter, when one is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tunesmith.data.templates import Template
from tunesmith.errors import TunesmithError
from tunesmith.loading import TEMPLATE_FILE, load_for_use
from tunesmith.runs import atomic_write_text, space_for
from tunesmith.train.output import save_tokenizer_and_stops

CONVERTER_ENV = "TUNESMITH_GGUF_CONVERTER"
CONVERTER_NAMES = ("convert_hf_to_gguf.py", "convert-hf-to-gguf")


def export(run_dir: str | Path, out: str | Path, *, merge: bool = True, gguf: bool = False,
           dtype: str = "fp32") -> Path:
    """Write the model of `run_dir` (or any model target) to the new folder `out`; return `out`.

    The adapter is merged in fp32 (as every command merges it at load); the weights are written in
    `dtype` (fp32 by default, so loading the export in any dtype gives what tunesmith runs in it).
    """
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TunesmithError(f"--out {out} already exists and is not empty; choose a new folder")
    converter = find_gguf_converter() if gguf else None
    if gguf and converter is None:
        raise TunesmithError(
            f"--gguf needs llama.cpp's converter, which was not found: set {CONVERTER_ENV}=/path/to/"
            "convert_hf_to_gguf.py (or put it on PATH), or export without --gguf and convert the folder later"
        )
    _check_source(Path(run_dir).expanduser(), merge)  # before minutes of loading
    loaded = load_for_use(run_dir, dtype=dtype, device="cpu", merge_adapter=merge)
    model = loaded.model
    write_standalone(model, loaded.tokenizer, loaded.template, out, source=loaded.name)
    if converter is not None:
        convert_to_gguf(converter, out)
    return out


def _check_source(source: Path, merge: bool) -> None:
    """A path-like source that is missing, or an adapter run with --no-merge, is refused up front."""
    local = source.is_absolute() or str(source).startswith(".") or len(source.parts) > 2 or (
        len(source.parts) == 2 and source.parent.is_dir()  # runs/missing, not a hub id like org/model
    )
    if not source.exists() and local:
        raise TunesmithError(f"{source} does not exist: give a run directory (with adapter/ or model/) or a model")
    adapter = source / "adapter" / "adapter_config.json"
    if not merge and (source / "config.yaml").is_file() and adapter.is_file():
        raise TunesmithError(f"{source} holds a LoRA adapter, which needs --merge to become a standalone model "
                             f"(the adapter alone is already in {adapter.parent})")


def write_standalone(model, tokenizer, template: Template, out: Path, source: str = "") -> None:
    """Save model + tokenizer + training template into `out`, atomically (a staging folder renamed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; a model folder is for others to read
    needed = sum(p.numel() * p.element_size() for p in model.parameters())
    with space_for(out, needed, staging):
        model.save_pretrained(staging, safe_serialization=True)
        save_tokenizer_and_stops(model, tokenizer, template, staging)
        template.save(staging / TEMPLATE_FILE)
        atomic_write_text(staging / "README.md", _model_card(source, template))
        if out.exists():
            out.rmdir()  # empty, checked by the caller
        staging.rename(out)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def find_gguf_converter() -> Path | None:
    """llama.cpp's HF -> GGUF script: $TUNESMITH_GGUF_CONVERTER, then PATH."""
    configured = os.environ.get(CONVERTER_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise TunesmithError(f"{CONVERTER_ENV}={configured} does not exist")
        return path
    found = next((shutil.which(name) for name in CONVERTER_NAMES if shutil.which(name)), None)
    return Path(found) if found else None


def convert_to_gguf(converter: Path, folder: Path) -> Path:
    """Run the converter on the exported folder, writing folder/model.gguf."""
    target = folder / "model.gguf"
    partial = folder / ".model.gguf.partial"
    command = [sys.executable, str(converter)] if converter.suffix == ".py" else [str(converter)]
    result = subprocess.run([*command, str(folder), "--outfile", str(partial)], capture_output=True, text=True)
    if result.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise TunesmithError(f"GGUF conversion failed (the Hugging Face export in {folder} is complete):\n{tail}")
    _check_gguf_metadata(partial, folder)
    partial.rename(target)
    return target


def _check_gguf_metadata(gguf: Path, folder: Path) -> None:
    """The GGUF must carry the training template and the stop ids, or it is not the model that was evaluated."""
    from tunesmith.models import gguf_metadata

    metadata = gguf_metadata(gguf)
    missing = [name for name in ("chat_template", "eos_token_id") if metadata.get(name) in (None, "")]
    if missing:
        gguf.unlink(missing_ok=True)
        raise TunesmithError(f"the converter wrote a GGUF without {' and '.join(missing)}; it was deleted "
                             f"(the Hugging Face export in {folder} is complete and carries them)")


def _model_card(source: str, template: Template) -> str:
    return (
        f"# {source or 'model'} (exported by tunesmith)\n\n"
        "Standalone weights (a LoRA adapter is merged in), loadable with\n"
        "`AutoModelForCausalLM.from_pretrained(<this folder>)`. The tokenizer's chat template is the\n"
        f"training template (`{template.name}`): `tokenizer.apply_chat_template(messages,\n"
        "add_generation_prompt=True)` renders prompts exactly as in training.\n"
    )
