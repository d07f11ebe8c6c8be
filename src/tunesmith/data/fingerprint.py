"""What prepared data depends on, hashed: the data files' bytes, the data settings, the tokenizer.

Any change to one of them changes the fingerprint, so a cache built with another tokenizer (or
file, or setting) is never reused. `num_proc` changes how fast, not what, and is left out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tunesmith.config import DataConfig
from tunesmith.data.tokenize import adds_bos
from tunesmith.errors import TunesmithError

PREP_VERSION = 3  # bump when prep's output changes for the same inputs (3: windows, weights, answer length)
CHUNK = 1 << 20


def fingerprint(data: DataConfig, tokenizer) -> dict:
    """{"fingerprint": hex, plus the parts it was made from}."""
    settings = data.model_dump(mode="json", exclude={"num_proc"})
    parts = {
        "version": PREP_VERSION,
        "data_file": content_digest(Path(data.path), "data.path"),
        "test_file": content_digest(Path(data.test_path), "data.test_path") if data.test_path else None,
        "tokenizer": tokenizer_digest(tokenizer),
        "settings": settings,
    }
    whole = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return {"fingerprint": whole, **parts}


def content_digest(path: Path, field: str) -> str:
    """sha256 of a file's bytes, or of every file's relative name and bytes in a folder."""
    if not path.exists():
        raise TunesmithError(f"{field}: {path} does not exist")
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    return digest.hexdigest()


def tokenizer_digest(tokenizer) -> str:
    """Vocabulary, merges, normaliser, special tokens, chat template and BOS behaviour."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    extra = {
        "class": type(tokenizer).__name__, "special": tokenizer.special_tokens_map,
        "chat_template": getattr(tokenizer, "chat_template", None), "adds_bos": adds_bos(tokenizer),
        "ids": [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id],
    }
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()
