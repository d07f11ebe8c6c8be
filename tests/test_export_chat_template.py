"""The exported chat template renders exactly what the training template rendered, for every template."""

from __future__ import annotations

import pytest
from tokenizers import processors

from tiny import tiny_tokenizer
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import adds_bos, encode_prompt
from tunesmith.use.chat_template import template_as_jinja

CONVERSATIONS = [
    [{"role": "user", "content": "It's {odd}: \\\\ \"quoted\" \u00e9\u4e2d\n{{x}}"}],
    [{"role": "system", "content": "Be brief.\n"}, {"role": "user", "content": "q1"},
     {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}],
]
TEMPLATES = ["chat", "alpaca", "qa", "chatml", "none", "Q: {prompt}\n{{braces}} '{system}' A:"]


def bos_adding_tokenizer():
    tokenizer = tiny_tokenizer()
    bos = tokenizer.bos_token
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tokenizer.bos_token_id)]
    )
    return tokenizer


def other_eos_tokenizer():
    tokenizer = tiny_tokenizer()
    tokenizer.eos_token = "<pad>"  # chatml's <|im_end|> is then not EOS: training appends EOS to answers
    return tokenizer


@pytest.mark.parametrize("spec", TEMPLATES)
@pytest.mark.parametrize("make_tokenizer", [tiny_tokenizer, bos_adding_tokenizer, other_eos_tokenizer])
def test_exported_template_gives_the_training_prompt_ids(spec, make_tokenizer):
    if spec == "chat" and make_tokenizer is other_eos_tokenizer:
        pytest.skip("a model's own template is exported as it is (see use/chat_template.py)")
    tokenizer = make_tokenizer()
    template = resolve_template(spec, tokenizer)
    jinja = template_as_jinja(template, tokenizer)
    for messages in CONVERSATIONS:
        text = tokenizer.apply_chat_template(messages, chat_template=jinja, add_generation_prompt=True, tokenize=False)
        assert tokenizer(text, add_special_tokens=False).input_ids == encode_prompt(tokenizer, template, messages)
        if not adds_bos(tokenizer) and make_tokenizer is tiny_tokenizer:
            assert text == template.prompt(messages)
