"""Helpers shared by the serve / chat / generate / export tests (no tests here).

Tiny models with *large* random weights, so greedy outputs vary from token to token and tests
can tell models apart; a hand-built run directory with a perturbed LoRA adapter; a uvicorn
server on a free loopback port in a background thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from tiny import tiny_model, tiny_tokenizer
from tunesmith.data.templates import resolve_template
from tunesmith.loading import LoadedModel


def lively_model(tokenizer, seed: int = 0):
    """A tiny Llama whose matrices are drawn wide enough that greedy decoding does not repeat one token."""
    model = tiny_model(tokenizer, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.15)
    return model.eval()


def tiny_loaded(template: str = "chat", seed: int = 0, name: str = "tiny") -> LoadedModel:
    tokenizer = tiny_tokenizer()
    return LoadedModel(lively_model(tokenizer, seed), tokenizer, resolve_template(template, tokenizer), name)


def save_lively_model(folder: Path, seed: int = 0) -> Path:
    tokenizer = tiny_tokenizer()
    lively_model(tokenizer, seed).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def make_run_dir(root: Path, base_dir: Path, template: str = "chat", seed: int = 0) -> Path:
    """A run directory as training leaves it: config.yaml + adapter/ (LoRA B perturbed) + templates."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunesmith.models import load_tokenizer

    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(f"model: {base_dir}\ndata:\n  template: {template}\n")
    tokenizer = load_tokenizer(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(root / "adapter", safe_serialization=True)
    tokenizer.save_pretrained(root / "adapter")
    resolved = resolve_template(template, tokenizer)
    resolved.save(root / "adapter" / "template.json")
    resolved.save(root / "data" / "template.json")
    return root


@contextmanager
def running_server(app, timeout: float = 20.0) -> Iterator[str]:
    """Serve `app` on a free 127.0.0.1 port in a thread; yield its base URL; stop it afterwards."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
