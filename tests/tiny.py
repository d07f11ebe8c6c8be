"""Tiny random models and a tokenizer built in memory: no downloads, runs in seconds."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CORPUS = [
    "What is the capital of France? Paris is the capital of France.",
    "The quick brown fox jumps over the lazy dog. ### Question: ### Answer: ### Instruction: ### Response:",
    "Sprout Support: The Lumenfold Sprout costs $149 and includes nine starter pods.",
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "user assistant system hello world 0 1 2 3 4 5 6 7 8 9 #### answer",
]


def tiny_tokenizer(chat_template: bool = True, pad_token: str | None = "<pad>") -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (vocab ~300) trained on a few sentences; any text encodes."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<unk>",
        pad_token=pad_token,
    )
    if chat_template:
        wrapped.chat_template = CHATML
    return wrapped


def tiny_model(tokenizer=None, seed: int = 0, layers: int = 2, hidden: int = 64) -> LlamaForCausalLM:
    """A 2-layer Llama with random weights sized to the tokenizer."""
    tokenizer = tokenizer or tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def save_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write a tiny model + tokenizer as a Hugging Face folder (safetensors), for `model: <folder>`."""
    tokenizer = tiny_tokenizer()
    tiny_model(tokenizer, seed).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
