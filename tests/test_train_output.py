"""adapter/ carries the training template as its chat template and the stop ids in generation_config.json."""

from __future__ import annotations

import json

import pytest
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer

from tiny import tiny_model, tiny_tokenizer
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import encode_prompt
from tunesmith.train.output import save_tokenizer_and_stops

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital?"}]


@pytest.mark.parametrize("name", ["qa", "alpaca", "chatml"])
def test_plain_transformers_on_adapter_renders_the_training_prompt(name, tmp_path):
    tokenizer = tiny_tokenizer()
    template = resolve_template(name, tokenizer)
    model = get_peft_model(tiny_model(tokenizer), LoraConfig(r=2, target_modules="all-linear"))
    save_tokenizer_and_stops(model, tokenizer, template, tmp_path)
    plain = AutoTokenizer.from_pretrained(tmp_path)
    rendered = plain.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert plain(rendered, add_special_tokens=False).input_ids == encode_prompt(tokenizer, template, MESSAGES)
    assert tokenizer.chat_template != plain.chat_template  # the training tokenizer itself is untouched
    eos = json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"]
    assert tokenizer.eos_token_id in (eos if isinstance(eos, list) else [eos])
