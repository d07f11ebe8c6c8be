"""Shared test setup: never touch the network, and tiny random models built in memory."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# tiny models are dominated by per-op overhead: one thread is faster, and keeps parallel test
# processes (gloo, kill-and-resume) from oversubscribing the cores
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from tiny import save_tiny_model, tiny_model, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> "os.PathLike":
    """A tiny random model saved as a Hugging Face folder (built once per session)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def model(tokenizer):
    return tiny_model(tokenizer)
