"""Every template renders the exact text expected; inference prompts are training prefixes."""

import pytest

from tunesmith.data.templates import Template, resolve_template
from tunesmith.errors import TunesmithError

QA = [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris"},
]


def joined(segments):
    return "".join(text for text, _ in segments)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("qa", "### Question:\nCapital of France?\n\n### Answer:\nParis<|im_end|>"),
        ("chatml", "<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\nParis<|im_end|>\n"),
        ("none", "Capital of France?Paris<|im_end|>"),
        ("Q: {prompt}\nA: ", "Q: Capital of France?\nA: Paris<|im_end|>"),
        ("chat", "<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\nParis<|im_end|>\n"),
        (
            "alpaca",
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nCapital of France?\n\n### Response:\nParis<|im_end|>",
        ),
    ],
)
def test_each_template_renders_exactly(tokenizer, spec, expected):
    template = resolve_template(spec, tokenizer)
    segments = template.segments(QA)
    assert joined(segments) == expected
    assert [trained for _, trained in segments] == [False, True]
    assert segments[1][0].startswith("Paris")


def test_auto_is_the_models_chat_template_or_alpaca():
    from tiny import tiny_tokenizer

    assert resolve_template("auto", tiny_tokenizer()).name == "chat"
    assert resolve_template("auto", tiny_tokenizer(chat_template=False)).name == "alpaca"


def test_alpaca_input_goes_into_its_slot(tokenizer):
    text = joined(resolve_template("alpaca", tokenizer).segments(QA, "in Europe"))
    assert "paired with an input" in text
    assert "### Instruction:\nCapital of France?\n\n### Input:\nin Europe\n\n### Response:\nParis" in text


@pytest.mark.parametrize("spec", ["qa", "chatml", "chat", "none"])
def test_input_is_appended_to_the_first_user_turn_where_there_is_no_slot(tokenizer, spec):
    segments = resolve_template(spec, tokenizer).segments(QA, "in Europe")
    assert "Capital of France?\n\nin Europe" in segments[0][0]


def test_custom_format_with_input_slot(tokenizer):
    template = resolve_template("Q: {prompt} [{input}]\nA: ", tokenizer)
    assert joined(template.segments(QA, "EU")) == "Q: Capital of France? [EU]\nA: Paris<|im_end|>"
    assert joined(template.segments(QA)) == "Q: Capital of France? []\nA: Paris<|im_end|>"


def test_multi_turn_chat_trains_only_assistant_turns(tokenizer):
    segments = resolve_template("chat", tokenizer).segments(CHAT)
    assert segments == [
        ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        ("Hello<|im_end|>\n", True),
        ("<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n", False),
        ("Paris<|im_end|>\n", True),
    ]


def test_multi_turn_builtin_template_with_system(tokenizer):
    segments = resolve_template("qa", tokenizer).segments(CHAT)
    assert segments[0] == ("Be brief.\n\n### Question:\nHi\n\n### Answer:\n", False)
    assert segments[2] == ("### Question:\nCapital of France?\n\n### Answer:\n", False)
    assert [t for _, t in segments] == [False, True, False, True]


@pytest.mark.parametrize("spec", ["chat", "chatml", "alpaca", "qa", "none", "Q: {prompt}\nA: "])
def test_inference_prompt_is_the_training_prefix(tokenizer, spec):
    template = resolve_template(spec, tokenizer)
    training = joined(template.segments(CHAT))
    prompt = template.prompt(CHAT[:-1])
    assert training.startswith(prompt)
    assert training[len(prompt):] == template.segments(CHAT)[-1][0]


def test_template_round_trips_through_json(tokenizer, tmp_path):
    template = resolve_template("chat", tokenizer)
    template.save(tmp_path / "template.json")
    assert Template.load(tmp_path / "template.json") == template


@pytest.mark.parametrize(("spec", "words"), [("llama9", "not a known template"), ("{prompt} {nope}", "bad format")])
def test_bad_template_spec_is_a_user_error(tokenizer, spec, words):
    with pytest.raises(TunesmithError, match=words):
        resolve_template(spec, tokenizer)


def test_roles_must_alternate(tokenizer):
    with pytest.raises(TunesmithError, match="alternate"):
        resolve_template("qa", tokenizer).segments([{"role": "assistant", "content": "x"}])
