"""End to end on the embedded SmolLM2-135M-Instruct (converted from its GGUF once, then cached)."""

import pytest
import torch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded():
    from tunesmith.loading import load_for_use

    return load_for_use("smollm2-135m-instruct")


def test_embedded_model_knows_the_capital_of_france(embedded):
    from tunesmith.data.tokenize import encode_prompt

    question = [{"role": "user", "content": "What is the capital of France?"}]
    ids = encode_prompt(embedded.tokenizer, embedded.template, question)
    with torch.no_grad():
        out = embedded.model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False)
    answer = embedded.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    assert "Paris" in answer


def test_embedded_template_is_the_models_chat_template(embedded):
    assert embedded.template.name == "chat"
    prompt = embedded.template.prompt([{"role": "user", "content": "hi"}])
    assert prompt.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
